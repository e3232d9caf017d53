package node_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader/config"
	"github.com/ringleader-go/ringleader/eventstore/pgstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
	"github.com/ringleader-go/ringleader/internal/testapp"
	"github.com/ringleader-go/ringleader/node"
	"github.com/ringleader-go/ringleader/transport/natstest"
)

// TestMigrateThenStartWithoutMigrations: `node migrate` creates every table a node
// uses, process_state, schedules and pii_keys included, so a node whose store skips
// the start-up migration (pgstore.WithoutMigrations) starts on that schema with a
// process manager, the scheduler and crypto-shredding; on a schema nobody migrated
// it refuses to start and says to run node migrate.
func TestMigrateThenStartWithoutMigrations(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL and NATS skipped in -short mode")
	}
	natstest.Connect(t)
	db := pgtest.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	keyFile := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(keyFile, []byte(newMasterKey("k1")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	start := func(schema string) (*node.Node, error) {
		t.Helper()
		cfg, err := config.Load([]string{"--node-id=mig1", "--nats=" + natstest.URL(), "--prefix=" + natstest.Prefix(t), "--dsn=" + pgtest.NodeDSN(),
			"--schema=" + schema, "--cluster=none", "--admin-addr=off", "--master-key-file=" + keyFile}, func(string) string { return "" }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		store, err := pgstore.Open(ctx, cfg.DSN, pgstore.WithSchema(schema), pgstore.WithoutMigrations())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = store.Close() })
		return node.Start(ctx, node.Options{App: testapp.App(), Config: cfg, Logger: zerolog.Nop(), Store: store})
	}

	migrated := pgtest.NewSchema(t)
	var out, errOut bytes.Buffer
	if code := node.Run(ctx, testapp.App(), []string{"migrate", "--dsn=" + pgtest.DSN(), "--schema=" + migrated}, func(string) string { return "" }, &out, &errOut); code != 0 {
		t.Fatalf("node migrate: exit %d: %s", code, errOut.String())
	}
	for _, table := range []string{"events", "command_outcomes", "process_state", "schedules", "pii_keys"} {
		if err := pgstore.RequireTable(ctx, db, migrated, table); err != nil {
			t.Errorf("after node migrate: %v", err)
		}
	}
	n, err := start(migrated)
	if err != nil {
		t.Fatalf("a node without start-up migration on a schema node migrate made: %v", err)
	}
	_ = n.Shutdown(context.Background())

	if n, err := start(pgtest.NewSchema(t)); err == nil {
		_ = n.Shutdown(context.Background())
		t.Fatal("a node without start-up migration started on a schema nobody migrated")
	} else if !errors.Is(err, pgstore.ErrNotMigrated) || !strings.Contains(err.Error(), "node migrate") {
		t.Fatalf("a node on a schema nobody migrated: %v, want pgstore.ErrNotMigrated saying to run node migrate", err)
	}
}
