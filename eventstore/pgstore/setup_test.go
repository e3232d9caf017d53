package pgstore_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ringleader-go/ringleader/eventstore/pgstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
)

// TestSetupTakesTurns: nodes starting together each create the same table with
// CREATE TABLE IF NOT EXISTS through Setup; all succeed (unserialised, PostgreSQL can
// fail some of them with a unique violation in its catalog).
func TestSetupTakesTurns(t *testing.T) {
	store := pgtest.NewStore(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = pgstore.Setup(ctx, store.Pool(), "setup_test", func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS setup_test (id int PRIMARY KEY)`)
				return err
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("setup %d: %v", i, err)
		}
	}
	if _, err := store.Pool().Exec(ctx, `INSERT INTO setup_test VALUES (1)`); err != nil {
		t.Fatalf("the table is not there: %v", err)
	}
}
