package aggregate_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/internal/testwait"
)

// --- the test domain: a counter ---

type Counter struct {
	ID    string `json:"id"`
	Count int    `json:"count"`
	Seen  int    `json:"seen"` // events applied, to check replay
}

type Add struct {
	ID string `json:"id"`
	N  int    `json:"n"`
}
type Reject struct{ ID string }

// Take takes n from the count, and is rejected when the count is lower: a decision
// that depends on the state.
type Take struct {
	ID string `json:"id"`
	N  int    `json:"n"`
}
type Explode struct{ ID string }
type Nothing struct{ ID string }
type Unregistered struct{ ID string }

type Added struct {
	N int `json:"n"`
}
type notRegistered struct{}

var (
	errNegative  = aggregate.Reject("negative_count", "n must not be negative")
	errNotEnough = errors.New("not enough")
)

func (c *Counter) Execute(cmd any) ([]any, error) {
	switch c2 := cmd.(type) {
	case Add:
		if c2.N < 0 {
			return nil, errNegative
		}
		return []any{Added{N: c2.N}}, nil
	case Take:
		if c.Count < c2.N {
			return nil, errNotEnough
		}
		return []any{Added{N: -c2.N}}, nil
	case Reject:
		return nil, errors.New("rejected on purpose")
	case Explode:
		panic("boom")
	case Nothing:
		return nil, nil
	case Unregistered:
		return []any{notRegistered{}}, nil
	}
	return nil, fmt.Errorf("unknown command %T", cmd)
}

func (c *Counter) Apply(ev any) {
	c.Seen++
	if e, ok := ev.(Added); ok {
		c.Count += e.N
	}
}

func counterType(cfg aggregate.TypeConfig) *aggregate.Type {
	if cfg.StreamPrefix == "" {
		cfg.StreamPrefix = "counter-"
	}
	return aggregate.NewType[Counter]("counter", cfg, Added{})
}

func counterRouter(cfg aggregate.TypeConfig) *aggregate.Router {
	t := counterType(cfg)
	r := aggregate.NewRouter()
	aggregate.Route(r, t, func(c Add) string { return c.ID })
	aggregate.Route(r, t, func(c Take) string { return c.ID })
	aggregate.Route(r, t, func(c Reject) string { return c.ID })
	aggregate.Route(r, t, func(c Explode) string { return c.ID })
	aggregate.Route(r, t, func(c Nothing) string { return c.ID })
	aggregate.Route(r, t, func(c Unregistered) string { return c.ID })
	return r
}

// --- stores ---

// storeKind makes a fresh store for one test.
type storeKind struct {
	name string
	open func(t testing.TB) aggregate.Store
}

// eachStore runs body once per store kind (in-memory and PostgreSQL).
func eachStore(t *testing.T, body func(t *testing.T, open func(testing.TB) aggregate.Store)) {
	for _, k := range storeKinds() {
		t.Run(k.name, func(t *testing.T) {
			leakCheck(t)
			body(t, k.open)
		})
	}
}

// wantCounter checks counter id's state (through d) and its stream's version.
func wantCounter(t *testing.T, d *aggregate.Dispatcher, store aggregate.Store, id string, count int, version int64) {
	t.Helper()
	if s := stateOf(t, d, id); s.Count != count {
		t.Fatalf("counter %s: state %+v, want count %d", id, s, count)
	}
	if v := streamVersions(t, store, "counter-"+id); v != version {
		t.Fatalf("counter %s: stream version %d, want %d", id, v, version)
	}
}

// countingStore counts what the runtime reads.
type countingStore struct {
	aggregate.Store
	eventsRead   atomic.Int64
	commandReads atomic.Int64
	appends      atomic.Int64
	outcomes     atomic.Int64
}

func (s *countingStore) RecordOutcome(ctx context.Context, o eventstore.CommandOutcome) (*eventstore.CommandOutcome, error) {
	s.outcomes.Add(1)
	return s.Store.RecordOutcome(ctx, o)
}

func (s *countingStore) ReadStream(ctx context.Context, id string, from int64, limit int) ([]eventstore.RecordedEvent, error) {
	evs, err := s.Store.ReadStream(ctx, id, from, limit)
	s.eventsRead.Add(int64(len(evs)))
	return evs, err
}

func (s *countingStore) ReadCommandEvents(ctx context.Context, id, cmd string) ([]eventstore.RecordedEvent, error) {
	s.commandReads.Add(1)
	return s.Store.ReadCommandEvents(ctx, id, cmd)
}

func (s *countingStore) Append(ctx context.Context, id string, exp eventstore.ExpectedVersion, evs []eventstore.EventData) ([]eventstore.RecordedEvent, error) {
	s.appends.Add(1)
	return s.Store.Append(ctx, id, exp, evs)
}

// --- dispatcher ---

func newDispatcher(t testing.TB, cfg aggregate.Config) *aggregate.Dispatcher {
	t.Helper()
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = 5 * time.Millisecond
	}
	d, err := aggregate.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func mustDispatch(t testing.TB, d *aggregate.Dispatcher, cmd any, opts ...aggregate.Option) *aggregate.Result {
	t.Helper()
	res, err := d.Dispatch(context.Background(), cmd, opts...)
	if err != nil {
		t.Fatalf("Dispatch(%T%+v): %v", cmd, cmd, err)
	}
	return res
}

func stateOf(t testing.TB, d *aggregate.Dispatcher, id string) *Counter {
	t.Helper()
	res := mustDispatch(t, d, Nothing{ID: id}, aggregate.ReturnState())
	return res.State.(*Counter)
}

// waitFor polls cond until it returns nil, failing t after total.
func waitFor(t testing.TB, total time.Duration, cond func() error) {
	t.Helper()
	testwait.For(t, total, cond)
}

// countGoroutines counts the goroutines whose stack matches.
func countGoroutines(matches func(stack string) bool) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if matches(g) {
			count++
		}
	}
	return count
}

// instanceGoroutines counts the goroutines running aggregate code.
func instanceGoroutines() int {
	return countGoroutines(func(g string) bool {
		return strings.Contains(g, "aggregate.(*instance).run") || strings.Contains(g, "aggregate.(*Dispatcher).sweep")
	})
}

// leakCheck checks, after everything else the test cleans up, that no aggregate
// goroutine is left running.
func leakCheck(t testing.TB) {
	t.Helper()
	t.Cleanup(func() { waitNoInstances(t) })
}

// waitNoInstances fails if aggregate goroutines are still running (a leak) once
// every dispatcher of the test is closed.
func waitNoInstances(t testing.TB) {
	t.Helper()
	waitFor(t, 5*time.Second, func() error {
		if n := instanceGoroutines(); n > 0 {
			return fmt.Errorf("%d aggregate goroutines still running", n)
		}
		return nil
	})
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// streamVersions checks that stream holds versions 1..n without gap and returns n.
func streamVersions(t testing.TB, s aggregate.Store, stream string) int64 {
	t.Helper()
	var n int64
	for e, err := range eventstore.StreamEvents(context.Background(), s, stream, 1, 0) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if e.StreamVersion != n {
			t.Fatalf("stream %s: version %d at position %d", stream, e.StreamVersion, n)
		}
	}
	return n
}
