package aggregate_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/errcode"
	"github.com/ringleader-go/ringleader/eventstore"
)

func TestDispatchBasics(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(testing.TB) aggregate.Store) {
		store := open(t)
		d := newDispatcher(t, aggregate.Config{Store: store, Router: counterRouter(aggregate.TypeConfig{})})

		res := mustDispatch(t, d, Add{ID: "a", N: 3}, aggregate.WithCommandID("c1"),
			aggregate.WithCorrelationID("corr"), aggregate.WithMetadata(map[string]string{"user": "u1"}))
		if res.AggregateVersion != 1 || len(res.Events) != 1 || res.Duplicate {
			t.Fatalf("result = %+v", res)
		}
		ev := res.Events[0]
		if ev.Type != "Added" || ev.StreamVersion != 1 || ev.GlobalPosition <= 0 || ev.Value != (Added{N: 3}) {
			t.Fatalf("event = %+v", ev)
		}
		want := map[string]string{"user": "u1", eventstore.MetaCommandID: "c1", eventstore.MetaCausationID: "c1", eventstore.MetaCorrelationID: "corr"}
		for k, v := range want {
			if ev.Metadata[k] != v {
				t.Errorf("metadata[%s] = %q, want %q", k, ev.Metadata[k], v)
			}
		}
		if res.CommandID != "c1" || res.AggregateID != "a" || res.StreamID != "counter-a" || res.CommandType != "Add" || res.AggregateType != "counter" {
			t.Fatalf("result ids = %+v", res)
		}

		// No events: version unchanged, nothing appended.
		res = mustDispatch(t, d, Nothing{ID: "a"}, aggregate.ReturnState())
		if res.AggregateVersion != 1 || len(res.Events) != 0 || res.State.(*Counter).Count != 3 {
			t.Fatalf("no-op result = %+v state %+v", res, res.State)
		}

		// A domain error is rejected, with its message.
		_, err := d.Dispatch(context.Background(), Add{ID: "a", N: -1})
		if !errors.Is(err, errNegative) || aggregate.CodeOf(err) != errcode.Rejected || err.Error() != errNegative.Error() {
			t.Fatalf("err = %v (code %s)", err, aggregate.CodeOf(err))
		}
		// An event type the aggregate did not register.
		_, err = d.Dispatch(context.Background(), Unregistered{ID: "a"})
		var ue *aggregate.UnknownEventError
		if !errors.As(err, &ue) || aggregate.CodeOf(err) != errcode.Rejected {
			t.Fatalf("unregistered event: %v", err)
		}
		// Unknown command, missing identity.
		if _, err := d.Dispatch(context.Background(), struct{ X int }{}); !errors.Is(err, aggregate.ErrUnknownCommand) {
			t.Fatalf("unknown command: %v", err)
		}
		if _, err := d.Dispatch(context.Background(), &Add{N: 1}); aggregate.CodeOf(err) != errcode.Invalid {
			t.Fatalf("missing identity: %v", err)
		}
		if got := streamVersions(t, store, "counter-a"); got != 1 {
			t.Fatalf("stream at %d", got)
		}
	})
}

func TestConcurrentDispatchIsSerialPerAggregate(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(testing.TB) aggregate.Store) {
		store := &countingStore{Store: open(t)}
		d := newDispatcher(t, aggregate.Config{Store: store, Router: counterRouter(aggregate.TypeConfig{}), Timeout: 30 * time.Second})
		const n = 200
		var wg sync.WaitGroup
		errs := make(chan error, 2*n)
		for i := range n {
			for _, id := range []string{"hot", "other"} {
				wg.Go(func() {
					if _, err := d.Dispatch(context.Background(), Add{ID: id, N: 1 + i%3}); err != nil {
						errs <- err
					}
				})
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("dispatch: %v", err)
		}
		want := 0
		for i := range n {
			want += 1 + i%3
		}
		for _, id := range []string{"hot", "other"} {
			if s := stateOf(t, d, id); s.Count != want || s.Seen != n {
				t.Errorf("%s: state %+v, want count %d seen %d", id, s, want, n)
			}
			if v := streamVersions(t, store, "counter-"+id); v != n {
				t.Errorf("%s: stream version %d, want %d", id, v, n)
			}
		}
		// Serial means no lost race: exactly one append per command.
		if got := store.appends.Load(); got != 2*n {
			t.Errorf("appends = %d, want %d (a conflict retried)", got, 2*n)
		}
	})
}

func TestConflictBetweenTwoDispatchersRetries(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(testing.TB) aggregate.Store) {
		store := open(t)
		router := counterRouter(aggregate.TypeConfig{})
		d2 := newDispatcher(t, aggregate.Config{Store: store, Router: router})
		var once sync.Once
		var attempts []int
		knobs := &aggregate.TestingKnobs{BeforeAppend: func(stream string, expected int64, attempt int) {
			attempts = append(attempts, attempt)
			// d1 is about to append at its version; d2 (the other "owner") wins first.
			once.Do(func() { mustDispatch(t, d2, Add{ID: "x", N: 100}) })
		}}
		d1 := newDispatcher(t, aggregate.Config{Store: store, Router: router, Knobs: knobs})
		mustDispatch(t, d1, Add{ID: "x", N: 1}) // d1 live at version 1... and d2 raced it
		// The first d1 command itself raced: d2 appended version 1 first.
		res := mustDispatch(t, d1, Add{ID: "x", N: 10})
		if len(attempts) != 3 || attempts[0] != 1 || attempts[1] != 2 || attempts[2] != 1 {
			t.Fatalf("attempts = %v, want [1 2 1]", attempts)
		}
		if res.AggregateVersion != 3 {
			t.Fatalf("version = %d, want 3", res.AggregateVersion)
		}
		if s := stateOf(t, d1, "x"); s.Count != 111 || s.Seen != 3 {
			t.Fatalf("d1 state %+v", s)
		}
		// d2 is stale (version 1); its next command conflicts, catches up, succeeds.
		res = mustDispatch(t, d2, Add{ID: "x", N: 1000})
		if res.AggregateVersion != 4 {
			t.Fatalf("d2 version = %d", res.AggregateVersion)
		}
		if s := stateOf(t, d2, "x"); s.Count != 1111 || s.Seen != 4 {
			t.Fatalf("d2 state %+v", s)
		}
		if v := streamVersions(t, store, "counter-x"); v != 4 {
			t.Fatalf("stream version %d", v)
		}
	})
}

func TestConflictRetriesExhausted(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(testing.TB) aggregate.Store) {
		store := open(t)
		knobs := &aggregate.TestingKnobs{BeforeAppend: func(stream string, expected int64, attempt int) {
			// Another writer appends before every attempt.
			ev := eventstore.EventData{Type: "Added", Data: []byte(`{"n":1}`)}
			if _, err := store.Append(context.Background(), stream, eventstore.AnyVersion, []eventstore.EventData{ev}); err != nil {
				t.Error(err)
			}
		}}
		d := newDispatcher(t, aggregate.Config{Store: store, Router: counterRouter(aggregate.TypeConfig{}), Knobs: knobs, MaxRetries: 2})
		_, err := d.Dispatch(context.Background(), Add{ID: "y", N: 5})
		var ce *aggregate.ConflictError
		if !errors.As(err, &ce) || ce.Attempts != 3 || aggregate.CodeOf(err) != errcode.Conflict {
			t.Fatalf("err = %v", err)
		}
		// The instance caught up with everything the other writer appended.
		res, err := d.Dispatch(context.Background(), Nothing{ID: "y"}, aggregate.ReturnState())
		if err != nil || res.AggregateVersion != 3 || res.State.(*Counter).Count != 3 {
			t.Fatalf("after conflict: %+v %v", res, err)
		}
	})
}

func TestDuplicateCommandIDAcrossRace(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(testing.TB) aggregate.Store) {
		store := open(t)
		router := counterRouter(aggregate.TypeConfig{})
		d2 := newDispatcher(t, aggregate.Config{Store: store, Router: router})
		var once sync.Once
		knobs := &aggregate.TestingKnobs{BeforeAppend: func(string, int64, int) {
			// The same command, retried by the client, reaches the other owner first.
			once.Do(func() { mustDispatch(t, d2, Add{ID: "z", N: 7}, aggregate.WithCommandID("same")) })
		}}
		d1 := newDispatcher(t, aggregate.Config{Store: store, Router: router, Knobs: knobs})
		res := mustDispatch(t, d1, Add{ID: "z", N: 7}, aggregate.WithCommandID("same"))
		if !res.Duplicate || res.AggregateVersion != 1 || len(res.Events) != 1 {
			t.Fatalf("result %+v, want the duplicate of d2's", res)
		}
		if v := streamVersions(t, store, "counter-z"); v != 1 {
			t.Fatalf("appended twice: version %d", v)
		}
	})
}

func TestDuplicateCommandIDAfterRestart(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(testing.TB) aggregate.Store) {
		store := &countingStore{Store: open(t)}
		router := counterRouter(aggregate.TypeConfig{Snapshots: aggregate.SnapshotPolicy{Every: 2, Version: 1}})
		d := newDispatcher(t, aggregate.Config{Store: store, Router: router})
		first := mustDispatch(t, d, Add{ID: "a", N: 5}, aggregate.WithCommandID("c1"))

		// Same dispatcher: known from memory, answered without the store's index.
		again := mustDispatch(t, d, Add{ID: "a", N: 5}, aggregate.WithCommandID("c1"))
		if !again.Duplicate || again.AggregateVersion != 1 || again.Events[0].GlobalPosition != first.Events[0].GlobalPosition {
			t.Fatalf("duplicate = %+v", again)
		}
		// A new id on a fully replayed instance needs no index look-up either.
		before := store.commandReads.Load()
		mustDispatch(t, d, Add{ID: "a", N: 1}, aggregate.WithCommandID("c2"))
		mustDispatch(t, d, Add{ID: "a", N: 1}, aggregate.WithCommandID("c3")) // version 3; snapshot at 2
		if got := store.commandReads.Load() - before; got != 0 {
			t.Fatalf("index reads for new ids on a fully replayed instance = %d, want 0", got)
		}
		_ = d.Close()

		// "Restart": a new dispatcher on the same store, rehydrating from the snapshot
		// at version 2, which covers c1 and c2.
		d2 := newDispatcher(t, aggregate.Config{Store: store, Router: router})
		for _, id := range []string{"c1", "c2", "c3"} {
			res := mustDispatch(t, d2, Add{ID: "a", N: 1000}, aggregate.WithCommandID(id))
			if !res.Duplicate {
				t.Fatalf("%s re-applied after restart: %+v", id, res)
			}
		}
		res := mustDispatch(t, d2, Add{ID: "a", N: 1}, aggregate.WithCommandID("c4"))
		if res.Duplicate || res.AggregateVersion != 4 {
			t.Fatalf("c4 = %+v", res)
		}
		wantCounter(t, d2, store, "a", 8, 4)
	})
}

// TestUnprovenCommandIDsCostNoLookUp: on an instance whose memory cannot prove a
// command id new (rehydrated from a snapshot), a command that appends is not checked
// against the store first: its events' ids derive from the command id, so the
// store refuses a repeat's events and only then is the original outcome read. An
// answer that appends nothing (a rejection) records its outcome, which the store
// refuses as well if the id has one.
func TestUnprovenCommandIDsCostNoLookUp(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(testing.TB) aggregate.Store) {
		store := &countingStore{Store: open(t)}
		router := counterRouter(aggregate.TypeConfig{Snapshots: aggregate.SnapshotPolicy{Every: 2, Version: 1}})
		d := newDispatcher(t, aggregate.Config{Store: store, Router: router})
		first := mustDispatch(t, d, Add{ID: "u", N: 5}, aggregate.WithCommandID("c1"))
		mustDispatch(t, d, Add{ID: "u", N: 1}, aggregate.WithCommandID("c2")) // snapshot at 2
		_ = d.Close()

		d2 := newDispatcher(t, aggregate.Config{Store: store, Router: router})
		before := store.commandReads.Load()
		for i, id := range []string{"c3", "c4", "c5"} {
			if res := mustDispatch(t, d2, Add{ID: "u", N: 1}, aggregate.WithCommandID(id)); res.Duplicate || res.AggregateVersion != int64(3+i) {
				t.Fatalf("%s = %+v", id, res)
			}
		}
		if got := store.commandReads.Load() - before; got != 0 {
			t.Fatalf("new ids on an instance from a snapshot cost %d look-ups, want 0", got)
		}
		// A repeat of c1 (covered by the snapshot, so not in memory) with a different
		// payload: its events are refused and the original outcome comes back.
		again := mustDispatch(t, d2, Add{ID: "u", N: 1000}, aggregate.WithCommandID("c1"))
		if !again.Duplicate || again.AggregateVersion != 1 || again.Events[0].GlobalPosition != first.Events[0].GlobalPosition {
			t.Fatalf("repeat of c1 = %+v", again)
		}
		// A rejection with an unproven id records its outcome, which also finds any
		// earlier outcome of the id: one round trip, no look-up first.
		before, outcomes := store.commandReads.Load(), store.outcomes.Load()
		if _, err := d2.Dispatch(context.Background(), Add{ID: "u", N: -1}, aggregate.WithCommandID("c6")); aggregate.CodeOf(err) != errcode.Rejected {
			t.Fatalf("c6: %v", err)
		}
		if reads, recorded := store.commandReads.Load()-before, store.outcomes.Load()-outcomes; reads != 0 || recorded != 1 {
			t.Fatalf("a rejection with an unproven id cost %d look-ups and %d outcome records, want 0 and 1", reads, recorded)
		}
		wantCounter(t, d2, store, "u", 9, 5)
	})
}

// TestRepeatRefusedInsideAGroupCommit: a repeated command whose events are refused
// inside a group commit gets its original outcome; the other commands of the batch
// are appended as usual.
func TestRepeatRefusedInsideAGroupCommit(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(testing.TB) aggregate.Store) {
		store := open(t)
		router := counterRouter(aggregate.TypeConfig{Snapshots: aggregate.SnapshotPolicy{Every: 1, Version: 1}})
		d := newDispatcher(t, aggregate.Config{Store: store, Router: router})
		first := mustDispatch(t, d, Add{ID: "g", N: 5}, aggregate.WithCommandID("g1"))
		_ = d.Close()

		// From the snapshot, g1 is not in memory; the repeat races new commands into
		// the same batches.
		d2 := newDispatcher(t, aggregate.Config{Store: store, Router: router})
		mustDispatch(t, d2, Add{ID: "g", N: 1}, aggregate.WithCommandID("g2")) // loads g
		var wg sync.WaitGroup
		results := make([]*aggregate.Result, 17)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd, id := Add{ID: fmt.Sprintf("h%d", i), N: 1}, fmt.Sprintf("h%d", i)
				if i == 0 {
					cmd, id = Add{ID: "g", N: 1000}, "g1"
				}
				res, err := d2.Dispatch(context.Background(), cmd, aggregate.WithCommandID(id))
				if err != nil {
					t.Errorf("%s: %v", id, err)
				}
				results[i] = res
			}()
		}
		wg.Wait()
		if r := results[0]; r == nil || !r.Duplicate || r.Events[0].GlobalPosition != first.Events[0].GlobalPosition {
			t.Fatalf("repeat of g1 = %+v", r)
		}
		for i, r := range results[1:] {
			if r == nil || r.Duplicate || r.AggregateVersion != 1 {
				t.Fatalf("h%d = %+v", i+1, r)
			}
		}
		if s := stateOf(t, d2, "g"); s.Count != 6 {
			t.Fatalf("state %+v, want count 6", s)
		}
	})
}

func TestDuplicateBeyondCommandIDMemory(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(testing.TB) aggregate.Store) {
		store := &countingStore{Store: open(t)}
		d := newDispatcher(t, aggregate.Config{Store: store, Router: counterRouter(aggregate.TypeConfig{}), CommandIDMemory: 2})
		for i, id := range []string{"c1", "c2", "c3", "c4"} {
			mustDispatch(t, d, Add{ID: "m", N: i + 1}, aggregate.WithCommandID(id))
		}
		before := store.commandReads.Load()
		if res := mustDispatch(t, d, Add{ID: "m", N: 9}, aggregate.WithCommandID("c1")); !res.Duplicate || res.AggregateVersion != 1 {
			t.Fatalf("forgotten id re-applied: %+v", res)
		}
		if store.commandReads.Load() == before {
			t.Fatal("forgotten id answered without the store")
		}
		if s := stateOf(t, d, "m"); s.Count != 10 {
			t.Fatalf("state %+v", s)
		}
	})
}

// TestRejectedCommandIDStaysRejected: a command id's first answer is final, also
// when it appended nothing: a retry of a rejected id is rejected again with the
// original message, even with a payload that would now succeed, and a success
// without events is answered as a duplicate.
func TestRejectedCommandIDStaysRejected(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(testing.TB) aggregate.Store) {
		store := open(t)
		d := newDispatcher(t, aggregate.Config{Store: store, Router: counterRouter(aggregate.TypeConfig{})})
		if _, err := d.Dispatch(context.Background(), Add{ID: "r", N: -1}, aggregate.WithCommandID("c")); !errors.Is(err, errNegative) {
			t.Fatalf("first answer: %v, want the domain error", err)
		}
		_, err := d.Dispatch(context.Background(), Add{ID: "r", N: 2}, aggregate.WithCommandID("c"))
		var prior *aggregate.PriorRejectionError
		if !errors.As(err, &prior) || aggregate.CodeOf(err) != errcode.Rejected || err.Error() != errNegative.Error() || prior.StreamVersion != 0 {
			t.Fatalf("retry with a payload that would succeed: %v, want the original rejection", err)
		}
		// The recorded rejection keeps the domain's reason, and still matches it.
		if aggregate.ReasonOf(err) != "negative_count" || !errors.Is(err, errNegative) {
			t.Fatalf("retry: reason %q, errors.Is %v; want negative_count, true", aggregate.ReasonOf(err), errors.Is(err, errNegative))
		}
		if res := mustDispatch(t, d, Add{ID: "r", N: 2}, aggregate.WithCommandID("c2")); res.Duplicate || res.AggregateVersion != 1 {
			t.Fatalf("a new id = %+v", res)
		}
		if res := mustDispatch(t, d, Nothing{ID: "r"}, aggregate.WithCommandID("n")); res.Duplicate || res.AggregateVersion != 1 {
			t.Fatalf("success without events = %+v", res)
		}
		mustDispatch(t, d, Add{ID: "r", N: 1}, aggregate.WithCommandID("c3"))
		if res := mustDispatch(t, d, Nothing{ID: "r"}, aggregate.WithCommandID("n")); !res.Duplicate || res.AggregateVersion != 1 {
			t.Fatalf("repeat of the success without events = %+v, want a duplicate at version 1", res)
		}
		wantCounter(t, d, store, "r", 3, 2)
	})
}

// TestLateCopyOfARejectedCommandCannotAppend is the split that chaos testing found:
// a command is rejected by one owner; a copy of it delivered late reaches another
// owner, where the state has changed so that it would succeed. It must get the
// original rejection and append nothing. A rejection decided on a stale state is not
// recorded: the owner catches up and decides again.
func TestLateCopyOfARejectedCommandCannotAppend(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(testing.TB) aggregate.Store) {
		store := open(t)
		router := counterRouter(aggregate.TypeConfig{})
		d1 := newDispatcher(t, aggregate.Config{Store: store, Router: router})
		d2 := newDispatcher(t, aggregate.Config{Store: store, Router: router})
		mustDispatch(t, d1, Add{ID: "L", N: 1}, aggregate.WithCommandID("open"))
		if _, err := d2.Dispatch(context.Background(), Take{ID: "L", N: 5}, aggregate.WithCommandID("take")); !errors.Is(err, errNotEnough) {
			t.Fatalf("take 5 of 1 on d2: %v, want rejected", err)
		}
		mustDispatch(t, d1, Add{ID: "L", N: 10}, aggregate.WithCommandID("deposit")) // d2 does not see it
		_, err := d1.Dispatch(context.Background(), Take{ID: "L", N: 5}, aggregate.WithCommandID("take"))
		if !errors.As(err, new(*aggregate.PriorRejectionError)) {
			t.Fatalf("late copy of the rejected take on d1 (count 11): %v, want the original rejection", err)
		}
		wantCounter(t, d1, store, "L", 11, 2)

		// d2 still holds count 1: its rejection of a new take is stale, is not
		// recorded, and the take succeeds on the caught-up state.
		res, err := d2.Dispatch(context.Background(), Take{ID: "L", N: 5}, aggregate.WithCommandID("take2"))
		if err != nil || res.AggregateVersion != 3 {
			t.Fatalf("take 5 on d2 with a stale count: %+v, %v; want appended at version 3", res, err)
		}
		wantCounter(t, d2, store, "L", 6, 3)
	})
}

func TestExpectVersion(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(testing.TB) aggregate.Store) {
		store := open(t)
		d := newDispatcher(t, aggregate.Config{Store: store, Router: counterRouter(aggregate.TypeConfig{})})
		mustDispatch(t, d, Add{ID: "e", N: 1}, aggregate.ExpectVersion(0))
		_, err := d.Dispatch(context.Background(), Add{ID: "e", N: 1}, aggregate.ExpectVersion(0))
		var ve *aggregate.ExpectedVersionError
		if !errors.As(err, &ve) || ve.Actual != 1 || ve.Expected != 0 || aggregate.CodeOf(err) != errcode.Conflict {
			t.Fatalf("err = %v", err)
		}
		if res := mustDispatch(t, d, Add{ID: "e", N: 1}, aggregate.ExpectVersion(1)); res.AggregateVersion != 2 {
			t.Fatalf("res = %+v", res)
		}
		// Exists: refused on a new stream, accepted on one with events.
		_, err = d.Dispatch(context.Background(), Add{ID: "new", N: 1}, aggregate.ExpectExists())
		if !errors.As(err, &ve) || ve.Expected != aggregate.ExpectedExisting || aggregate.CodeOf(err) != errcode.Conflict {
			t.Fatalf("exists on a new stream: %v", err)
		}
		if res := mustDispatch(t, d, Add{ID: "e", N: 1}, aggregate.ExpectExists()); res.AggregateVersion != 3 {
			t.Fatalf("exists: %+v", res)
		}
		if _, err := d.Dispatch(context.Background(), Add{ID: "e", N: 1}, aggregate.ExpectNoStream()); aggregate.CodeOf(err) != errcode.Conflict {
			t.Fatalf("no stream on a stream at 3: %v", err)
		}
		wantCounter(t, d, store, "e", 3, 3)
	})
}

func TestPanicIsIsolated(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(testing.TB) aggregate.Store) {
		rehydrations := 0
		knobs := &aggregate.TestingKnobs{AfterRehydrate: func(string, int64, int) { rehydrations++ }}
		d := newDispatcher(t, aggregate.Config{Store: open(t), Router: counterRouter(aggregate.TypeConfig{}), Knobs: knobs})
		mustDispatch(t, d, Add{ID: "p", N: 2})
		_, err := d.Dispatch(context.Background(), Explode{ID: "p"})
		var pe *aggregate.PanicError
		if !errors.As(err, &pe) || pe.Value != "boom" || pe.Where != "execute" || len(pe.Stack) == 0 || aggregate.CodeOf(err) != errcode.Rejected {
			t.Fatalf("err = %v", err)
		}
		// The state was discarded and is rebuilt for the next command.
		if s := stateOf(t, d, "p"); s.Count != 2 || s.Seen != 1 {
			t.Fatalf("state after panic %+v", s)
		}
		if rehydrations != 2 {
			t.Fatalf("rehydrations = %d, want 2", rehydrations)
		}
	})
}

func TestTimeoutAndClose(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(testing.TB) aggregate.Store) {
		store := open(t)
		entered := make(chan struct{})
		release := make(chan struct{})
		var block sync.Once
		knobs := &aggregate.TestingKnobs{BeforeAppend: func(stream string, _ int64, _ int) {
			if stream == "counter-slow" {
				block.Do(func() {
					close(entered)
					<-release
				})
			}
		}}
		d, err := aggregate.New(aggregate.Config{Store: store, Router: counterRouter(aggregate.TypeConfig{}), Knobs: knobs})
		if err != nil {
			t.Fatal(err)
		}
		// A command stuck past its timeout answers timeout.
		_, err = d.Dispatch(context.Background(), Add{ID: "slow", N: 1}, aggregate.WithTimeout(20*time.Millisecond))
		if aggregate.CodeOf(err) != errcode.Timeout || !errors.Is(err, aggregate.ErrTimeout) {
			t.Fatalf("err = %v", err)
		}
		<-entered
		// In flight: the next command to "slow" waits behind the stuck one.
		inflight := make(chan error, 1)
		go func() {
			_, err := d.Dispatch(context.Background(), Add{ID: "slow", N: 1})
			inflight <- err
		}()
		closed := make(chan struct{})
		go func() {
			_ = d.Close()
			close(closed)
		}()
		waitFor(t, 5*time.Second, func() error {
			if _, err := d.Dispatch(context.Background(), Add{ID: "other", N: 1}); !errors.Is(err, aggregate.ErrClosed) {
				return errors.New("dispatcher still accepting")
			}
			return nil
		})
		select {
		case <-closed:
			t.Fatal("Close returned while a command was in progress")
		default:
		}
		close(release)
		<-closed
		// The waiting command was never taken: unavailable. (Or, if the instance took
		// it before Close, it completed.)
		if err := <-inflight; err != nil && aggregate.CodeOf(err) != errcode.Unavailable {
			t.Fatalf("in-flight command: %v", err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Dispatch(context.Background(), Add{ID: "x", N: 1}); aggregate.CodeOf(err) != errcode.Unavailable {
			t.Fatalf("after close: %v", err)
		}
	})
}
