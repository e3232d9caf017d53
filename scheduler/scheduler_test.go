package scheduler_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
	"github.com/ringleader-go/ringleader/internal/testwait"
	"github.com/ringleader-go/ringleader/placement"
	"github.com/ringleader-go/ringleader/scheduler"
)

// TestMain fails the package if a Firer (or anything else) leaks a goroutine.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// backend is what the tests use of a schedule store.
type backend interface {
	scheduler.Storage
	ScheduleOnce(ctx context.Context, r scheduler.Request) (scheduler.Schedule, error)
	Cancel(ctx context.Context, id string) (bool, error)
	Get(ctx context.Context, id string) (scheduler.Schedule, error)
	Counts(ctx context.Context) (map[scheduler.State]int64, error)
}

var (
	_ backend = (*scheduler.Store)(nil)
	_ backend = (*scheduler.MemStore)(nil)
)

// opener opens an empty store.
type opener func(t *testing.T, opts ...scheduler.Option) backend

// eachBackend runs test against PostgreSQL and against the in-memory store.
func eachBackend(t *testing.T, test func(t *testing.T, newStore opener)) {
	t.Run("postgres", func(t *testing.T) { test(t, openPG) })
	t.Run("memory", func(t *testing.T) {
		test(t, func(_ *testing.T, opts ...scheduler.Option) backend { return scheduler.NewMemStore(nil, opts...) })
	})
}

// openPG opens a scheduler store in a fresh schema of the test database.
func openPG(t *testing.T, opts ...scheduler.Option) backend {
	t.Helper()
	pg := pgtest.NewStore(t)
	s, err := scheduler.Open(context.Background(), pg.Pool(), "", opts...)
	if err != nil {
		t.Fatal(err)
	}
	// A second Open on the same schema is a no-op.
	if _, err := scheduler.Open(context.Background(), pg.Pool(), ""); err != nil {
		t.Fatalf("second Open: %v", err)
	}
	return s
}

// aggregate stands in for the command path: it applies each Command-Id once, like
// the aggregate runtime, and records every dispatch.
type aggregate struct {
	mu       sync.Mutex
	calls    map[string]int       // dispatches per schedule id
	applied  map[string]time.Time // first application per schedule id
	byNode   map[string]int       // applications per firing node
	failures map[string][]error   // errors to return, per id, in order
	log      []dispatched         // every dispatch, in order
}

// dispatched is one call of a DispatchFunc: which node sent which schedule.
type dispatched struct {
	node string
	s    scheduler.Schedule
}

func newAggregate() *aggregate {
	return &aggregate{calls: map[string]int{}, applied: map[string]time.Time{}, byNode: map[string]int{}, failures: map[string][]error{}}
}

func (a *aggregate) dispatch(node string) scheduler.DispatchFunc {
	return func(_ context.Context, s scheduler.Schedule) error {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.calls[s.ID]++
		a.log = append(a.log, dispatched{node, s})
		if f := a.failures[s.ID]; len(f) > 0 {
			a.failures[s.ID] = f[1:]
			return f[0]
		}
		if _, ok := a.applied[s.ID]; !ok {
			a.applied[s.ID] = time.Now()
			a.byNode[node]++
		}
		return nil
	}
}

// dispatches returns the dispatches of the schedules whose id has prefix, by id.
func (a *aggregate) dispatches(prefix string) map[string][]dispatched {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string][]dispatched{}
	for _, d := range a.log {
		if strings.HasPrefix(d.s.ID, prefix) {
			out[d.s.ID] = append(out[d.s.ID], d)
		}
	}
	return out
}

func (a *aggregate) appliedAt(id string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	at, ok := a.applied[id]
	return at, ok
}

func (a *aggregate) callsOf(id string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[id]
}

func ownsAll(string) bool { return true }

func startFirer(t *testing.T, cfg scheduler.FirerConfig, owns func(string) bool) *scheduler.Firer {
	t.Helper()
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 200 * time.Millisecond
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = 20 * time.Millisecond
	}
	f, err := scheduler.NewFirer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if owns != nil {
		f.SetOwnership(owns)
	}
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// waitFor polls cond until it returns nil, failing t after limit with what it
// waited for.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() error) {
	t.Helper()
	if err := testwait.Until(limit, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func waitState(t *testing.T, s backend, id string, want scheduler.State) scheduler.Schedule {
	t.Helper()
	var got scheduler.Schedule
	waitFor(t, 10*time.Second, id+" "+string(want), func() error {
		var err error
		if got, err = s.Get(context.Background(), id); err != nil {
			return err
		}
		if got.State != want {
			return fmt.Errorf("state %s (last error %q)", got.State, got.LastError)
		}
		return nil
	})
	return got
}

type deposit struct {
	AccountNumber string `json:"account_number"`
	Amount        int64  `json:"amount"`
}

func req(id string, due time.Time) scheduler.Request {
	return scheduler.Request{ID: id, CommandType: "DepositMoney", Command: deposit{"A1", 5}, DueAt: due, CorrelationID: "corr", CausationID: "cause"}
}

func TestFiresOnceWhenDueNotEarly(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore opener) {
		s := newStore(t)
		agg := newAggregate()
		due := time.Now().Add(700 * time.Millisecond)
		if _, err := s.ScheduleOnce(context.Background(), req("s-1", due)); err != nil {
			t.Fatal(err)
		}
		startFirer(t, scheduler.FirerConfig{Store: s, Dispatch: agg.dispatch("n1"), NodeID: "n1", PollInterval: 5 * time.Second}, ownsAll)
		got := waitState(t, s, "s-1", scheduler.Fired)
		at, _ := agg.appliedAt("s-1")
		if at.Before(due) {
			t.Fatalf("fired at %s, %s before it was due", at, due.Sub(at))
		}
		// The poll interval is 5s: firing within ~1s of the due time means the Firer
		// woke for it (next-due timer), not for a poll.
		if late := at.Sub(due); late > 2*time.Second {
			t.Errorf("fired %s after it was due", late)
		}
		if n := agg.callsOf("s-1"); n != 1 {
			t.Errorf("dispatched %d times, want 1", n)
		}
		if got.FiredBy != "n1" || got.FiredAt == nil || got.Attempts != 1 || got.CorrelationID != "corr" || got.CausationID != "cause" {
			t.Errorf("fired schedule = %+v", got)
		}
	})
}

func TestCancelBeforeDuePreventsFiring(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore opener) {
		s := newStore(t)
		agg := newAggregate()
		ctx := context.Background()
		now := time.Now()
		if _, err := s.ScheduleOnce(ctx, req("cancelled", now.Add(300*time.Millisecond))); err != nil {
			t.Fatal(err)
		}
		// A later schedule is the witness that the Firer has passed the cancelled one's due time.
		if _, err := s.ScheduleOnce(ctx, req("witness", now.Add(600*time.Millisecond))); err != nil {
			t.Fatal(err)
		}
		ok, err := s.Cancel(ctx, "cancelled")
		if err != nil || !ok {
			t.Fatalf("Cancel = %v, %v; want true", ok, err)
		}
		if ok, err := s.Cancel(ctx, "cancelled"); err != nil || ok {
			t.Fatalf("second Cancel = %v, %v; want false, nil", ok, err)
		}
		if _, err := s.Cancel(ctx, "nope"); !errors.Is(err, scheduler.ErrNotFound) {
			t.Fatalf("Cancel of an unknown id = %v, want ErrNotFound", err)
		}
		startFirer(t, scheduler.FirerConfig{Store: s, Dispatch: agg.dispatch("n1"), NodeID: "n1"}, ownsAll)
		waitState(t, s, "witness", scheduler.Fired)
		if n := agg.callsOf("cancelled"); n != 0 {
			t.Fatalf("a cancelled schedule was dispatched %d times", n)
		}
		if got, _ := s.Get(ctx, "cancelled"); got.State != scheduler.Cancelled {
			t.Fatalf("cancelled schedule is %s", got.State)
		}
		// Re-scheduling the same content does not revive it.
		if got, err := s.ScheduleOnce(ctx, req("cancelled", now.Add(300*time.Millisecond))); err != nil || got.State != scheduler.Cancelled {
			t.Fatalf("re-schedule of a cancelled schedule = %+v, %v", got, err)
		}
	})
}

func TestScheduleOnceIdempotentAndValidated(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore opener) {
		known := func(typ string, body json.RawMessage) error {
			if typ != "DepositMoney" {
				return fmt.Errorf("unknown command type %q", typ)
			}
			return nil
		}
		s := newStore(t, scheduler.WithCheck(known))
		ctx := context.Background()
		due := time.Now().Add(time.Hour)
		first, err := s.ScheduleOnce(ctx, req("idem", due))
		if err != nil {
			t.Fatal(err)
		}
		// Same content (the body spelled differently, as JSON values equal): a no-op.
		again := req("idem", due)
		again.Command = json.RawMessage(`{ "amount": 5, "account_number": "A1" }`)
		second, err := s.ScheduleOnce(ctx, again)
		if err != nil {
			t.Fatalf("same schedule again: %v", err)
		}
		if !second.CreatedAt.Equal(first.CreatedAt) || second.State != scheduler.Pending {
			t.Fatalf("second = %+v, first = %+v", second, first)
		}
		// Different content under the same id: a conflict that names the existing one.
		for name, r := range map[string]scheduler.Request{
			"due":  req("idem", due.Add(time.Second)),
			"body": {ID: "idem", CommandType: "DepositMoney", Command: deposit{"A1", 6}, DueAt: due, CorrelationID: "corr", CausationID: "cause"},
		} {
			_, err := s.ScheduleOnce(ctx, r)
			var ce *scheduler.ConflictError
			if !errors.Is(err, scheduler.ErrConflict) || !errors.As(err, &ce) || ce.Existing.ID != "idem" {
				t.Errorf("different %s: err = %v, want a *ConflictError", name, err)
			}
		}
		for name, r := range map[string]scheduler.Request{
			"no id":          {CommandType: "DepositMoney", Command: deposit{}, DueAt: due},
			"no type":        {ID: "x", Command: deposit{}, DueAt: due},
			"subject chars":  {ID: "x", CommandType: "Deposit.Money", Command: deposit{}, DueAt: due},
			"unknown type":   {ID: "x", CommandType: "Nope", Command: deposit{}, DueAt: due},
			"malformed json": {ID: "x", CommandType: "DepositMoney", Command: json.RawMessage(`{"amount":`), DueAt: due},
			"not an object":  {ID: "x", CommandType: "DepositMoney", Command: []byte(`[1]`), DueAt: due},
			"no command":     {ID: "x", CommandType: "DepositMoney", DueAt: due},
			"no due time":    {ID: "x", CommandType: "DepositMoney", Command: deposit{}},
			"unencodable":    {ID: "x", CommandType: "DepositMoney", Command: func() {}, DueAt: due},
		} {
			if _, err := s.ScheduleOnce(ctx, r); !errors.Is(err, scheduler.ErrInvalid) {
				t.Errorf("%s: err = %v, want ErrInvalid", name, err)
			}
		}
		if _, err := s.Get(ctx, "x"); !errors.Is(err, scheduler.ErrNotFound) {
			t.Errorf("an invalid request was stored: %v", err)
		}
	})
}

func TestPastDueFiresNow(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore opener) {
		s := newStore(t)
		agg := newAggregate()
		if _, err := s.ScheduleOnce(context.Background(), req("past", time.Now().Add(-time.Hour))); err != nil {
			t.Fatal(err)
		}
		startFirer(t, scheduler.FirerConfig{Store: s, Dispatch: agg.dispatch("n1"), NodeID: "n1"}, ownsAll)
		waitState(t, s, "past", scheduler.Fired)
	})
}

// TestTwoFirersSplitThePartitions: two nodes, each firing the partitions the ring
// gives it, dispatch every schedule exactly once, each from the owner of its
// partition, and share the work; then both believe they own everything (a split).
// What the package promises then (doc.go, "Exactly-once effect") is at-least-once
// dispatch, every dispatch carrying the schedule's own id (the Command-Id the
// aggregate deduplicates on) and command, so that the effect is once: counted here
// per dispatch, not through the stand-in aggregate's deduplication.
func TestTwoFirersSplitThePartitions(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore opener) {
		s := newStore(t)
		ctx := context.Background()
		ring, err := placement.New(placement.Config{}, []placement.Member{{ID: "n1"}, {ID: "n2"}})
		if err != nil {
			t.Fatal(err)
		}
		ownerOf := func(id string) string {
			o, _ := ring.Owner(scheduler.PartitionKey(scheduler.PartitionOf(id)))
			return o.ID
		}
		ownedBy := func(node string) func(string) bool {
			return func(key string) bool { o, ok := ring.Owner(key); return ok && o.ID == node }
		}
		agg := newAggregate()
		const n = 200
		due := time.Now().Add(300 * time.Millisecond)
		wantBody := map[string]json.RawMessage{}
		for i := range n {
			got, err := s.ScheduleOnce(ctx, req(fmt.Sprintf("split-%d", i), due))
			if err != nil {
				t.Fatal(err)
			}
			wantBody[got.ID] = got.Body
		}
		startFirer(t, scheduler.FirerConfig{Store: s, Dispatch: agg.dispatch("n1"), NodeID: "n1"}, ownedBy("n1"))
		startFirer(t, scheduler.FirerConfig{Store: s, Dispatch: agg.dispatch("n2"), NodeID: "n2"}, ownedBy("n2"))
		waitFor(t, 20*time.Second, "all fired", func() error {
			c, err := s.Counts(ctx)
			if err != nil {
				return err
			}
			if c[scheduler.Fired] != n {
				return fmt.Errorf("counts %v", c)
			}
			return nil
		})
		perNode := map[string]int{}
		byID := agg.dispatches("split-")
		for i := range n {
			id := fmt.Sprintf("split-%d", i)
			ds := byID[id]
			if len(ds) != 1 {
				t.Errorf("%s dispatched %d times with exclusive owners, want once", id, len(ds))
				continue
			}
			if owner := ownerOf(id); ds[0].node != owner {
				t.Errorf("%s (partition %d, owner %s) was dispatched by %s", id, scheduler.PartitionOf(id), owner, ds[0].node)
			}
			perNode[ds[0].node]++
			if got, _ := s.Get(ctx, id); got.FiredBy != ds[0].node {
				t.Errorf("%s dispatched by %s but marked fired by %q", id, ds[0].node, got.FiredBy)
			}
		}
		if perNode["n1"] == 0 || perNode["n2"] == 0 {
			t.Errorf("dispatches per node %v: one node did all the work", perNode)
		}
		t.Logf("FIGURE: schedules fired per node %v", perNode)

		// Two more Firers own everything (n1 and n2 go on firing their halves): each
		// schedule may be dispatched more than once, its effect is once.
		due = time.Now().Add(300 * time.Millisecond)
		for i := range n {
			got, err := s.ScheduleOnce(ctx, req(fmt.Sprintf("both-%d", i), due))
			if err != nil {
				t.Fatal(err)
			}
			wantBody[got.ID] = got.Body
		}
		a := startFirer(t, scheduler.FirerConfig{Store: s, Dispatch: agg.dispatch("n3"), NodeID: "n3"}, ownsAll)
		b := startFirer(t, scheduler.FirerConfig{Store: s, Dispatch: agg.dispatch("n4"), NodeID: "n4"}, ownsAll)
		waitFor(t, 20*time.Second, "all fired", func() error {
			c, err := s.Counts(ctx)
			if err != nil {
				return err
			}
			if c[scheduler.Fired] != 2*n || c[scheduler.Pending] != 0 {
				return fmt.Errorf("counts %v", c)
			}
			return nil
		})
		byID = agg.dispatches("both-")
		twice := 0
		for i := range n {
			id := fmt.Sprintf("both-%d", i)
			ds := byID[id]
			// At least once.
			if len(ds) == 0 {
				t.Errorf("%s is fired but was never dispatched", id)
				continue
			}
			if len(ds) > 1 {
				twice++
			}
			// Every dispatch is the same command under the schedule's id, so the
			// aggregate applies it once: one Command-Id, one effect. Only Firers that
			// own its partition dispatch it (n1 and n2 still fire their halves), each
			// at most once: no crash, no failed mark here.
			by := map[string]bool{}
			for _, d := range ds {
				by[d.node] = true
				if d.node != "n3" && d.node != "n4" && d.node != ownerOf(id) {
					t.Errorf("%s dispatched by %s, which does not own its partition", id, d.node)
				}
				if d.s.ID != id || d.s.CommandType != "DepositMoney" || !jsonEqual(d.s.Body, wantBody[id]) {
					t.Errorf("%s: %s dispatched %s %s under id %q, want the scheduled command under its own id", id, d.node, d.s.CommandType, d.s.Body, d.s.ID)
				}
			}
			if len(by) != len(ds) {
				t.Errorf("%s dispatched %d times by %v: one node dispatched it twice", id, len(ds), by)
			}
			if got, _ := s.Get(ctx, id); !by[got.FiredBy] {
				t.Errorf("%s marked fired by %q, which never dispatched it (dispatched by %v)", id, got.FiredBy, by)
			}
		}
		t.Logf("FIGURE: with two more owners of everything, %d of %d schedules dispatched more than once; n3 %+v, n4 %+v", twice, n, a.Stats(), b.Stats())
	})
}

// jsonEqual reports whether two JSON documents hold equal values.
func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func TestTransientErrorIsRetriedAndRefusalFails(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore opener) {
		s := newStore(t)
		ctx := context.Background()
		agg := newAggregate()
		agg.failures["flaky"] = []error{errors.New("no reply"), errors.New("timeout")}
		agg.failures["refused"] = []error{&scheduler.RejectedError{Code: "rejected", Message: "account closed"}}
		for _, id := range []string{"flaky", "refused"} {
			if _, err := s.ScheduleOnce(ctx, req(id, time.Now())); err != nil {
				t.Fatal(err)
			}
		}
		f := startFirer(t, scheduler.FirerConfig{Store: s, Dispatch: agg.dispatch("n1"), NodeID: "n1"}, ownsAll)
		got := waitState(t, s, "flaky", scheduler.Fired)
		if got.Attempts != 3 || agg.callsOf("flaky") != 3 {
			t.Errorf("flaky: attempts %d, calls %d; want 3, 3", got.Attempts, agg.callsOf("flaky"))
		}
		if got.LastError != "timeout" {
			t.Errorf("flaky: last error %q", got.LastError)
		}
		got = waitState(t, s, "refused", scheduler.Failed)
		if agg.callsOf("refused") != 1 || got.LastError == "" {
			t.Errorf("refused: calls %d, last error %q", agg.callsOf("refused"), got.LastError)
		}
		if st := f.Stats(); st.Retried != 2 || st.Failed != 1 || st.Fired != 1 {
			t.Errorf("stats %+v", st)
		}
	})
}

// TestFailoverFiresWhenOwnershipArrives: a schedule due while nobody fired its
// partition is fired as soon as the ring gives the partition to a live Firer.
func TestFailoverFiresWhenOwnershipArrives(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore opener) {
		s := newStore(t)
		agg := newAggregate()
		if _, err := s.ScheduleOnce(context.Background(), req("orphan", time.Now())); err != nil {
			t.Fatal(err)
		}
		f := startFirer(t, scheduler.FirerConfig{Store: s, Dispatch: agg.dispatch("n2"), NodeID: "n2", PollInterval: time.Hour}, nil)
		if got := f.Owned(); len(got) != 0 {
			t.Fatalf("owns %v before SetOwnership", got)
		}
		f.SetOwnership(ownsAll)
		waitState(t, s, "orphan", scheduler.Fired)
	})
}

func TestConfigValidate(t *testing.T) {
	if _, err := scheduler.NewFirer(scheduler.FirerConfig{}); !errors.Is(err, scheduler.ErrInvalid) {
		t.Fatalf("empty config: %v", err)
	}
	f, err := scheduler.NewFirer(scheduler.FirerConfig{Store: &scheduler.Store{}, Dispatch: func(context.Context, scheduler.Schedule) error { return nil }, NodeID: "n"})
	if err != nil {
		t.Fatal(err)
	}
	// Close without Start, twice, is fine; Start after Close is refused.
	_ = f.Close()
	_ = f.Close()
	if err := f.Start(context.Background()); !errors.Is(err, scheduler.ErrClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
}
