package scheduler_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ringleader-go/ringleader/eventstore/pgstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
	"github.com/ringleader-go/ringleader/scheduler"
)

// TestOpenNeedsMigrations: schedules comes from the event store's migrations; on a
// schema nobody migrated Open says to run node migrate instead of creating the table.
func TestOpenNeedsMigrations(t *testing.T) {
	_, err := scheduler.Open(context.Background(), pgtest.Connect(t), pgtest.NewSchema(t))
	if !errors.Is(err, pgstore.ErrNotMigrated) || !strings.Contains(err.Error(), "node migrate") {
		t.Fatalf("Open on a schema without migrations: %v, want pgstore.ErrNotMigrated saying to run node migrate", err)
	}
}
