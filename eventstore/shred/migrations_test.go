package shred_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ringleader-go/ringleader/eventstore/pgstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
	"github.com/ringleader-go/ringleader/eventstore/shred"
)

// TestOpenPGTableNeedsMigrations: pii_keys comes from the event store's migrations;
// in the schema of a store opened without them OpenPGTable says to run node migrate
// instead of creating the table.
func TestOpenPGTableNeedsMigrations(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL skipped in -short mode")
	}
	ctx := context.Background()
	store, err := pgstore.Open(ctx, pgtest.DSN(), pgstore.WithSchema(pgtest.NewSchema(t)), pgstore.WithoutMigrations())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	_, err = shred.OpenPGTable(ctx, store.Pool())
	if !errors.Is(err, pgstore.ErrNotMigrated) || !strings.Contains(err.Error(), "node migrate") {
		t.Fatalf("OpenPGTable without migrations: %v, want pgstore.ErrNotMigrated saying to run node migrate", err)
	}
}
