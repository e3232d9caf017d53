// Package pgtest gives tests a PostgreSQL event store of their own: a fresh schema
// per store, dropped when the test ends.
//
// The database comes from RL_TEST_DSN (default DefaultDSN). When it cannot be reached
// the test fails if CI is set (CI=true), so a CI run can never pass by skipping, and
// is skipped with the reason otherwise.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ringleader-go/ringleader/eventstore/pgstore"
)

// DefaultDSN is the database tests use when RL_TEST_DSN is unset: the local test
// database of a development machine or CI.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// DSN returns the test database's DSN.
func DSN() string {
	if dsn := os.Getenv("RL_TEST_DSN"); dsn != "" {
		return dsn
	}
	return DefaultDSN
}

// NodePoolSize is the connection pool of each node process that a test starts
// (NodeDSN): end-to-end and chaos tests run several nodes each, at the same time,
// against one PostgreSQL whose default max_connections is 100.
const NodePoolSize = 5

// NodeDSN is DSN with the pool of a node started by a test capped at NodePoolSize.
func NodeDSN() string {
	dsn := DSN()
	if strings.Contains(dsn, "pool_max_conns") {
		return dsn
	}
	setting := "pool_max_conns=" + strconv.Itoa(NodePoolSize)
	switch {
	case !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://"):
		return dsn + " " + setting // keyword/value form
	case strings.Contains(dsn, "?"):
		return dsn + "&" + setting
	default:
		return dsn + "?" + setting
	}
}

// NewStore opens a store in a new schema named after a random suffix and registers
// its closing and the schema's removal with t.Cleanup.
func NewStore(t testing.TB, opts ...pgstore.Option) *pgstore.Store {
	t.Helper()
	schema := NewSchema(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A pool wide enough that concurrency tests really run appends side by side.
	wide := pgstore.WithPoolConfig(func(c *pgxpool.Config) { c.MaxConns = 16 })
	store, err := pgstore.Open(ctx, DSN(), append([]pgstore.Option{pgstore.WithSchema(schema), wide}, opts...)...)
	if err != nil {
		t.Fatalf("pgtest: open store in schema %s: %v", schema, err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return store
}

// NewSchema returns the name of a schema that does not exist yet and will be dropped
// (with everything in it) when the test ends. It fails or skips the test, as the
// package doc says, when PostgreSQL is unreachable.
func NewSchema(t testing.TB) string {
	t.Helper()
	conn := Connect(t)
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	schema := "rl_test_" + hex.EncodeToString(suffix)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("pgtest: drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// Connect returns a plain connection to the test database, closed when the test ends.
func Connect(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, DSN())
	if err != nil {
		Unavailable(t, "PostgreSQL at "+DSN()+" is unreachable: "+err.Error())
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// Unavailable stops a test that lacks a service it needs: a failure in CI, a skip
// elsewhere.
func Unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (CI is set, so this is a failure, not a skip)", why)
	}
	t.Skipf("%s (set CI=true to make this a failure)", why)
}
