package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader/config"
	"github.com/ringleader-go/ringleader/eventstore/pgstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
	"github.com/ringleader-go/ringleader/internal/testapp"
	"github.com/ringleader-go/ringleader/node"
	"github.com/ringleader-go/ringleader/transport"
	"github.com/ringleader-go/ringleader/transport/natstest"
)

// dsnAs is the test DSN with another user (trust authentication on the test server).
func dsnAs(t *testing.T, user string) string {
	t.Helper()
	u, err := url.Parse(pgtest.DSN())
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		pgtest.Unavailable(t, fmt.Sprintf("RL_TEST_DSN is not a postgres:// URL, so the test cannot switch users: %v", err))
	}
	u.User = url.User(user)
	return u.String()
}

func isDenied(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42501" // insufficient_privilege
}

// TestPostgresRoles applies deploy/postgres-roles.sql (with the schema and role names
// made unique) around a real migration, then checks: the writer runs a node (append,
// projections, process state) but cannot UPDATE, DELETE or TRUNCATE events; the
// reader can read events and the node's projection but cannot write anything.
func TestPostgresRoles(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL skipped in -short mode")
	}
	admin := pgtest.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	sfx := hex.EncodeToString(b)
	schema, migrator, writer, reader := "rlroles_"+sfx, "rlmig_"+sfx, "rlw_"+sfx, "rlr_"+sfx

	raw, err := os.ReadFile("postgres-roles.sql")
	if err != nil {
		t.Fatal(err)
	}
	sql := strings.NewReplacer("ringleader_migrator", migrator, "ringleader_writer", writer, "ringleader_reader", reader).Replace(string(raw))
	sql = regexp.MustCompile(`\bringleader\b`).ReplaceAllString(sql, schema)
	t.Cleanup(func() {
		ctx := context.Background()
		_, _ = admin.Exec(ctx, `DROP SCHEMA IF EXISTS `+schema+` CASCADE`)
		for _, r := range []string{writer, reader, migrator} {
			_, _ = admin.Exec(ctx, `DROP OWNED BY `+r+` CASCADE`)
			_, _ = admin.Exec(ctx, `DROP ROLE IF EXISTS `+r)
		}
	})
	apply := func(step string) {
		t.Helper()
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: apply postgres-roles.sql: %v", step, err)
		}
	}
	apply("before the migration")
	if err := pgstore.Migrate(ctx, dsnAs(t, migrator), schema); err != nil {
		t.Fatalf("migrate as %s: %v", migrator, err)
	}
	apply("after the migration")
	apply("again (idempotent)")

	// The writer runs a node: migration check, projections, process state, appends.
	natstest.Connect(t)
	prefix := natstest.Prefix(t)
	cfg, err := config.Load([]string{"--node-id=roles1", "--nats=" + natstest.URL(), "--prefix=" + prefix, "--dsn=" + dsnAs(t, writer) + "&pool_max_conns=4",
		"--schema=" + schema, "--cluster=none", "--admin-addr=off"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(ctx, node.Options{App: testapp.App(), Config: cfg, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("node as %s: %v", writer, err)
	}
	defer func() { _ = n.Shutdown(context.Background()) }()
	client := transport.NewClient(natstest.Connect(t), transport.WithPrefix(prefix))
	reply, err := client.Send(ctx, "Add", map[string]any{"id": "R1", "n": 5},
		transport.WithConsistency(transport.ConsistencyStrong), transport.WithTimeout(10*time.Second))
	if err != nil || !reply.OK {
		t.Fatalf("Add through a node running as the writer: %v %+v", err, reply.Error)
	}

	w, err := pgx.Connect(ctx, dsnAs(t, writer))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	for _, stmt := range []string{
		`UPDATE ` + schema + `.events SET event_type = 'Tampered'`,
		`DELETE FROM ` + schema + `.events`,
		`TRUNCATE ` + schema + `.events`,
		`DELETE FROM ` + schema + `.schema_migrations`,
		`DROP TABLE ` + schema + `.events`,
	} {
		if _, err := w.Exec(ctx, stmt); err == nil || !(isDenied(err) || strings.Contains(err.Error(), "must be owner")) {
			t.Errorf("writer: %s: %v, want permission denied", stmt, err)
		}
	}

	r, err := pgx.Connect(ctx, dsnAs(t, reader))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	var events, counters int
	if err := r.QueryRow(ctx, `SELECT count(*) FROM `+schema+`.events`).Scan(&events); err != nil || events != 1 {
		t.Errorf("reader: count events: %d, %v", events, err)
	}
	if err := r.QueryRow(ctx, `SELECT count(*) FROM `+schema+`.`+testapp.ProjectionName).Scan(&counters); err != nil || counters != 1 {
		t.Errorf("reader: count %s (a table the writer's node created): %d, %v", testapp.ProjectionName, counters, err)
	}
	data, _ := json.Marshal(map[string]any{"id": "X"})
	for _, stmt := range []string{
		`INSERT INTO ` + schema + `.events (stream_id, stream_version, event_id, event_type, data, metadata) VALUES ('x', 1, gen_random_uuid(), 'X', '` + string(data) + `', '{}')`,
		`UPDATE ` + schema + `.` + testapp.ProjectionName + ` SET total = 0`,
		`DELETE FROM ` + schema + `.checkpoints`,
		`CREATE TABLE ` + schema + `.mine (x int)`,
	} {
		if _, err := r.Exec(ctx, stmt); err == nil || !isDenied(err) {
			t.Errorf("reader: %.60s…: %v, want permission denied", stmt, err)
		}
	}
}
