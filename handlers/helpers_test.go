package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/memstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore"
	"github.com/ringleader-go/ringleader/handlers"
	"github.com/ringleader-go/ringleader/internal/testwait"
	"github.com/ringleader-go/ringleader/placement"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor polls cond until it returns nil, failing t after total.
func waitFor(t testing.TB, total time.Duration, cond func() error) {
	t.Helper()
	testwait.For(t, total, cond)
}

// newRunner creates a runner with test-friendly intervals, closed at cleanup.
func newRunner(t testing.TB, cfg handlers.RunnerConfig, rs ...handlers.Registrant) *handlers.Runner {
	t.Helper()
	if cfg.NodeID == "" {
		cfg.NodeID = "n1"
	}
	if cfg.LockRetryInterval == 0 {
		cfg.LockRetryInterval = 20 * time.Millisecond
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 200 * time.Millisecond
	}
	if cfg.LockHeartbeat == 0 {
		cfg.LockHeartbeat = 100 * time.Millisecond
	}
	r, err := handlers.NewRunner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	if err := r.Register(rs...); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}

// appendN appends n events to stream, each {"n": i}.
func appendN(t testing.TB, s eventstore.Appender, stream string, n int) []eventstore.RecordedEvent {
	t.Helper()
	evs := make([]eventstore.EventData, n)
	for i := range evs {
		evs[i] = eventstore.EventData{Type: "Counted", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))}
	}
	rec, err := s.Append(context.Background(), stream, eventstore.AnyVersion, evs)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// appendSpread appends perStream events to each of streams streams named prefix-i,
// one event per append, interleaving the streams.
func appendSpread(t testing.TB, s eventstore.Appender, prefix string, streams, perStream int) {
	t.Helper()
	for v := 0; v < perStream; v++ {
		for i := 0; i < streams; i++ {
			appendN(t, s, fmt.Sprintf("%s-%d", prefix, i), 1)
		}
	}
}

// recorder records what a handler received.
type recorder struct {
	mu     sync.Mutex
	events []eventstore.RecordedEvent
	by     map[string][]int64 // stream → versions received, in order
	count  map[int64]int      // position → deliveries
}

func newRecorder() *recorder {
	return &recorder{by: map[string][]int64{}, count: map[int64]int{}}
}

func (r *recorder) handle(_ context.Context, e handlers.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e.RecordedEvent)
	r.by[e.StreamID] = append(r.by[e.StreamID], e.StreamVersion)
	r.count[e.GlobalPosition]++
	return nil
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

func (r *recorder) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.count)
}

// checkExactlyOnceInOrder checks every event of want was received exactly once and
// each stream's versions arrived in order.
func (r *recorder) checkExactlyOnceInOrder(t testing.TB, want int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.count) != want {
		t.Fatalf("received %d distinct events, want %d", len(r.count), want)
	}
	for pos, n := range r.count {
		if n != 1 {
			t.Errorf("event at %d delivered %d times", pos, n)
		}
	}
	for stream, vs := range r.by {
		for i := 1; i < len(vs); i++ {
			if vs[i] <= vs[i-1] {
				t.Fatalf("stream %s out of order: %v", stream, vs)
			}
		}
	}
}

// casLog is a store that records every successful checkpoint compare-and-set and
// fails the test if one moves a checkpoint backward.
type casLog struct {
	eventstore.Store
	t  testing.TB
	mu sync.Mutex
	// moves per checkpoint name: the sequence of (expected, next) that succeeded.
	moves map[string][][2]int64
}

func newCASLog(t testing.TB, s eventstore.Store) *casLog {
	return &casLog{Store: s, t: t, moves: map[string][][2]int64{}}
}

func (c *casLog) StoreCheckpoint(ctx context.Context, name string, expected, next int64) error {
	err := c.Store.StoreCheckpoint(ctx, name, expected, next)
	if err == nil {
		c.mu.Lock()
		c.moves[name] = append(c.moves[name], [2]int64{expected, next})
		c.mu.Unlock()
		if next < expected {
			c.t.Errorf("checkpoint %s moved backward: %d → %d", name, expected, next)
		}
	}
	return err
}

// checkChains checks each checkpoint's successful moves form one forward chain.
func (c *casLog) checkChains(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, moves := range c.moves {
		for i, m := range moves {
			if m[1] <= m[0] {
				t.Errorf("%s: move %d not forward: %v", name, i, m)
			}
			if i > 0 && m[0] != moves[i-1][1] {
				t.Errorf("%s: move %d starts at %d, previous ended at %d", name, i, m[0], moves[i-1][1])
			}
		}
	}
}

// checkpointsAt waits until every partition of handler reaches the store's head.
func caughtUp(ctx context.Context, r *handlers.Runner, handler string) error {
	st, err := r.Status(ctx)
	if err != nil {
		return err
	}
	found := false
	for _, s := range st {
		if s.Handler != handler {
			continue
		}
		found = true
		if s.Lag != 0 || s.Position < s.Head {
			return fmt.Errorf("%s#%d at %d, head %d, lag %d, state %s", s.Handler, s.Partition, s.Position, s.Head, s.Lag, s.State)
		}
	}
	if !found {
		return fmt.Errorf("no partition of handler %q is registered", handler)
	}
	return nil
}

func statusOf(t testing.TB, r *handlers.Runner, handler string, partition int) handlers.PartitionStatus {
	t.Helper()
	st, err := r.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.Handler == handler && s.Partition == partition {
			return s
		}
	}
	t.Fatalf("no status for %s#%d", handler, partition)
	return handlers.PartitionStatus{}
}

func memStore(t testing.TB) eventstore.Store {
	s := memstore.New()
	t.Cleanup(func() { _ = s.Close() })
	return s
}

var errBoom = errors.New("boom")

type pgxTx = pgx.Tx

var _ = pgstore.DefaultSchema

func placementOf(stream string, k int) int { return placement.StreamPartition(stream, k) }
