package pgstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
)

func TestStoreCheckpointTx(t *testing.T) {
	ctx := context.Background()
	s := pgtest.NewStore(t)

	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := pgstore.StoreCheckpointTx(ctx, tx, "p", 0, 10); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LoadCheckpoint(ctx, "p"); got != 0 {
		t.Fatalf("rolled-back checkpoint is %d, want 0", got)
	}

	tx, _ = s.Pool().Begin(ctx)
	if err := pgstore.StoreCheckpointTx(ctx, tx, "p", 0, 10); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	tx, _ = s.Pool().Begin(ctx)
	err = pgstore.StoreCheckpointTx(ctx, tx, "p", 5, 20)
	var conflict *eventstore.CheckpointConflictError
	if !errors.As(err, &conflict) || conflict.Actual != 10 || !errors.Is(err, eventstore.ErrCheckpointConflict) {
		t.Fatalf("stale CAS: got %v, want conflict with actual 10", err)
	}
	if err := pgstore.StoreCheckpointTx(ctx, tx, "p", 10, 20); err != nil {
		t.Fatalf("the transaction should stay usable after a conflict: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LoadCheckpoint(ctx, "p"); got != 20 {
		t.Fatalf("checkpoint is %d, want 20", got)
	}

	tx, _ = s.Pool().Begin(ctx)
	if err := pgstore.ResetCheckpointsTx(ctx, tx, "p", "never-stored"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.LoadCheckpoint(ctx, "p"); got != 0 {
		t.Fatalf("reset checkpoint is %d, want 0", got)
	}
	if err := s.StoreCheckpoint(ctx, "p", 0, 30); err != nil {
		t.Fatalf("a reset checkpoint advances from 0: %v", err)
	}
}
