package pgstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
)

// oldestSchemaCommit is the commit whose migrations testdata/oldest holds: the first
// that shipped the event store's migrations, whose migration 1 was later rewritten in
// place (see the file's header).
const oldestSchemaCommit = "0f7035cf1d2929c054c94e8ae8c0a64dfed51e15"

// currentTables is every table the migrations of this version create, those of
// handlers/process, scheduler and eventstore/shred included.
var currentTables = []string{
	"events", "snapshots", "checkpoints", "command_outcomes", "schema_migrations",
	"process_state", "schedules", "pii_keys",
}

// migrationFiles lists migrations/*.sql of this version, in order.
func migrationFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("migrations/*.sql: %v, %v", files, err)
	}
	slices.Sort(files)
	return files
}

// versionOf is a migration file's number, as pgstore reads it from the name.
func versionOf(t *testing.T, file string) int {
	t.Helper()
	prefix, _, _ := strings.Cut(filepath.Base(file), "_")
	v, err := strconv.Atoi(prefix)
	if err != nil {
		t.Fatalf("migration %s: %v", file, err)
	}
	return v
}

// applyAsMigration applies the SQL file path to schema the way pgstore's migrate has
// done since the first version: schema and schema_migrations created if missing, the
// file in a transaction with search_path pinned to the schema, recorded under
// version (none: 0) with the file's name.
func applyAsMigration(t *testing.T, conn *pgx.Conn, schema, path string, version int) {
	t.Helper()
	ctx := context.Background()
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ident := pgx.Identifier{schema}.Sanitize()
	if _, err := conn.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+ident+`;
CREATE TABLE IF NOT EXISTS `+ident+`.schema_migrations (
	version    integer     PRIMARY KEY,
	name       text        NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+ident); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, string(body)); err != nil {
			return err
		}
		if version == 0 {
			return nil
		}
		_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, filepath.Base(path))
		return err
	})
	if err != nil {
		t.Fatalf("apply %s to schema %s: %v", path, schema, err)
	}
}

// appliedMigrations returns schema_migrations as "version name applied_at" lines.
func appliedMigrations(t *testing.T, conn *pgx.Conn, schema string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT version || ' ' || name || ' ' || applied_at::text FROM `+
		pgx.Identifier{schema, "schema_migrations"}.Sanitize()+` ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// describe returns a table's columns (name, type, nullability, default), constraints
// and indexes, with the schema's name taken out, so that two schemas' tables compare.
// A missing table describes as "".
func describe(t *testing.T, conn *pgx.Conn, schema, table string) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	collect := func(what, sql string) {
		rows, err := conn.Query(ctx, sql, schema, table)
		if err != nil {
			t.Fatalf("describe %s.%s: %v", schema, table, err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("describe %s.%s: %v", schema, table, err)
		}
		for _, l := range lines {
			fmt.Fprintf(&b, "%s %s\n", what, strings.ReplaceAll(l, schema+".", ""))
		}
	}
	collect("column", `SELECT concat_ws(' ', column_name, data_type, is_nullable, column_default) FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`)
	collect("constraint", `SELECT c.conname || ' ' || pg_get_constraintdef(c.oid) FROM pg_constraint c
		JOIN pg_class r ON r.oid = c.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace
		WHERE n.nspname = $1 AND r.relname = $2 ORDER BY c.conname`)
	collect("index", `SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 ORDER BY indexname`)
	return b.String()
}

// describeAll describes every table of schema, for checking that nothing changed.
func describeAll(t *testing.T, conn *pgx.Conn, schema string) string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename`, schema)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, table := range tables {
		fmt.Fprintf(&b, "table %s\n%s", table, describe(t, conn, schema, table))
	}
	return b.String()
}

// checkCurrent checks that schema has every current table, that every migration of
// this version is recorded as applied, and that a second Migrate changes nothing.
func checkCurrent(t *testing.T, conn *pgx.Conn, schema string) {
	t.Helper()
	ctx := context.Background()
	for _, table := range currentTables {
		if describe(t, conn, schema, table) == "" {
			t.Errorf("schema %s has no table %s after Migrate", schema, table)
		}
		if err := pgstore.RequireTable(ctx, conn, schema, table); err != nil {
			t.Errorf("RequireTable(%s): %v", table, err)
		}
	}
	var want []int
	for _, f := range migrationFiles(t) {
		want = append(want, versionOf(t, f))
	}
	applied := appliedMigrations(t, conn, schema)
	var got []int
	for _, line := range applied {
		v, _ := strconv.Atoi(strings.Fields(line)[0])
		got = append(got, v)
	}
	if !slices.Equal(got, want) {
		t.Errorf("schema_migrations holds versions %v, want %v", got, want)
	}

	before := describeAll(t, conn, schema)
	if err := pgstore.Migrate(ctx, pgtest.DSN(), schema); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if after := describeAll(t, conn, schema); after != before {
		t.Errorf("a second Migrate changed the tables:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if again := appliedMigrations(t, conn, schema); !slices.Equal(again, applied) {
		t.Errorf("a second Migrate changed schema_migrations:\nbefore: %q\nafter:  %q", applied, again)
	}
}

// TestMigrateEmptySchema: Migrate on a schema that does not exist creates every
// table, the process managers', scheduler's and crypto-shredding's included;
// RequireTable finds them there and not before.
func TestMigrateEmptySchema(t *testing.T) {
	schema := pgtest.NewSchema(t)
	conn := pgtest.Connect(t)
	ctx := context.Background()
	if err := pgstore.RequireTable(ctx, conn, schema, "schedules"); !errors.Is(err, pgstore.ErrNotMigrated) || !strings.Contains(err.Error(), "node migrate") {
		t.Errorf("RequireTable before Migrate: %v, want ErrNotMigrated saying to run node migrate", err)
	}
	// The search_path of a store opened without migrations names a schema that does
	// not exist yet.
	if _, err := conn.Exec(ctx, "SET search_path TO "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	if err := pgstore.RequireTable(ctx, conn, "", "pii_keys"); !errors.Is(err, pgstore.ErrNotMigrated) {
		t.Errorf("RequireTable in a search_path without a schema: %v, want ErrNotMigrated", err)
	}
	if _, err := conn.Exec(ctx, "RESET search_path"); err != nil {
		t.Fatal(err)
	}

	if err := pgstore.Migrate(ctx, pgtest.DSN(), schema); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	checkCurrent(t, conn, schema)
	if d := describe(t, conn, schema, "schedules"); !strings.Contains(d, "index CREATE INDEX schedules_pending_due ON schedules USING btree (partition, next_attempt_at) WHERE (state = 'pending'::text)") {
		t.Errorf("schedules lacks its index of pending schedules:\n%s", d)
	}
}

// oldEvent is an event appended through the oldest schema's rl_append.
type oldEvent struct {
	id        uuid.UUID
	typ, data string
	commandID string
}

// TestMigrateFromOldestSchema: a schema made by the oldest version of the store (its
// migration 1, testdata/oldest, from oldestSchemaCommit) holding events, a checkpoint
// and a snapshot is brought up to date by Migrate: every current table exists, the
// old data reads through the store as it was written, the store appends after it, and
// a second Migrate does nothing.
func TestMigrateFromOldestSchema(t *testing.T) {
	schema := pgtest.NewSchema(t)
	conn := pgtest.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	applyAsMigration(t, conn, schema, "testdata/oldest/0001_events.sql", 1)

	// Data as that version wrote it: events through rl_append, a checkpoint, a snapshot.
	if _, err := conn.Exec(ctx, "SET search_path TO "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	streams := map[string][][]oldEvent{ // appends of each stream, in order
		"account-A1": {
			{{uuid.New(), "AccountOpened", `{"account_number": "A1", "initial_balance": 100}`, "c-1"},
				{uuid.New(), "MoneyDeposited", `{"amount": 25}`, "c-1"}},
			{{uuid.New(), "MoneyWithdrawn", `{"amount": 5}`, "c-2"}},
		},
		"account-B2": {{{uuid.New(), "AccountOpened", `{"account_number": "B2", "initial_balance": 7}`, "c-3"}}},
	}
	var lastPosition int64
	for _, stream := range []string{"account-A1", "account-B2"} {
		var version int64
		for _, batch := range streams[stream] {
			var ids []uuid.UUID
			var types, data, meta []string
			for _, e := range batch {
				ids, types, data = append(ids, e.id), append(types, e.typ), append(data, e.data)
				meta = append(meta, `{"command_id": "`+e.commandID+`"}`)
			}
			var first, firstVersion int64
			if err := conn.QueryRow(ctx, `SELECT first_position, first_version FROM rl_append($1, $2, $3::uuid[], $4::text[], $5::text[]::jsonb[], $6::text[]::jsonb[])`,
				stream, version, ids, types, data, meta).Scan(&first, &firstVersion); err != nil {
				t.Fatalf("rl_append to %s of the oldest schema: %v", stream, err)
			}
			if firstVersion != version+1 {
				t.Fatalf("rl_append to %s at %d: first version %d", stream, version, firstVersion)
			}
			version += int64(len(batch))
			lastPosition = first + int64(len(batch)) - 1
		}
	}
	if _, err := conn.Exec(ctx, `INSERT INTO checkpoints (name, position) VALUES ('bank_accounts', $1)`, lastPosition); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO snapshots (stream_id, stream_version, schema_version, snapshot_type, data)
		VALUES ('account-A1', 3, 1, 'Account', '{"balance": 120}')`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "RESET search_path"); err != nil {
		t.Fatal(err)
	}

	if err := pgstore.Migrate(ctx, pgtest.DSN(), schema); err != nil {
		t.Fatalf("Migrate over the schema of %s: %v", oldestSchemaCommit[:7], err)
	}
	// Migration 1 of this version is not applied again: the old one stays recorded.
	if applied := appliedMigrations(t, conn, schema); len(applied) == 0 || !strings.HasPrefix(applied[0], "1 0001_events.sql ") {
		t.Errorf("schema_migrations: %q", applied)
	}
	checkCurrent(t, conn, schema)

	// The old data, through the store of this version (which migrates nothing more).
	store, err := pgstore.Open(ctx, pgtest.DSN(), pgstore.WithSchema(schema), pgstore.WithoutMigrations())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var all []oldEvent
	for _, stream := range []string{"account-A1", "account-B2"} {
		var want []oldEvent
		for _, batch := range streams[stream] {
			want = append(want, batch...)
		}
		all = append(all, want...)
		got, err := store.ReadStream(ctx, stream, 1, 100)
		if err != nil {
			t.Fatalf("ReadStream(%s): %v", stream, err)
		}
		if len(got) != len(want) {
			t.Fatalf("ReadStream(%s): %d events, want %d", stream, len(got), len(want))
		}
		for i, e := range got {
			w := want[i]
			var gotData, wantData any
			_ = json.Unmarshal(e.Data, &gotData)
			_ = json.Unmarshal([]byte(w.data), &wantData)
			if e.StreamVersion != int64(i+1) || e.ID != w.id || e.Type != w.typ || fmt.Sprint(gotData) != fmt.Sprint(wantData) ||
				e.Metadata[eventstore.MetaCommandID] != w.commandID {
				t.Errorf("%s event %d: %+v, want version %d %+v", stream, i, e, i+1, w)
			}
		}
		if v, err := store.StreamVersion(ctx, stream); err != nil || v != int64(len(want)) {
			t.Errorf("StreamVersion(%s) = %d, %v; want %d", stream, v, err, len(want))
		}
	}
	global, err := store.ReadAll(ctx, 0, 100)
	if err != nil || len(global) != len(all) {
		t.Fatalf("ReadAll: %d events, %v; want %d", len(global), err, len(all))
	}
	for i, e := range global {
		if e.ID != all[i].id {
			t.Errorf("ReadAll event %d: %s %s, want %s", i, e.StreamID, e.Type, all[i].typ)
		}
	}
	if byCommand, err := store.ReadCommandEvents(ctx, "account-A1", "c-1"); err != nil || len(byCommand) != 2 {
		t.Errorf("ReadCommandEvents(c-1): %d events, %v; want 2", len(byCommand), err)
	}
	if pos, err := store.LoadCheckpoint(ctx, "bank_accounts"); err != nil || pos != lastPosition {
		t.Errorf("LoadCheckpoint = %d, %v; want %d", pos, err, lastPosition)
	}
	snap, err := store.LoadSnapshot(ctx, "account-A1", 1)
	if err != nil || snap.StreamVersion != 3 || snap.Type != "Account" || string(snap.Data) != `{"balance": 120}` {
		t.Errorf("LoadSnapshot = %+v, %v", snap, err)
	}

	// And the store of this version writes to it: after the old events, never between.
	if _, err := store.Append(ctx, "account-A1", eventstore.Exact(2), []eventstore.EventData{{Type: "MoneyDeposited", Data: json.RawMessage(`{"amount": 1}`)}}); !errors.As(err, new(*eventstore.WrongVersionError)) {
		t.Errorf("append to account-A1 at version 2 of 3: %v, want a WrongVersionError", err)
	}
	appended, err := store.Append(ctx, "account-A1", eventstore.Exact(3), []eventstore.EventData{{Type: "MoneyDeposited", Data: json.RawMessage(`{"amount": 1}`)}})
	if err != nil || len(appended) != 1 || appended[0].StreamVersion != 4 || appended[0].GlobalPosition <= lastPosition {
		t.Fatalf("append after the old events: %+v, %v", appended, err)
	}
	if got, err := store.ReadAll(ctx, lastPosition+1, 100); err != nil || len(got) != 1 || got[0].ID != appended[0].ID {
		t.Errorf("ReadAll after the old events: %+v, %v; want the new event", got, err)
	}
}

// TestMigrateOverTablesOfEarlierNodes: on a schema at migration 4 where nodes of an
// earlier version created process_state, schedules (with its index) and pii_keys
// themselves (testdata/pre_0005_tables.sql) and wrote rows, Migrate succeeds, keeps
// the rows, and leaves tables that are exactly what it creates on an empty schema.
func TestMigrateOverTablesOfEarlierNodes(t *testing.T) {
	schema := pgtest.NewSchema(t)
	conn := pgtest.Connect(t)
	ctx := context.Background()
	for _, f := range migrationFiles(t) {
		if v := versionOf(t, f); v <= 4 {
			applyAsMigration(t, conn, schema, f, v)
		}
	}
	applyAsMigration(t, conn, schema, "testdata/pre_0005_tables.sql", 0)
	tbl := func(name string) string { return pgx.Identifier{schema, name}.Sanitize() }
	rows := map[string]string{
		"process_state": `INSERT INTO ` + tbl("process_state") + ` (manager, process_id, state, last_position, status, version, updated_at)
			VALUES ('transfer', 'T1', '{"step": 1}', 42, 'running', 1, now())`,
		"schedules": `INSERT INTO ` + tbl("schedules") + ` (schedule_id, partition, command_type, body, due_at, next_attempt_at, state)
			VALUES ('expire-T1', 3, 'ExpireTransfer', '{"transfer_id": "T1"}', now(), now(), 'pending')`,
		"pii_keys": `INSERT INTO ` + tbl("pii_keys") + ` (subject, master_key_id, wrapped_key) VALUES ('account:A1', 'k1', '\x0102')`,
	}
	for table, insert := range rows {
		if _, err := conn.Exec(ctx, insert); err != nil {
			t.Fatalf("a row in %s: %v", table, err)
		}
	}

	if err := pgstore.Migrate(ctx, pgtest.DSN(), schema); err != nil {
		t.Fatalf("Migrate over the tables earlier nodes created: %v", err)
	}
	checkCurrent(t, conn, schema)
	for table := range rows {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+tbl(table)).Scan(&n); err != nil || n != 1 {
			t.Errorf("%s after Migrate: %d rows, %v; want the earlier node's row", table, n, err)
		}
	}

	fresh := pgtest.NewSchema(t)
	if err := pgstore.Migrate(ctx, pgtest.DSN(), fresh); err != nil {
		t.Fatal(err)
	}
	for table := range rows {
		if old, migrated := describe(t, conn, schema, table), describe(t, conn, fresh, table); old != migrated {
			t.Errorf("%s as earlier nodes created it:\n%s\nas the migrations create it:\n%s", table, old, migrated)
		}
	}
}
