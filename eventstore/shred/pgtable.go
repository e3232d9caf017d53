package shred

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ringleader-go/ringleader/eventstore/pgstore"
)

// TableName is the PostgreSQL table of the data keys, in the pool's search_path (the
// event store's schema), created by the event store's migrations (pgstore.Migrate,
// `node migrate`).
const TableName = "pii_keys"

// PGTable is the PostgreSQL Table: pii_keys(subject PK, master_key_id, wrapped_key,
// created_at, forgotten_at). A tombstone has forgotten_at set and no key.
type PGTable struct {
	pool *pgxpool.Pool
}

var _ Table = (*PGTable)(nil)

// OpenPGTable returns the table pii_keys of the pool's search_path schema. Give it
// the event store's pool (pgstore.Store.Pool()). The table comes from the event
// store's migrations, which pgstore.Open applies unless told not to: if it is
// missing, OpenPGTable fails with an error wrapping pgstore.ErrNotMigrated that says
// to run `node migrate`.
func OpenPGTable(ctx context.Context, pool *pgxpool.Pool) (*PGTable, error) {
	if err := pgstore.RequireTable(ctx, pool, "", TableName); err != nil {
		return nil, fmt.Errorf("shred: %w", err)
	}
	return &PGTable{pool: pool}, nil
}

func scanRecord(row pgx.Row, subject string) (Record, error) {
	r := Record{Subject: subject}
	var id *string
	err := row.Scan(&id, &r.Wrapped)
	if id != nil {
		r.MasterKeyID = *id
	}
	r.Forgotten = err == nil && r.Wrapped == nil
	return r, err
}

// Load implements Table.
func (t *PGTable) Load(ctx context.Context, subject string) (Record, error) {
	r, err := scanRecord(t.pool.QueryRow(ctx, `SELECT master_key_id, wrapped_key FROM pii_keys WHERE subject = $1`, subject), subject)
	if errors.Is(err, pgx.ErrNoRows) {
		return Record{}, fmt.Errorf("%w for subject %q", ErrNoKey, subject)
	}
	if err != nil {
		return Record{}, fmt.Errorf("shred: load key of %q: %w", subject, err)
	}
	return r, nil
}

// Create implements Table.
func (t *PGTable) Create(ctx context.Context, rec Record) (Record, error) {
	// The CTE inserts unless a row exists, and the union returns whichever row is
	// stored now, in one statement.
	r, err := scanRecord(t.pool.QueryRow(ctx, `WITH ins AS (
		INSERT INTO pii_keys (subject, master_key_id, wrapped_key) VALUES ($1, $2, $3)
		ON CONFLICT (subject) DO NOTHING RETURNING master_key_id, wrapped_key)
	SELECT master_key_id, wrapped_key FROM ins
	UNION ALL SELECT master_key_id, wrapped_key FROM pii_keys WHERE subject = $1 AND NOT EXISTS (SELECT 1 FROM ins)`,
		rec.Subject, rec.MasterKeyID, rec.Wrapped), rec.Subject)
	if errors.Is(err, pgx.ErrNoRows) {
		// The conflicting row was deleted between the insert and the select: rare;
		// ask again.
		return t.Create(ctx, rec)
	}
	if err != nil {
		return Record{}, fmt.Errorf("shred: create key of %q: %w", rec.Subject, err)
	}
	return r, nil
}

// Forget implements Table.
func (t *PGTable) Forget(ctx context.Context, subject string) error {
	_, err := t.pool.Exec(ctx, `INSERT INTO pii_keys (subject, forgotten_at) VALUES ($1, now())
		ON CONFLICT (subject) DO UPDATE SET master_key_id = NULL, wrapped_key = NULL,
			forgotten_at = COALESCE(pii_keys.forgotten_at, now())`, subject)
	if err != nil {
		return fmt.Errorf("shred: forget %q: %w", subject, err)
	}
	return nil
}

// Rewrap implements Table.
func (t *PGTable) Rewrap(ctx context.Context, masterID string, rewrap func(Record) ([]byte, error)) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, t.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT subject, master_key_id, wrapped_key FROM pii_keys
			WHERE wrapped_key IS NOT NULL AND master_key_id <> $1 FOR UPDATE`, masterID)
		if err != nil {
			return err
		}
		recs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Record, error) {
			var r Record
			err := row.Scan(&r.Subject, &r.MasterKeyID, &r.Wrapped)
			return r, err
		})
		if err != nil {
			return err
		}
		batch := &pgx.Batch{}
		for _, r := range recs {
			w, err := rewrap(r)
			if err != nil {
				return err
			}
			batch.Queue(`UPDATE pii_keys SET master_key_id = $2, wrapped_key = $3 WHERE subject = $1`, r.Subject, masterID, w)
		}
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return err
		}
		n = len(recs)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("shred: re-wrap data keys with master key %q: %w", masterID, err)
	}
	return n, nil
}
