package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one embedded SQL file, numbered by its name's prefix ("0001_…").
type migration struct {
	version int
	name    string
	sql     string
}

// Migrate applies the embedded migrations that schema lacks, for `node migrate`.
// It is what Open does unless WithoutMigrations is given.
func Migrate(ctx context.Context, dsn, schema string) error {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("pgstore: parse DSN: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	cfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("pgstore: create pool: %w", err)
	}
	defer pool.Close()
	return migrate(ctx, pool, schema)
}

// migrate applies, in order and each in its own transaction, every migration not yet
// recorded in schema_migrations. A session advisory lock keyed by the schema makes
// nodes starting together take turns; the later ones find nothing left to do.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	all, err := loadMigrations()
	if err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	defer conn.Release()

	lockKey := "ringleader.migrate:" + schema
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(hashtextextended($1, 0))", lockKey); err != nil {
		return fmt.Errorf("pgstore: migrate: take lock: %w", err)
	}
	defer func() {
		// A fresh context: the unlock must happen even if ctx was cancelled, or the
		// pooled session would keep the lock.
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(hashtextextended($1, 0))", lockKey)
	}()

	ident := pgx.Identifier{schema}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+ident); err != nil {
		return fmt.Errorf("pgstore: migrate: create schema %s: %w", ident, err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+ident+`.schema_migrations (
		version    integer     PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("pgstore: migrate: create schema_migrations: %w", err)
	}
	applied := map[int]bool{}
	rows, err := conn.Query(ctx, "SELECT version FROM "+ident+".schema_migrations")
	if err != nil {
		return fmt.Errorf("pgstore: migrate: read schema_migrations: %w", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return fmt.Errorf("pgstore: migrate: read schema_migrations: %w", err)
	}
	for _, v := range versions {
		applied[int(v)] = true
	}
	for _, m := range all {
		if applied[m.version] {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			// The migration's own statements are unqualified: pin them to the schema.
			if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+ident); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		if err != nil {
			return fmt.Errorf("pgstore: migrate: apply %s to schema %s: %w", m.name, schema, err)
		}
	}
	return nil
}

// ErrNotMigrated is wrapped by RequireTable's error when a table the migrations
// create is missing: the schema was never migrated, or by an older version.
var ErrNotMigrated = errors.New("the event store's schema lacks a table its migrations create")

// Querier is what RequireTable needs of PostgreSQL: *pgxpool.Pool, *pgx.Conn and
// pgx.Tx satisfy it.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// RequireTable returns nil if table exists in schema (empty: the connection's
// current schema, which is the store's for Store.Pool), and otherwise an error
// wrapping ErrNotMigrated that tells how to create it. Packages keeping their rows
// in a table of the migrations (process_state, schedules, pii_keys) call it when
// they open, so that a schema nobody migrated fails at start-up with what to do
// rather than at the first query.
func RequireTable(ctx context.Context, db Querier, schema, table string) error {
	var where *string // nil: no schema of the search_path exists
	var found bool
	err := db.QueryRow(ctx, `SELECT s, EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname = s AND c.relname = $2 AND c.relkind IN ('r', 'p'))
FROM (SELECT coalesce(nullif($1::text, ''), current_schema()) AS s) AS x`, schema, table).Scan(&where, &found)
	if err != nil {
		return fmt.Errorf("pgstore: look for table %s: %w", table, err)
	}
	switch {
	case where == nil:
		return fmt.Errorf("pgstore: table %s: no schema of the connection's search_path exists: %w; apply the migrations (`node migrate`, pgstore.Migrate)",
			table, ErrNotMigrated)
	case !found:
		return fmt.Errorf("pgstore: table %s is missing from schema %q: %w; apply the migrations (`node migrate --schema=%s`, pgstore.Migrate), or open the store without pgstore.WithoutMigrations",
			table, *where, ErrNotMigrated, *where)
	}
	return nil
}

func loadMigrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := make([]migration, 0, len(names))
	for _, path := range names {
		name := strings.TrimPrefix(path, "migrations/")
		prefix, _, _ := strings.Cut(name, "_")
		version, err := strconv.Atoi(prefix)
		if err != nil {
			return nil, fmt.Errorf("pgstore: migration %s: name must start with a number: %w", name, err)
		}
		body, err := migrationFiles.ReadFile(path)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: version, name: name, sql: string(body)})
	}
	return out, nil
}
