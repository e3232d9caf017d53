package aggregate_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/eventstore"
)

// gatedBatchStore is a BatchAppender whose single appends wait for a gate, so that
// appends arriving meanwhile queue up for a group commit; it records batch sizes.
// When an append of conflictOn expecting version 0 reaches it (alone or in a batch),
// it first appends foreign to that stream through the base store, so that the
// append loses its expected version for certain; conflicts records what each such
// append then got.
type gatedBatchStore struct {
	aggregate.Store
	batch eventstore.BatchAppender
	gate  chan struct{}

	conflictOn string
	foreign    eventstore.EventData

	mu        sync.Mutex
	singles   int
	batches   []int
	conflicts []error // the results of the appends of conflictOn made to lose
	moved     bool    // the foreign event is in
}

// interfere appends the foreign event before an append of conflictOn at version 0
// (once) and reports whether it did.
func (s *gatedBatchStore) interfere(ctx context.Context, id string, exp eventstore.ExpectedVersion) bool {
	if s.conflictOn == "" || id != s.conflictOn || exp != eventstore.Exact(0) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.moved {
		return false
	}
	if _, err := s.Store.Append(ctx, id, eventstore.NoStream, []eventstore.EventData{s.foreign}); err != nil {
		panic(fmt.Sprintf("foreign append to %s: %v", id, err))
	}
	s.moved = true
	return true
}

func (s *gatedBatchStore) Append(ctx context.Context, id string, exp eventstore.ExpectedVersion, evs []eventstore.EventData) ([]eventstore.RecordedEvent, error) {
	s.mu.Lock()
	s.singles++
	s.mu.Unlock()
	<-s.gate
	moved := s.interfere(ctx, id, exp)
	rec, err := s.Store.Append(ctx, id, exp, evs)
	if moved {
		s.mu.Lock()
		s.conflicts = append(s.conflicts, err)
		s.mu.Unlock()
	}
	return rec, err
}

func (s *gatedBatchStore) AppendMany(ctx context.Context, reqs []eventstore.AppendRequest) []eventstore.AppendResult {
	s.mu.Lock()
	s.batches = append(s.batches, len(reqs))
	s.mu.Unlock()
	moved := -1
	for i, r := range reqs {
		if s.interfere(ctx, r.StreamID, r.Expected) {
			moved = i
		}
	}
	res := s.batch.AppendMany(ctx, reqs)
	if moved >= 0 {
		s.mu.Lock()
		s.conflicts = append(s.conflicts, res[moved].Err)
		s.mu.Unlock()
	}
	return res
}

// queuedAppends counts the goroutines waiting in the dispatcher's group-commit
// queue (an instance's append that found the batches in flight taken).
func queuedAppends() int {
	return countGoroutines(func(g string) bool {
		// Queued: blocked in groupAppender.append itself, not in a store call it made.
		return strings.Contains(g, "aggregate.(*groupAppender).append(") && !strings.Contains(g, "gatedBatchStore).Append(")
	})
}

// Appends of different aggregates that arrive while an append is in flight go out
// together; a wrong version in the batch fails only its own command's attempt, which
// catches up and retries; an idle dispatcher appends at once, alone.
func TestGroupCommit(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(testing.TB) aggregate.Store) {
		base := open(t)
		ba, ok := base.(eventstore.BatchAppender)
		if !ok {
			t.Skip("store is not a BatchAppender")
		}
		store := &gatedBatchStore{Store: base, batch: ba, gate: make(chan struct{}),
			conflictOn: "counter-c-3", foreign: eventstore.EventData{Type: "Added", Data: []byte(`{"n":100}`)}}
		d := newDispatcher(t, aggregate.Config{Store: store, Router: counterRouter(aggregate.TypeConfig{}), AppendBatchesInFlight: 1})

		// Idle: one append, sent at once on its own (the gate is open for it).
		go func() { store.gate <- struct{}{} }()
		mustDispatch(t, d, Add{ID: "solo", N: 1})
		if store.singles != 1 || len(store.batches) != 0 {
			t.Fatalf("an idle append made %d single appends and batches %v, want one single append", store.singles, store.batches)
		}

		// Busy: the first append holds the gate; 20 more queue.
		const n = 20
		first := make(chan error, 1)
		go func() { _, err := d.Dispatch(context.Background(), Add{ID: "first", N: 1}); first <- err }()
		waitFor(t, 5*time.Second, func() error {
			store.mu.Lock()
			defer store.mu.Unlock()
			if store.singles != 2 {
				return fmt.Errorf("%d single appends", store.singles)
			}
			return nil
		})
		// The 20 commands execute against version 0 and queue their appends behind
		// the gated one. When c-3's append (expecting 0) reaches the store, a
		// foreign writer moves c-3 on first, so that append loses.
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = d.Dispatch(context.Background(), Add{ID: fmt.Sprintf("c-%d", i), N: 10})
			}()
		}
		waitFor(t, 10*time.Second, func() error {
			if q := queuedAppends(); q < n {
				return fmt.Errorf("%d appends queued, want %d", q, n)
			}
			return nil
		})
		close(store.gate) // the first append goes on; the queued ones follow as a batch
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("c-%d: %v", i, err)
			}
		}
		store.mu.Lock()
		batches := append([]int(nil), store.batches...)
		store.mu.Unlock()
		if len(batches) == 0 || batches[0] != n {
			t.Fatalf("batches %v: the %d queued appends did not go out together", batches, n)
		}
		store.mu.Lock()
		conflicts := append([]error(nil), store.conflicts...)
		store.mu.Unlock()
		if len(conflicts) != 1 || !errors.Is(conflicts[0], eventstore.ErrWrongVersion) {
			t.Fatalf("c-3's append at version 0 after the foreign append got %v, want one wrong-version error", conflicts)
		}
		if got := stateOf(t, d, "c-3"); got.Count != 110 || got.Seen != 2 {
			t.Errorf("c-3 after losing its batch slot: %+v, want the foreign 100 then its own 10", got)
		}
		for i := range n {
			if v := streamVersions(t, base, fmt.Sprintf("counter-c-%d", i)); (i == 3 && v != 2) || (i != 3 && v != 1) {
				t.Errorf("counter-c-%d at version %d", i, v)
			}
		}
	})
}
