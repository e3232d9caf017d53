package pgstore

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// TxBeginner is what Setup needs of PostgreSQL: *pgxpool.Pool, *pgx.Conn and pgx.Tx
// satisfy it.
type TxBeginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Setup runs setup (idempotent DDL such as CREATE TABLE IF NOT EXISTS) in a
// transaction that first takes a transaction advisory lock on name within the
// connection's current schema. Nodes starting together then take turns: concurrent
// CREATE TABLE IF NOT EXISTS of one table is not safe in PostgreSQL.
func Setup(ctx context.Context, db TxBeginner, name string, setup func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('ringleader.setup:' || current_schema() || ':' || $1, 0))`, name); err != nil {
			return err
		}
		return setup(tx)
	})
}
