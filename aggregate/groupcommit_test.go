package aggregate_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/eventstore"
)

// gatedBatchStore is a BatchAppender whose single appends wait for a gate, so that
// appends arriving meanwhile queue up for a group commit; it records batch sizes.
type gatedBatchStore struct {
	aggregate.Store
	batch eventstore.BatchAppender
	gate  chan struct{}

	mu      sync.Mutex
	singles int
	batches []int
}

func (s *gatedBatchStore) Append(ctx context.Context, id string, exp eventstore.ExpectedVersion, evs []eventstore.EventData) ([]eventstore.RecordedEvent, error) {
	s.mu.Lock()
	s.singles++
	s.mu.Unlock()
	<-s.gate
	return s.Store.Append(ctx, id, exp, evs)
}

func (s *gatedBatchStore) AppendMany(ctx context.Context, reqs []eventstore.AppendRequest) []eventstore.AppendResult {
	s.mu.Lock()
	s.batches = append(s.batches, len(reqs))
	s.mu.Unlock()
	return s.batch.AppendMany(ctx, reqs)
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
		store := &gatedBatchStore{Store: base, batch: ba, gate: make(chan struct{})}
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
		// A foreign writer moves c-3 on, so its queued append (expecting 0) loses.
		// (The queued commands execute before this, against version 0.)
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = d.Dispatch(context.Background(), Add{ID: fmt.Sprintf("c-%d", i), N: 10})
			}()
		}
		waitFor(t, 5*time.Second, func() error {
			if live := d.Stats().Live; live < n+2 {
				return fmt.Errorf("%d live instances", live)
			}
			return nil
		})
		time.Sleep(50 * time.Millisecond) // let every instance reach the queue
		foreign := eventstore.EventData{Type: "Added", Data: []byte(`{"n":100}`)}
		if _, err := base.Append(context.Background(), "counter-c-3", eventstore.NoStream, []eventstore.EventData{foreign}); err != nil {
			t.Fatal(err)
		}
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
		if len(batches) == 0 || batches[0] < 2 {
			t.Fatalf("batches %v: the queued appends did not go out together", batches)
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
