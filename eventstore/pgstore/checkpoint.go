package pgstore

import (
	"context"
	"errors"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ringleader-go/ringleader/eventstore"
)

// LoadCheckpoint implements eventstore.CheckpointStore.
func (s *Store) LoadCheckpoint(ctx context.Context, name string) (int64, error) {
	if err := eventstore.ValidateCheckpointName(name); err != nil {
		return 0, err
	}
	var position int64
	err := s.pool.QueryRow(ctx, `SELECT position FROM checkpoints WHERE name = $1`, name).Scan(&position)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return position, s.wrap("load checkpoint "+strconv.Quote(name), err)
}

// A checkpoint never stored counts as 0, so expecting 0 may insert. Concurrent inserts
// meet in ON CONFLICT, where the row lock makes the loser see the winner's value.
const (
	createCheckpointSQL = `INSERT INTO checkpoints AS c (name, position, updated_at) VALUES ($1, $2, now())
ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = now() WHERE c.position = 0`
	advanceCheckpointSQL = `UPDATE checkpoints SET position = $3, updated_at = now() WHERE name = $1 AND position = $2`
)

// StoreCheckpoint implements eventstore.CheckpointStore with compare-and-set.
func (s *Store) StoreCheckpoint(ctx context.Context, name string, expected, next int64) error {
	if err := eventstore.ValidateCheckpoint(name, next); err != nil {
		return err
	}
	var tag pgconn.CommandTag
	var err error
	if expected == 0 {
		tag, err = s.pool.Exec(ctx, createCheckpointSQL, name, next)
	} else {
		tag, err = s.pool.Exec(ctx, advanceCheckpointSQL, name, expected, next)
	}
	if err != nil {
		return s.wrap("store checkpoint "+strconv.Quote(name), err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	actual, err := s.LoadCheckpoint(ctx, name)
	if err != nil {
		return err
	}
	return &eventstore.CheckpointConflictError{Name: name, Expected: expected, Actual: actual}
}
