package aggregate_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/aggregate"
)

// rehydrations records AfterRehydrate calls.
type rehydrations struct {
	mu    sync.Mutex
	calls []rehydration
}

type rehydration struct {
	stream   string
	snapshot int64
	replayed int
}

func (r *rehydrations) knobs() *aggregate.TestingKnobs {
	return &aggregate.TestingKnobs{AfterRehydrate: func(stream string, snap int64, n int) {
		r.mu.Lock()
		r.calls = append(r.calls, rehydration{stream, snap, n})
		r.mu.Unlock()
	}}
}

func (r *rehydrations) last() (rehydration, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.calls) == 0 {
		return rehydration{}, 0
	}
	return r.calls[len(r.calls)-1], len(r.calls)
}

func liveIs(d *aggregate.Dispatcher, n int) func() error {
	return func() error {
		if got := d.Stats().Live; got != n {
			return fmt.Errorf("live = %d, want %d", got, n)
		}
		return nil
	}
}

func TestIdleLifespanPassivatesAndRehydrates(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(testing.TB) aggregate.Store) {
		clock := newFakeClock()
		var rh rehydrations
		router := counterRouter(aggregate.TypeConfig{Lifespan: aggregate.IdleLifespan{Idle: time.Minute}})
		d := newDispatcher(t, aggregate.Config{Store: open(t), Router: router, Now: clock.Now, Knobs: rh.knobs()})
		mustDispatch(t, d, Add{ID: "l", N: 4})
		mustDispatch(t, d, Add{ID: "l", N: 4})
		clock.Advance(59 * time.Second)
		// Not yet expired: a sweep or two must leave it alone.
		mustDispatch(t, d, Add{ID: "k", N: 1}) // the sweeper runs meanwhile
		if d.Stats().Live != 2 {
			t.Fatalf("live = %d before the idle time passed", d.Stats().Live)
		}
		if _, n := rh.last(); n != 2 {
			t.Fatalf("rehydrations = %d", n)
		}
		clock.Advance(2 * time.Minute)
		waitFor(t, 5*time.Second, liveIs(d, 0))
		if s := stateOf(t, d, "l"); s.Count != 8 || s.Seen != 2 {
			t.Fatalf("rehydrated state %+v", s)
		}
		if last, n := rh.last(); n != 3 || last.stream != "counter-l" || last.replayed != 2 {
			t.Fatalf("rehydration %+v (%d)", last, n)
		}
	})
}

func TestStopNowLifespan(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(testing.TB) aggregate.Store) {
		var rh rehydrations
		life := aggregate.LifespanFuncs{
			Event: func(e any) aggregate.Keep {
				if e.(Added).N == 0 {
					return aggregate.StopNow
				}
				return aggregate.KeepForever
			},
			Error: func(error) aggregate.Keep { return aggregate.StopNow },
		}
		d := newDispatcher(t, aggregate.Config{Store: open(t), Router: counterRouter(aggregate.TypeConfig{Lifespan: life}), Knobs: rh.knobs()})
		mustDispatch(t, d, Add{ID: "s", N: 1})
		mustDispatch(t, d, Nothing{ID: "s"})
		if _, n := rh.last(); n != 1 || d.Stats().Live != 1 {
			t.Fatalf("kept forever: rehydrations %d live %d", n, d.Stats().Live)
		}
		mustDispatch(t, d, Add{ID: "s", N: 0}) // stop after this event
		waitFor(t, 5*time.Second, liveIs(d, 0))
		if s := stateOf(t, d, "s"); s.Count != 1 || s.Seen != 2 {
			t.Fatalf("state %+v", s)
		}
		if _, n := rh.last(); n != 2 {
			t.Fatalf("rehydrations = %d, want 2", n)
		}
		_, _ = d.Dispatch(context.Background(), Reject{ID: "s"}) // stop after an error
		waitFor(t, 5*time.Second, liveIs(d, 0))
	})
}

func TestLRUCapBoundsLiveInstances(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(testing.TB) aggregate.Store) {
		const maxLive, ids = 8, 60
		d := newDispatcher(t, aggregate.Config{Store: open(t), Router: counterRouter(aggregate.TypeConfig{}), MaxLive: maxLive})
		var wg sync.WaitGroup
		var over atomic.Int64
		for w := range 4 {
			wg.Go(func() {
				for i := range ids {
					id := fmt.Sprintf("lru-%d", (i*7+w)%ids)
					if _, err := d.Dispatch(context.Background(), Add{ID: id, N: 1}); err != nil {
						t.Error(err)
						return
					}
					if d.Stats().Live > maxLive {
						over.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if over.Load() > 0 || d.Stats().Live > maxLive {
			t.Fatalf("live exceeded the cap %d times (now %d)", over.Load(), d.Stats().Live)
		}
		// Evicted goroutines exit too.
		waitFor(t, 5*time.Second, func() error {
			if n := instanceGoroutines() - 1; n > maxLive { // minus the sweeper
				return fmt.Errorf("%d instance goroutines for a cap of %d", n, maxLive)
			}
			return nil
		})
		// Every aggregate got every command, whether or not it was evicted between.
		total := 0
		for i := range ids {
			total += stateOf(t, d, fmt.Sprintf("lru-%d", i)).Count
		}
		if total != 4*ids {
			t.Fatalf("total = %d, want %d", total, 4*ids)
		}
	})
}

func TestPassivate(t *testing.T) {
	leakCheck(t)
	d := newDispatcher(t, aggregate.Config{Store: storeKinds()[0].open(t), Router: counterRouter(aggregate.TypeConfig{})})
	mustDispatch(t, d, Add{ID: "p", N: 1})
	if live := d.LiveStreams(); len(live) != 1 || live[0] != "counter-p" {
		t.Fatalf("live streams %v, want [counter-p]", live)
	}
	if err := d.Passivate(context.Background(), "counter-p"); err != nil {
		t.Fatal(err)
	}
	if d.Stats().Live != 0 || len(d.LiveStreams()) != 0 {
		t.Fatal("still live")
	}
	if err := d.Passivate(context.Background(), "counter-none"); err != nil {
		t.Fatal(err)
	}
}

func TestSnapshotsUsedAndIgnoredAfterVersionChange(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(testing.TB) aggregate.Store) {
		store := &countingStore{Store: open(t)}
		var rh rehydrations
		v1 := counterRouter(aggregate.TypeConfig{Snapshots: aggregate.SnapshotPolicy{Every: 10, Version: 1}})
		d := newDispatcher(t, aggregate.Config{Store: store, Router: v1, Knobs: rh.knobs()})
		for range 25 {
			mustDispatch(t, d, Add{ID: "snap", N: 2})
		}
		_ = d.Close()

		// Restart with the same schema version: snapshot at 20, 5 events replayed.
		d = newDispatcher(t, aggregate.Config{Store: store, Router: v1, Knobs: rh.knobs()})
		read := store.eventsRead.Load()
		if s := stateOf(t, d, "snap"); s.Count != 50 {
			t.Fatalf("state from snapshot %+v", s)
		}
		if last, _ := rh.last(); last.snapshot != 20 || last.replayed != 5 {
			t.Fatalf("rehydration %+v, want snapshot 20 + 5 events", last)
		}
		if got := store.eventsRead.Load() - read; got != 5 {
			t.Fatalf("events read = %d, want 5", got)
		}
		_ = d.Close()

		// The state's shape changed: version 2 ignores the old snapshot...
		v2 := counterRouter(aggregate.TypeConfig{Snapshots: aggregate.SnapshotPolicy{Every: 10, Version: 2}})
		d = newDispatcher(t, aggregate.Config{Store: store, Router: v2, Knobs: rh.knobs()})
		read = store.eventsRead.Load()
		if s := stateOf(t, d, "snap"); s.Count != 50 || s.Seen != 25 {
			t.Fatalf("state replayed %+v", s)
		}
		if last, _ := rh.last(); last.snapshot != 0 || last.replayed != 25 {
			t.Fatalf("rehydration %+v, want a full replay", last)
		}
		if got := store.eventsRead.Load() - read; got != 25 {
			t.Fatalf("events read = %d, want 25", got)
		}
		// ...and, having replayed more than Every events, writes a version-2 snapshot.
		// (It is saved after the reply, so poll.)
		waitFor(t, 5*time.Second, func() error {
			_, err := store.LoadSnapshot(context.Background(), "counter-snap", 2)
			return err
		})
	})
}
