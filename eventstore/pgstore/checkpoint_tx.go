package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ringleader-go/ringleader/eventstore"
)

// StoreCheckpointTx is StoreCheckpoint inside the caller's transaction, for
// projections that commit their rows and their checkpoint together: it sets checkpoint
// name to next if its current value is expected (a checkpoint never stored counts as
// 0). Otherwise it stores nothing and returns a *eventstore.CheckpointConflictError
// carrying the current value; the transaction stays usable, and the caller normally
// rolls it back. tx must run on this store's schema (a transaction begun on Pool()).
//
// The row update takes the checkpoint row's lock until tx ends, so of two
// transactions expecting the same value exactly one commits an advance: the other
// waits, re-checks the value after the first commits, and conflicts.
func StoreCheckpointTx(ctx context.Context, tx pgx.Tx, name string, expected, next int64) error {
	if err := eventstore.ValidateCheckpoint(name, next); err != nil {
		return err
	}
	var tag pgconn.CommandTag
	var err error
	if expected == 0 {
		tag, err = tx.Exec(ctx, createCheckpointSQL, name, next)
	} else {
		tag, err = tx.Exec(ctx, advanceCheckpointSQL, name, expected, next)
	}
	if err != nil {
		return fmt.Errorf("pgstore: store checkpoint %s: %w", strconv.Quote(name), err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var actual int64
	err = tx.QueryRow(ctx, `SELECT position FROM checkpoints WHERE name = $1`, name).Scan(&actual)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("pgstore: load checkpoint %s: %w", strconv.Quote(name), err)
	}
	return &eventstore.CheckpointConflictError{Name: name, Expected: expected, Actual: actual}
}

// ResetCheckpointsTx sets the named checkpoints back to 0 inside the caller's
// transaction, whatever their values: the one way a checkpoint moves backward, for
// replaying a handler or rebuilding a projection. A writer still holding an old value
// then fails its next compare-and-set and re-reads.
func ResetCheckpointsTx(ctx context.Context, tx pgx.Tx, names ...string) error {
	for _, name := range names {
		if err := eventstore.ValidateCheckpointName(name); err != nil {
			return err
		}
	}
	_, err := tx.Exec(ctx, `UPDATE checkpoints SET position = 0, updated_at = now() WHERE name = ANY($1::text[])`, names)
	if err != nil {
		return fmt.Errorf("pgstore: reset checkpoints: %w", err)
	}
	return nil
}
