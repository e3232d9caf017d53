package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader/config"
	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/memstore"
	"github.com/ringleader-go/ringleader/internal/testapp"
	"github.com/ringleader-go/ringleader/internal/testwait"
	"github.com/ringleader-go/ringleader/transport/natstest"
)

// recordRejection records a rejection of command id in a fresh stream of store.
func recordRejection(t *testing.T, store *memstore.Store, stream, id string) {
	t.Helper()
	o := eventstore.CommandOutcome{StreamID: stream, CommandID: id, Code: "rejected", Message: "no"}
	if prior, err := store.RecordOutcome(context.Background(), o); err != nil || prior != nil {
		t.Fatalf("record %s: %+v, %v", id, prior, err)
	}
}

// outcomeIsGone fails while the outcome of command id is still recorded.
func outcomeIsGone(store *memstore.Store, stream, id string) error {
	o, err := store.ReadOutcome(context.Background(), stream, id)
	if err == nil && o != nil {
		err = errors.New("outcome " + id + " still recorded")
	}
	return err
}

// TestOutcomePrunerDeletesOnlyOldOutcomesAndOnlyOnItsOwner: the pruner leaves the
// table alone while another node owns the job, then deletes exactly the outcomes
// older than the retention.
func TestOutcomePrunerDeletesOnlyOldOutcomesAndOnlyOnItsOwner(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := t0
	store := memstore.New(memstore.WithClock(func() time.Time { return clock }))
	t.Cleanup(func() { _ = store.Close() })
	recordRejection(t, store, "a", "old")
	clock = t0.Add(2 * time.Hour)
	recordRejection(t, store, "b", "new")

	var owner atomic.Bool
	var asked atomic.Int64 // ticks that asked whether this node owns the job
	owns := func() bool {
		defer asked.Add(1)
		return owner.Load()
	}
	p := newOutcomePruner(store, time.Hour, 5*time.Millisecond, owns, zerolog.Nop())
	p.now = func() time.Time { return t0.Add(2*time.Hour + time.Minute) }
	p.start()
	defer p.close()

	// Several ticks pass while another node owns the job: nothing is pruned.
	testwait.For(t, 5*time.Second, func() error {
		if n := asked.Load(); n < 3 {
			return fmt.Errorf("the pruner asked about ownership %d times, want 3", n)
		}
		return nil
	})
	if err := outcomeIsGone(store, "a", "old"); err == nil {
		t.Fatal("a node that does not own the job pruned")
	}
	owner.Store(true)
	testwait.For(t, 5*time.Second, func() error { return outcomeIsGone(store, "a", "old") })
	if err := outcomeIsGone(store, "b", "new"); err == nil {
		t.Fatal("an outcome inside the retention was pruned")
	}
}

// TestNodePrunesOutcomesWithARetention: a node started with --outcome-retention
// deletes the outcomes older than it.
func TestNodePrunesOutcomesWithARetention(t *testing.T) {
	cfg, err := config.Load([]string{"--node-id=r1", "--nats=" + natstest.URL(), "--prefix=" + natstest.Prefix(t), "--dsn=memory",
		"--cluster=none", "--admin-addr=off", "--outcome-retention=1m"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	past := true
	store := memstore.New(memstore.WithClock(func() time.Time {
		if past {
			return time.Now().Add(-2 * time.Minute)
		}
		return time.Now()
	}))
	t.Cleanup(func() { _ = store.Close() })
	recordRejection(t, store, "a", "stale")
	past = false
	recordRejection(t, store, "b", "fresh")

	n, err := Start(context.Background(), Options{App: testapp.App(), Config: cfg, Logger: zerolog.Nop(), Store: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown(context.Background()) })
	testwait.For(t, 10*time.Second, func() error { return outcomeIsGone(store, "a", "stale") })
	if err := outcomeIsGone(store, "b", "fresh"); err == nil {
		t.Fatal("an outcome inside the retention was pruned")
	}
}
