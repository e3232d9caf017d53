package node_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
	"github.com/ringleader-go/ringleader/internal/testwait"
	"github.com/ringleader-go/ringleader/transport"
	"github.com/ringleader-go/ringleader/transport/natstest"
)

func newMasterKey(id string) string {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return id + ":" + base64.StdEncoding.EncodeToString(k)
}

// startNode starts a gossip-less node on schema with extra flags and stops it when
// the test ends (or when the returned function is called).
func startNode(t *testing.T, schema, prefix string, extra ...string) func() {
	t.Helper()
	args := append([]string{"--node-id=shred1", "--nats=" + natstest.URL(), "--prefix=" + prefix, "--dsn=" + pgtest.DSN(),
		"--schema=" + schema, "--cluster=none", "--admin-addr=off"}, extra...)
	n := startFromFlags(t, args...)
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = n.Shutdown(context.Background())
		}
	}
	t.Cleanup(stop)
	return stop
}

// A node with a master key file stores notes (testapp's personal data) encrypted,
// shows them in testapp_counters, forgets them on Forget; restarted with a new master
// key and the old one as previous, it re-wraps every data key and still reads the
// notes.
func TestNodeCryptoShreddingAndRotation(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL and NATS skipped in -short mode")
	}
	nc := natstest.Connect(t)
	db := pgtest.Connect(t)
	schema := pgtest.NewSchema(t)
	prefix := natstest.Prefix(t)
	dir := t.TempDir()
	oldKey, newKey := newMasterKey("old"), newMasterKey("new")
	keyFile := filepath.Join(dir, "master.key")
	if err := os.WriteFile(keyFile, []byte(oldKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stop := startNode(t, schema, prefix, "--master-key-file="+keyFile)
	client := transport.NewClient(nc, transport.WithPrefix(prefix))
	ctx := context.Background()
	send := func(typ string, body map[string]any) transport.Reply {
		t.Helper()
		r, err := client.Send(ctx, typ, body, transport.WithConsistency(transport.ConsistencyStrong), transport.WithTimeout(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if r.Error != nil {
			t.Fatalf("%s: %s: %s", typ, r.Error.Code, r.Error.Message)
		}
		return r
	}
	send("Add", map[string]any{"id": "N1", "n": 5, "note": "Nina Simone"})
	send("Add", map[string]any{"id": "N2", "n": 5, "note": "Nat King Cole"})
	send("Add", map[string]any{"id": "N3", "n": 5}) // no personal data
	q := func(sql string, args ...any) string {
		t.Helper()
		var out string
		if err := db.QueryRow(ctx, strings.ReplaceAll(sql, "$S", pgx.Identifier{schema}.Sanitize()), args...).Scan(&out); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return out
	}
	names := `SELECT string_agg(id || '=' || coalesce(note, '-'), ',' ORDER BY id) FROM $S.testapp_counters`
	if got := q(names); got != "N1=Nina Simone,N2=Nat King Cole,N3=-" {
		t.Fatalf("testapp_counters: %s", got)
	}
	if got := q(`SELECT count(*)::text FROM $S.events WHERE data::text LIKE '%Nina%' OR data::text LIKE '%Cole%'`); got != "0" {
		t.Fatalf("%s events hold a name in plaintext", got)
	}
	send("Forget", map[string]any{"id": "N1"})
	if got := q(names); got != "N1=-,N2=Nat King Cole,N3=-" {
		t.Fatalf("testapp_counters after forget: %s", got)
	}
	if got := q(`SELECT string_agg(subject || '=' || coalesce(master_key_id, 'forgotten'), ',' ORDER BY subject) FROM $S.pii_keys`); got != "counter:N1=forgotten,counter:N2=old" {
		t.Fatalf("pii_keys: %s", got)
	}
	stop()

	// Rotation: the new key current, the old one previous. The projection is emptied
	// and its checkpoints reset while the node is down, so the restarted node rebuilds
	// it reading every event through the re-wrapped keys.
	if err := os.WriteFile(keyFile, []byte(newKey), 0o600); err != nil {
		t.Fatal(err)
	}
	ident := pgx.Identifier{schema}.Sanitize()
	if _, err := db.Exec(ctx, `TRUNCATE `+ident+`.testapp_counters`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `UPDATE `+ident+`.checkpoints SET position = 0 WHERE name LIKE 'handler:testapp_counters#%'`); err != nil {
		t.Fatal(err)
	}
	startNode(t, schema, prefix, "--master-key-file="+keyFile, "--previous-master-keys="+oldKey)
	if got := q(`SELECT string_agg(subject || '=' || coalesce(master_key_id, 'forgotten'), ',' ORDER BY subject) FROM $S.pii_keys`); got != "counter:N1=forgotten,counter:N2=new" {
		t.Fatalf("pii_keys after rotation: %s", got)
	}
	// N2 rehydrates on the restarted node: its Added decrypts with the re-wrapped key
	// (a failure would fail the command).
	if r := send("Add", map[string]any{"id": "N2", "n": 1}); r.AggregateVersion != 2 {
		t.Fatalf("N2 at version %d", r.AggregateVersion)
	}
	testwait.For(t, 20*time.Second, func() error {
		var got string
		_ = db.QueryRow(ctx, strings.ReplaceAll(names, "$S", ident)).Scan(&got)
		if got != "N1=-,N2=Nat King Cole,N3=-" {
			return fmt.Errorf("rebuilt testapp_counters: %q", got)
		}
		return nil
	})
}

// Without a master key a node refuses notes, testapp's personal data (invalid, with
// a message that says why), and serves everything else as before.
func TestNodeWithoutMasterKeyRefusesPersonalData(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL and NATS skipped in -short mode")
	}
	nc := natstest.Connect(t)
	schema, prefix := pgtest.NewSchema(t), natstest.Prefix(t)
	startNode(t, schema, prefix)
	client := transport.NewClient(nc, transport.WithPrefix(prefix))
	ctx := context.Background()
	r, err := client.Send(ctx, "Add", map[string]any{"id": "P1", "n": 1, "note": "Pat"}, transport.WithTimeout(10*time.Second))
	if err != nil || r.Error == nil || r.Error.Code != "invalid" || !strings.Contains(r.Error.Message, "no master key") {
		t.Fatalf("a note without a master key: %+v %v", r.Error, err)
	}
	for _, c := range []struct {
		typ  string
		body map[string]any
	}{
		{"Add", map[string]any{"id": "P1", "n": 3}},
		{"Forget", map[string]any{"id": "P1"}},
		{"Add", map[string]any{"id": "P1", "n": 2}},
	} {
		r, err := client.Send(ctx, c.typ, c.body, transport.WithTimeout(10*time.Second))
		if err != nil || r.Error != nil {
			t.Fatalf("%s: %+v %v", c.typ, r.Error, err)
		}
	}
}
