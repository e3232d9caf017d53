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

	"github.com/ringleader-go/ringleader"
	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/config"
	"github.com/ringleader-go/ringleader/eventstore/pgstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
	"github.com/ringleader-go/ringleader/handlers"
	"github.com/ringleader-go/ringleader/handlers/process"
	"github.com/ringleader-go/ringleader/internal/syncbuf"
	"github.com/ringleader-go/ringleader/internal/testapp"
	"github.com/ringleader-go/ringleader/internal/testwait"
	"github.com/ringleader-go/ringleader/node"
	"github.com/ringleader-go/ringleader/transport"
	"github.com/ringleader-go/ringleader/transport/natstest"
)

// rolesProcess is the process manager of rolesApp: an Add to counter P1 makes it
// add to P1-echo at once, schedule an Add to P1-sched due at once and one to
// P1-never due in an hour, and, once the echo succeeded, cancel the latter.
const rolesProcess = "roles_echo"

// rolesApp is internal/testapp with what else a node writes as the writer role:
// counters snapshotted after every event (snapshots) and a process manager that
// dispatches, schedules and cancels (process_state, schedules). A rejected command
// writes command_outcomes.
func rolesApp() ringleader.App {
	counter := aggregate.NewType[testapp.Counter]("counter", aggregate.TypeConfig{
		StreamPrefix: testapp.StreamPrefix, Snapshots: aggregate.SnapshotPolicy{Every: 1},
	}, testapp.Added{}, testapp.Closed{}, testapp.Forgotten{})
	router := aggregate.NewRouter()
	aggregate.Route(router, counter, func(c testapp.Add) string { return c.ID })
	aggregate.Route(router, counter, func(c testapp.Close) string { return c.ID })
	aggregate.Route(router, counter, func(c testapp.Forget) string { return c.ID })
	app := testapp.App()
	app.Router = router
	app.Handlers = func(h ringleader.Host) ([]handlers.Registrant, error) {
		echo, err := ringleader.Process(h, process.Config[int]{
			Name: rolesProcess,
			Interested: func(e process.Event) process.Interest {
				if e.StreamID == testapp.StreamPrefix+"P1" {
					return process.Start("P1")
				}
				return process.Interest{}
			},
			Handle: func(_ int, e process.Event) ([]process.Command, error) {
				return []process.Command{
					process.Tagged("echo", testapp.Add{ID: "P1-echo", N: 1}),
					process.ScheduleAt("now", e.CreatedAt, testapp.Add{ID: "P1-sched", N: 2}),
					process.ScheduleAt("never", e.CreatedAt.Add(time.Hour), testapp.Add{ID: "P1-never", N: 3}),
				}, nil
			},
			Outcome: func(s int, c process.Sent, o process.Outcome) (int, []process.Command, error) {
				if c.Tag == "echo" && o.OK() {
					return s + 1, []process.Command{process.CancelSchedule("never")}, nil
				}
				return s, nil, nil
			},
		}, handlers.Spec{})
		return []handlers.Registrant{testapp.Projection(), echo}, err
	}
	return app
}

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

// roles is deploy/postgres-roles.sql applied with unique schema and role names, all
// dropped when the test ends.
type roles struct {
	admin                            *pgx.Conn
	schema, migrator, writer, reader string
	sql                              string
	t                                *testing.T
}

// newRoles makes the names; apply applies the file.
func newRoles(t *testing.T) *roles {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	sfx := hex.EncodeToString(b)
	r := &roles{admin: pgtest.Connect(t), schema: "rlroles_" + sfx, migrator: "rlmig_" + sfx, writer: "rlw_" + sfx, reader: "rlr_" + sfx, t: t}
	raw, err := os.ReadFile("postgres-roles.sql")
	if err != nil {
		t.Fatal(err)
	}
	sql := strings.NewReplacer("ringleader_migrator", r.migrator, "ringleader_writer", r.writer, "ringleader_reader", r.reader).Replace(string(raw))
	r.sql = regexp.MustCompile(`\bringleader\b`).ReplaceAllString(sql, r.schema)
	t.Cleanup(func() {
		ctx := context.Background()
		_, _ = r.admin.Exec(ctx, `DROP SCHEMA IF EXISTS `+r.schema+` CASCADE`)
		for _, role := range []string{r.writer, r.reader, r.migrator} {
			_, _ = r.admin.Exec(ctx, `DROP OWNED BY `+role+` CASCADE`)
			_, _ = r.admin.Exec(ctx, `DROP ROLE IF EXISTS `+role)
		}
	})
	return r
}

// apply applies the file as the test database's administrator; step names the
// moment in a failure.
func (r *roles) apply(step string) {
	r.t.Helper()
	if _, err := r.admin.Exec(context.Background(), r.sql); err != nil {
		r.t.Fatalf("%s: apply postgres-roles.sql: %v", step, err)
	}
}

// TestPostgresRoles applies deploy/postgres-roles.sql (with the schema and role names
// made unique) around a real migration, then checks: the writer runs a node that
// writes every table a node writes — events (append), the projection and its
// checkpoints, snapshots (insert, then replace), command_outcomes (a rejected
// command), process_state (a process manager's record), schedules (scheduled by
// the process, fired and cancelled by the node) — and logs no permission error, but
// cannot UPDATE, DELETE or TRUNCATE events; the reader can read all of those tables
// but cannot write anything.
func TestPostgresRoles(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rl := newRoles(t)
	admin, schema, migrator, writer, reader, apply := rl.admin, rl.schema, rl.migrator, rl.writer, rl.reader, rl.apply
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
		"--schema=" + schema, "--cluster=none", "--admin-addr=off", "--scheduler-poll=100ms"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	n, err := node.Start(ctx, node.Options{App: rolesApp(), Config: cfg, Logger: zerolog.New(logs).Level(zerolog.InfoLevel)})
	if err != nil {
		t.Fatalf("node as %s: %v", writer, err)
	}
	defer func() { _ = n.Shutdown(context.Background()) }()
	client := transport.NewClient(natstest.Connect(t), transport.WithPrefix(prefix))
	send := func(typ string, body map[string]any, id string) transport.Reply {
		t.Helper()
		reply, err := client.Send(ctx, typ, body, transport.WithCommandID(id),
			transport.WithConsistency(transport.ConsistencyStrong), transport.WithTimeout(10*time.Second))
		if err != nil {
			t.Fatalf("%s %v through a node running as the writer: %v", typ, body, err)
		}
		return reply
	}
	if r := send("Add", map[string]any{"id": "R1", "n": 5}, "add-R1-1"); !r.OK {
		t.Fatalf("Add through a node running as the writer: %+v", r.Error)
	}
	// Refused on the counter's state: the refusal is recorded in command_outcomes.
	if r := send("Close", map[string]any{"id": "R1"}, "close-R1"); r.Code() != "rejected" {
		t.Fatalf("Close of a counter at 5: %+v, want rejected (recorded as the writer)", r)
	}
	// A second event replaces R1's snapshot (an UPDATE of snapshots).
	if r := send("Add", map[string]any{"id": "R1", "n": 1}, "add-R1-2"); !r.OK {
		t.Fatalf("second Add: %+v", r.Error)
	}
	// P1 starts the process: a record, a command, two schedules, one fired, one cancelled.
	if r := send("Add", map[string]any{"id": "P1", "n": 1}, "add-P1"); !r.OK {
		t.Fatalf("Add to P1: %+v", r.Error)
	}
	schedID := func(name string) string { return rolesProcess + ":P1:" + name }
	tbl := func(name string) string { return pgx.Identifier{schema, name}.Sanitize() }
	err = testwait.Until(30*time.Second, func() error {
		states := map[string]string{}
		rows, err := admin.Query(ctx, `SELECT schedule_id, state || '/' || coalesce(fired_by, '') FROM `+tbl("schedules"))
		if err != nil {
			return err
		}
		for rows.Next() {
			var id, st string
			if err := rows.Scan(&id, &st); err != nil {
				return err
			}
			states[id] = st
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if states[schedID("now")] != "fired/roles1" || states[schedID("never")] != "cancelled/" {
			return fmt.Errorf("schedules %v; want %s fired by roles1 and %s cancelled", states, schedID("now"), schedID("never"))
		}
		var status, pending string
		if err := admin.QueryRow(ctx, `SELECT status, pending::text FROM `+tbl("process_state")+` WHERE manager = $1 AND process_id = 'P1'`,
			rolesProcess).Scan(&status, &pending); err != nil {
			return fmt.Errorf("process record of P1: %w", err)
		}
		if pending != "[]" {
			return fmt.Errorf("process P1 is %s with pending %s", status, pending)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the process manager's writes as %s: %v\nnode log:\n%s", writer, err, logs.String())
	}
	var echoed, fired int
	if err := admin.QueryRow(ctx, `SELECT count(*) FILTER (WHERE stream_id = 'counter-P1-echo'), count(*) FILTER (WHERE stream_id = 'counter-P1-sched') FROM `+tbl("events")).
		Scan(&echoed, &fired); err != nil || echoed != 1 || fired != 1 {
		t.Errorf("events of the process's command and of the fired schedule: %d, %d (%v); want 1 each", echoed, fired, err)
	}
	var outcome string
	if err := admin.QueryRow(ctx, `SELECT code FROM `+tbl("command_outcomes")+` WHERE command_id = 'close-R1'`).Scan(&outcome); err != nil || outcome != "rejected" {
		t.Errorf("command_outcomes row of the rejected Close: %q, %v", outcome, err)
	}
	var snapVersion int64
	if err := admin.QueryRow(ctx, `SELECT stream_version FROM `+tbl("snapshots")+` WHERE stream_id = 'counter-R1'`).Scan(&snapVersion); err != nil || snapVersion != 2 {
		t.Errorf("snapshot of counter-R1: version %d, %v; want 2 (taken at 1, replaced at 2)", snapVersion, err)
	}
	if strings.Contains(logs.String(), "permission denied") || strings.Contains(logs.String(), "42501") {
		t.Errorf("the node running as %s logged a permission error:\n%s", writer, logs.String())
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
	// The reader sees every row of every table the node wrote, the tables the
	// writer's node created included.
	for _, table := range []string{"events", testapp.ProjectionName, "checkpoints", "snapshots", "command_outcomes", "process_state", "schedules"} {
		var want, got int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM `+tbl(table)).Scan(&want); err != nil || want == 0 {
			t.Errorf("admin: count %s: %d, %v; want rows", table, want, err)
			continue
		}
		if err := r.QueryRow(ctx, `SELECT count(*) FROM `+tbl(table)).Scan(&got); err != nil || got != want {
			t.Errorf("reader: count %s: %d, %v; want %d", table, got, err, want)
		}
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

// TestPostgresRolesUpgrade: nodes of versions before migration 5, running as the
// writer, created process_state, schedules (with its index) and pii_keys themselves,
// so the writer owns them. `node migrate` as the migrator then still succeeds
// (PostgreSQL refuses CREATE INDEX IF NOT EXISTS on another role's table even when
// the index exists, hence migration 6's guard), the rows stay, and postgres-roles.sql
// applied again hands the tables to the migrator: the writer keeps its rows but can
// no longer alter or drop them, and the reader reads them.
func TestPostgresRolesUpgrade(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rl := newRoles(t)
	rl.apply("before the migration")
	tbl := func(name string) string { return pgx.Identifier{rl.schema, name}.Sanitize() }

	// The tables as such a node created them, in the schema, as the writer. (Such a
	// node had migrated the event store's tables first; that order does not matter to
	// migrations 5-7, which only meet these three tables.)
	ddl, err := os.ReadFile("../eventstore/pgstore/testdata/pre_0005_tables.sql")
	if err != nil {
		t.Fatal(err)
	}
	w, err := pgx.Connect(ctx, dsnAs(t, rl.writer))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	if _, err := w.Exec(ctx, "SET search_path TO "+pgx.Identifier{rl.schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Exec(ctx, string(ddl)); err != nil {
		t.Fatalf("the writer creates the tables as earlier nodes did: %v", err)
	}
	inserts := map[string]string{
		"process_state": `INSERT INTO process_state (manager, process_id, state, last_position, status, version, updated_at)
			VALUES ('transfer', 'T1', '{}', 1, 'running', 1, now())`,
		"schedules": `INSERT INTO schedules (schedule_id, partition, command_type, body, due_at, next_attempt_at, state)
			VALUES ('s1', 1, 'Add', '{}', now(), now(), 'pending')`,
		"pii_keys": `INSERT INTO pii_keys (subject, master_key_id, wrapped_key) VALUES ('account:A1', 'k1', '\x01')`,
	}
	for table, insert := range inserts {
		if _, err := w.Exec(ctx, insert); err != nil {
			t.Fatalf("writer: a row in %s: %v", table, err)
		}
	}

	if err := pgstore.Migrate(ctx, dsnAs(t, rl.migrator), rl.schema); err != nil {
		t.Fatalf("migrate as %s over the tables the writer created: %v", rl.migrator, err)
	}
	rl.apply("after the migration")

	reader, err := pgx.Connect(ctx, dsnAs(t, rl.reader))
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close(ctx)
	for table := range inserts {
		var owner string
		if err := rl.admin.QueryRow(ctx, `SELECT tableowner FROM pg_tables WHERE schemaname = $1 AND tablename = $2`, rl.schema, table).Scan(&owner); err != nil || owner != rl.migrator {
			t.Errorf("owner of %s: %q, %v; want %s", table, owner, err, rl.migrator)
		}
		var n int
		if err := w.QueryRow(ctx, `SELECT count(*) FROM `+tbl(table)).Scan(&n); err != nil || n != 1 {
			t.Errorf("writer: %s holds %d rows, %v; want the row written before the migration", table, n, err)
		}
		stamp := "created_at"
		if table == "process_state" {
			stamp = "updated_at"
		}
		if _, err := w.Exec(ctx, `UPDATE `+tbl(table)+` SET `+stamp+` = now()`); err != nil {
			t.Errorf("writer: update %s: %v", table, err)
		}
		if err := reader.QueryRow(ctx, `SELECT count(*) FROM `+tbl(table)).Scan(&n); err != nil || n != 1 {
			t.Errorf("reader: %s holds %d rows, %v; want 1", table, n, err)
		}
		for _, stmt := range []string{`ALTER TABLE ` + tbl(table) + ` ADD COLUMN x int`, `DROP TABLE ` + tbl(table)} {
			if _, err := w.Exec(ctx, stmt); err == nil || !(isDenied(err) || strings.Contains(err.Error(), "must be owner")) {
				t.Errorf("writer: %s: %v, want permission denied", stmt, err)
			}
		}
	}
	if _, err := w.Exec(ctx, `DELETE FROM `+tbl("schedules")); err != nil {
		t.Errorf("writer: delete from schedules: %v", err)
	}
}
