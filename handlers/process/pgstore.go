package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ringleader-go/ringleader/eventstore/pgstore"
)

// DB is what PGStore needs of PostgreSQL: *pgxpool.Pool satisfies it.
type DB interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// PGStore keeps process records in PostgreSQL, in table process_state of a schema
// (created by the event store's migration 5):
//
//	process_state(manager text, process_id text, state jsonb, pending jsonb,
//	              seq int, last_position bigint, status text, version bigint,
//	              updated_at timestamptz, PRIMARY KEY (manager, process_id))
//
// Saves are compare-and-set on version. It is safe for concurrent use.
type PGStore struct {
	db    DB
	table string
}

var _ StateStore = (*PGStore)(nil)

// TableName is the table of the process records, created by the event store's
// migrations (pgstore.Migrate, `node migrate`) in the store's schema.
const TableName = "process_state"

// OpenPGStore returns the store of the process_state table in schema. An empty
// schema means the connection's search_path (pgstore's pool is set to the event
// store's schema). The table comes from the event store's migrations, which
// pgstore.Open applies unless told not to: if it is missing, OpenPGStore fails with an
// error wrapping pgstore.ErrNotMigrated that says to run `node migrate`.
func OpenPGStore(ctx context.Context, db DB, schema string) (*PGStore, error) {
	table := pgx.Identifier{TableName}
	if schema != "" {
		table = pgx.Identifier{schema, TableName}
	}
	if err := pgstore.RequireTable(ctx, db, schema, TableName); err != nil {
		return nil, fmt.Errorf("process: %w", err)
	}
	return &PGStore{db: db, table: table.Sanitize()}, nil
}

// Load implements StateStore.
func (s *PGStore) Load(ctx context.Context, manager, processID string) (Record, bool, error) {
	r := Record{Manager: manager, ProcessID: processID}
	var state, pending []byte
	var status string
	err := s.db.QueryRow(ctx, `SELECT state, pending, seq, last_position, status, version, updated_at FROM `+s.table+
		` WHERE manager = $1 AND process_id = $2`, manager, processID).
		Scan(&state, &pending, &r.Seq, &r.LastPosition, &status, &r.Version, &r.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("process: load %s/%s: %w", manager, processID, err)
	}
	r.State, r.Status = state, Status(status)
	if err := json.Unmarshal(pending, &r.Pending); err != nil {
		return Record{}, false, fmt.Errorf("process: load %s/%s: pending: %w", manager, processID, err)
	}
	return r, true, nil
}

// Save implements StateStore.
func (s *PGStore) Save(ctx context.Context, r Record) (Record, error) {
	pending := r.Pending
	if pending == nil {
		pending = []Sent{}
	}
	pj, err := json.Marshal(pending)
	if err != nil {
		return Record{}, fmt.Errorf("%w: process: save %s/%s: %v", ErrInvalid, r.Manager, r.ProcessID, err)
	}
	state := r.State
	if len(state) == 0 {
		state = json.RawMessage("null")
	}
	var tag pgconn.CommandTag
	if r.Version == 0 {
		tag, err = s.db.Exec(ctx, `INSERT INTO `+s.table+` (manager, process_id, state, pending, seq, last_position, status, version, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8) ON CONFLICT (manager, process_id) DO NOTHING`,
			r.Manager, r.ProcessID, string(state), string(pj), r.Seq, r.LastPosition, string(r.Status), r.UpdatedAt)
	} else {
		tag, err = s.db.Exec(ctx, `UPDATE `+s.table+` SET state = $3, pending = $4, seq = $5, last_position = $6, status = $7,
	version = version + 1, updated_at = $8 WHERE manager = $1 AND process_id = $2 AND version = $9`,
			r.Manager, r.ProcessID, string(state), string(pj), r.Seq, r.LastPosition, string(r.Status), r.UpdatedAt, r.Version)
	}
	if err != nil {
		return Record{}, fmt.Errorf("process: save %s/%s: %w", r.Manager, r.ProcessID, err)
	}
	if tag.RowsAffected() == 0 {
		return Record{}, fmt.Errorf("%w: %s/%s changed since version %d", ErrConflict, r.Manager, r.ProcessID, r.Version)
	}
	r.Version++
	return r, nil
}
