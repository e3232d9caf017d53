package process_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ringleader-go/ringleader/eventstore/pgstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
	"github.com/ringleader-go/ringleader/handlers/process"
)

// TestOpenPGStoreNeedsMigrations: process_state comes from the event store's
// migrations; on a schema nobody migrated OpenPGStore says to run node migrate
// instead of creating the table.
func TestOpenPGStoreNeedsMigrations(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL skipped in -short mode")
	}
	_, err := process.OpenPGStore(context.Background(), pgtest.Connect(t), pgtest.NewSchema(t))
	if !errors.Is(err, pgstore.ErrNotMigrated) || !strings.Contains(err.Error(), "node migrate") {
		t.Fatalf("OpenPGStore on a schema without migrations: %v, want pgstore.ErrNotMigrated saying to run node migrate", err)
	}
}
