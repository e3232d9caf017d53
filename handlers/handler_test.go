package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/handlers"
	"github.com/ringleader-go/ringleader/placement"
)

func TestHandlerK4DeliversEveryEventOnceToItsPartitionInStreamOrder(t *testing.T) {
	store := newCASLog(t, memStore(t))
	appendSpread(t, store, "acc", 20, 5) // history before start
	var recs [4]*recorder
	for i := range recs {
		recs[i] = newRecorder()
	}
	h := handlers.Handler{
		Spec: handlers.Spec{Name: "h", Partitions: 4, BatchSize: 7},
		Handle: func(ctx context.Context, e handlers.Event) error {
			i := placement.StreamPartition(e.StreamID, 4)
			return recs[i].handle(ctx, e)
		},
	}
	r := newRunner(t, handlers.RunnerConfig{Store: store}, h)
	appendSpread(t, store, "acc", 20, 5) // live appends
	waitFor(t, 5*time.Second, func() error {
		n := 0
		for _, rec := range recs {
			n += rec.distinct()
		}
		if n != 200 {
			return fmt.Errorf("%d of 200 events handled", n)
		}
		return caughtUp(context.Background(), r, "h")
	})
	total := 0
	for i, rec := range recs {
		for stream := range rec.by {
			if p := placement.StreamPartition(stream, 4); p != i {
				t.Errorf("stream %s recorded in partition %d, hashes to %d", stream, i, p)
			}
		}
		total += rec.len()
		rec.checkExactlyOnceInOrder(t, rec.distinct())
	}
	if total != 200 {
		t.Fatalf("%d deliveries, want 200 (exactly once without failures)", total)
	}
	store.checkChains(t)
	for i := range 4 {
		if s := statusOf(t, r, "h", i); s.State != handlers.StateRunning || s.Owner != "n1" || s.Lag != 0 {
			t.Errorf("status %+v", s)
		}
	}
}

func TestPartitionsSplitAcrossRunnersAndMoveWithOwnership(t *testing.T) {
	store := newCASLog(t, memStore(t))
	fence := handlers.NewLocalFence()
	rec := newRecorder()
	var mu sync.Mutex
	ranOn := map[string]map[int]bool{} // node → partitions that handled something
	spec := handlers.Spec{Name: "split", Partitions: 4, BatchSize: 5}
	mk := func(node string) handlers.Handler {
		return handlers.Handler{Spec: spec, Handle: func(ctx context.Context, e handlers.Event) error {
			mu.Lock()
			if ranOn[node] == nil {
				ranOn[node] = map[int]bool{}
			}
			ranOn[node][placement.StreamPartition(e.StreamID, 4)] = true
			mu.Unlock()
			return rec.handle(ctx, e)
		}}
	}
	// a owns partitions 0 and 1, b owns 2 and 3.
	evenSplit := func(mine ...int) func(string) bool {
		return func(key string) bool {
			for _, i := range mine {
				if key == placement.HandlerPartitionKey("split", i) {
					return true
				}
			}
			return false
		}
	}
	a := newRunner(t, handlers.RunnerConfig{Store: store, Fence: fence, NodeID: "a", Owns: evenSplit(0, 1)}, mk("a"))
	b := newRunner(t, handlers.RunnerConfig{Store: store, Fence: fence, NodeID: "b", Owns: evenSplit(2, 3)}, mk("b"))

	appendSpread(t, store, "s", 16, 5)
	waitFor(t, 5*time.Second, func() error {
		if n := rec.distinct(); n != 80 {
			return fmt.Errorf("%d of 80", n)
		}
		return nil
	})
	// Move partition 1 from a to b, with appends going on.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for v := 0; v < 5; v++ {
			for i := 0; i < 16; i++ {
				if _, err := store.Append(context.Background(), fmt.Sprintf("s-%d", i), eventstore.AnyVersion,
					[]eventstore.EventData{{Type: "Counted", Data: []byte(`{}`)}}); err != nil {
					t.Error(err)
				}
			}
		}
	}()
	a.SetOwnership(evenSplit(0))
	b.SetOwnership(evenSplit(1, 2, 3))
	<-done
	waitFor(t, 5*time.Second, func() error {
		if s := statusOf(t, b, "split", 1); s.State != handlers.StateRunning {
			return fmt.Errorf("partition 1 on b: %+v", s)
		}
		return nil
	})
	appendSpread(t, store, "s", 16, 5) // after the move: b must handle partition 1's share
	waitFor(t, 5*time.Second, func() error {
		if n := rec.distinct(); n != 240 {
			return fmt.Errorf("%d of 240", n)
		}
		if s := statusOf(t, b, "split", 1); s.State != handlers.StateRunning || s.Owner != "b" {
			return fmt.Errorf("partition 1 on b: %+v", s)
		}
		if s := statusOf(t, a, "split", 1); s.State != handlers.StateStopped || s.Owner != "" {
			return fmt.Errorf("partition 1 on a: %+v", s)
		}
		return nil
	})
	rec.checkExactlyOnceInOrder(t, 240)
	store.checkChains(t)
	mu.Lock()
	defer mu.Unlock()
	if !ranOn["a"][0] || !ranOn["b"][2] || !ranOn["b"][3] || ranOn["a"][2] || ranOn["a"][3] || ranOn["b"][0] {
		t.Errorf("partitions ran where they were not owned: %v", ranOn)
	}
	if !ranOn["b"][1] {
		t.Errorf("partition 1 never ran on b after the move: %v", ranOn)
	}
}

func TestOnErrorRetrySkipStop(t *testing.T) {
	store := memStore(t)
	ctx := context.Background()
	poison := appendN(t, store, "poison", 1)[0]
	appendN(t, store, "poison", 2)

	type obs struct {
		mu        sync.Mutex
		decisions []handlers.Decision
		attempts  []int
	}
	policy := func(d handlers.Decision, after int) (handlers.OnError, *obs) {
		o := &obs{}
		return func(f handlers.Failure) (handlers.Decision, time.Duration) {
			o.mu.Lock()
			defer o.mu.Unlock()
			o.attempts = append(o.attempts, f.Attempts)
			if f.Attempts < after {
				o.decisions = append(o.decisions, handlers.Retry)
				return handlers.Retry, time.Millisecond
			}
			o.decisions = append(o.decisions, d)
			return d, time.Millisecond
		}, o
	}
	failing := func(rec *recorder, times int) func(context.Context, handlers.Event) error {
		var n atomic.Int32
		return func(ctx context.Context, e handlers.Event) error {
			if e.ID == poison.ID && int(n.Add(1)) <= times {
				return errBoom
			}
			return rec.handle(ctx, e)
		}
	}

	retryRec, skipRec, stopRec := newRecorder(), newRecorder(), newRecorder()
	retryPolicy, retryObs := policy(handlers.Retry, 100) // retries; succeeds on attempt 4
	skipPolicy, skipObs := policy(handlers.Skip, 2)
	stopPolicy, stopObs := policy(handlers.Stop, 1)
	r := newRunner(t, handlers.RunnerConfig{Store: store},
		handlers.Handler{Spec: handlers.Spec{Name: "retry", OnError: retryPolicy}, Handle: failing(retryRec, 3)},
		handlers.Handler{Spec: handlers.Spec{Name: "skip", OnError: skipPolicy}, Handle: failing(skipRec, 1000)},
		handlers.Handler{Spec: handlers.Spec{Name: "stop", OnError: stopPolicy}, Handle: failing(stopRec, 1)},
	)
	waitFor(t, 5*time.Second, func() error {
		if retryRec.distinct() != 3 || skipRec.distinct() != 2 {
			return fmt.Errorf("retry %d/3, skip %d/2", retryRec.distinct(), skipRec.distinct())
		}
		if s := statusOf(t, r, "stop", 0); s.State != handlers.StateFailed {
			return fmt.Errorf("stop: %+v", s)
		}
		return nil
	})
	retryRec.checkExactlyOnceInOrder(t, 3)
	if got := retryObs.attempts; fmt.Sprint(got) != "[1 2 3]" {
		t.Errorf("retry attempts %v, want [1 2 3]", got)
	}
	if got := skipObs.decisions; fmt.Sprint(got) != fmt.Sprint([]handlers.Decision{handlers.Retry, handlers.Skip}) {
		t.Errorf("skip decisions %v", got)
	}
	skipRec.mu.Lock()
	if skipRec.count[poison.GlobalPosition] != 0 {
		t.Error("the skipped event was handled")
	}
	skipRec.mu.Unlock()
	if err := caughtUp(ctx, r, "skip"); err != nil {
		t.Errorf("skip did not pass the event: %v", err)
	}

	st := statusOf(t, r, "stop", 0)
	if stopRec.len() != 0 || st.Position >= poison.GlobalPosition || st.LastError == "" || st.Owner != "" {
		t.Errorf("stopped partition: handled %d, status %+v", stopRec.len(), st)
	}
	if fmt.Sprint(stopObs.decisions) != fmt.Sprint([]handlers.Decision{handlers.Stop}) {
		t.Errorf("stop decisions %v", stopObs.decisions)
	}
	// Later events stay unhandled; a Reset resumes (the handler no longer fails).
	appendN(t, store, "other", 1)
	if err := r.Reset(ctx, "stop"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		if n := stopRec.distinct(); n != 4 {
			return fmt.Errorf("stop handled %d of 4 after reset", n)
		}
		return caughtUp(ctx, r, "stop")
	})
	if s := statusOf(t, r, "stop", 0); s.State != handlers.StateRunning || s.LastError != "" {
		t.Errorf("after reset: %+v", s)
	}
}

func TestPanicIsIsolated(t *testing.T) {
	store := memStore(t)
	bad := appendN(t, store, "x", 3)[1]
	appendN(t, store, "y", 3)
	var got atomic.Value
	rec, other := newRecorder(), newRecorder()
	newRunner(t, handlers.RunnerConfig{Store: store},
		handlers.Handler{
			Spec: handlers.Spec{Name: "panicky", OnError: func(f handlers.Failure) (handlers.Decision, time.Duration) {
				got.Store(f)
				return handlers.Skip, 0
			}},
			Handle: func(ctx context.Context, e handlers.Event) error {
				if e.ID == bad.ID {
					panic("kaboom")
				}
				return rec.handle(ctx, e)
			},
		},
		handlers.Handler{Spec: handlers.Spec{Name: "bystander"}, Handle: other.handle},
	)
	waitFor(t, 5*time.Second, func() error {
		if rec.distinct() != 5 || other.distinct() != 6 {
			return fmt.Errorf("panicky %d/5, bystander %d/6", rec.distinct(), other.distinct())
		}
		return nil
	})
	f, _ := got.Load().(handlers.Failure)
	var pe *handlers.PanicError
	if !errors.As(f.Err, &pe) || pe.Value != "kaboom" || len(pe.Stack) == 0 || f.Event.ID != bad.ID {
		t.Fatalf("failure %+v", f)
	}
}

func TestStartFromCurrentSkipsHistory(t *testing.T) {
	store := memStore(t)
	appendSpread(t, store, "old", 5, 4)
	rec := newRecorder()
	newRunner(t, handlers.RunnerConfig{Store: store},
		handlers.Handler{Spec: handlers.Spec{Name: "now", Partitions: 2, StartFrom: handlers.Current}, Handle: rec.handle})
	// Wait for both partitions to record the head as their start.
	waitFor(t, 5*time.Second, func() error {
		for i := range 2 {
			cp, err := store.LoadCheckpoint(context.Background(), handlers.CheckpointName("now", i))
			if err != nil || cp != 20 {
				return fmt.Errorf("partition %d checkpoint %d (%v)", i, cp, err)
			}
		}
		return nil
	})
	fresh := appendN(t, store, "new", 2)
	waitFor(t, 5*time.Second, func() error {
		if rec.distinct() != 2 {
			return fmt.Errorf("%d of 2", rec.distinct())
		}
		return nil
	})
	rec.checkExactlyOnceInOrder(t, 2)
	if rec.events[0].ID != fresh[0].ID {
		t.Fatalf("got %v", rec.events)
	}
}

func TestStatusReportsPositionsAndLag(t *testing.T) {
	store := memStore(t)
	ctx := context.Background()
	appendN(t, store, "s", 10)
	release := make(chan struct{})
	r := newRunner(t, handlers.RunnerConfig{Store: store, NodeID: "me", Owns: func(string) bool { return false }},
		handlers.Handler{Spec: handlers.Spec{Name: "slow"}, Handle: func(ctx context.Context, e handlers.Event) error {
			<-release
			return nil
		}})
	s := statusOf(t, r, "slow", 0)
	if s.State != handlers.StateStopped || s.Owned || s.Position != 0 || s.Head != 10 || s.Lag != 10 || s.Key != "slow#0" {
		t.Fatalf("before owning: %+v", s)
	}
	close(release)
	r.SetOwnership(func(string) bool { return true })
	waitFor(t, 5*time.Second, func() error { return caughtUp(ctx, r, "slow") })
	s = statusOf(t, r, "slow", 0)
	if s.State != handlers.StateRunning || s.Owner != "me" || !s.Owned || s.Position != 10 || s.Lag != 0 {
		t.Fatalf("after: %+v", s)
	}
}

func TestRegisterAndConfigValidation(t *testing.T) {
	if _, err := handlers.NewRunner(handlers.RunnerConfig{PollInterval: -1}); err == nil {
		t.Fatal("want errors")
	} else if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != 3 {
		t.Fatalf("want every problem at once (store, node, poll), got %d: %v", n, err)
	}
	r, err := handlers.NewRunner(handlers.RunnerConfig{Store: memStore(t), NodeID: "n"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	err = r.Register(
		handlers.Handler{Spec: handlers.Spec{Name: "", Partitions: -1, StartFrom: "later"}},
		handlers.Projection{Spec: handlers.Spec{Name: "p"}, Project: func(context.Context, pgxTx, handlers.Event) error { return nil }},
	)
	if err == nil || !errors.Is(err, handlers.ErrNoPostgres) {
		t.Fatalf("got %v", err)
	}
	h := handlers.Handler{Spec: handlers.Spec{Name: "h"}, Handle: newRecorder().handle}
	if err := r.Register(h); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(h); !errors.Is(err, handlers.ErrDuplicateName) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(handlers.Handler{Spec: handlers.Spec{Name: "late"}, Handle: h.Handle}); !errors.Is(err, handlers.ErrStarted) {
		t.Fatalf("late register: %v", err)
	}
	if err := r.Reset(context.Background(), "nope"); !errors.Is(err, handlers.ErrUnknownHandler) {
		t.Fatalf("reset unknown: %v", err)
	}
	r.Close()
	r.Close()
}

func TestDefaultOnErrorBacksOff(t *testing.T) {
	for attempts, want := range map[int]time.Duration{
		1: 50 * time.Millisecond, 2: 100 * time.Millisecond, 3: 200 * time.Millisecond, 8: 6400 * time.Millisecond,
		9: 10 * time.Second, 100: 10 * time.Second,
	} {
		d, delay := handlers.DefaultOnError(handlers.Failure{Attempts: attempts})
		if d != handlers.Retry || delay != want {
			t.Errorf("attempt %d: %v %v, want retry %v", attempts, d, delay, want)
		}
	}
}

// TestPartitionWithoutEventsSavesItsProgressLazily: a partition whose streams get no
// events does not write its checkpoint for every page it passes over, yet its stored
// checkpoint catches up with the head once it is idle.
func TestPartitionWithoutEventsSavesItsProgressLazily(t *testing.T) {
	store := newCASLog(t, memStore(t))
	// Streams that all fall in partition 0 of 2.
	var streams []string
	for i := 0; len(streams) < 5; i++ {
		if s := fmt.Sprintf("only0-%d", i); placementOf(s, 2) == 0 {
			streams = append(streams, s)
		}
	}
	rec := newRecorder()
	h := handlers.Handler{Spec: handlers.Spec{Name: "lazy", Partitions: 2, BatchSize: 5}, Handle: rec.handle}
	r := newRunner(t, handlers.RunnerConfig{Store: store, PollInterval: 300 * time.Millisecond}, h)
	for round := range 40 {
		for _, s := range streams {
			appendN(t, store, s, 1)
		}
		if round%10 == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor(t, 5*time.Second, func() error {
		if n := rec.distinct(); n != 200 {
			return fmt.Errorf("%d of 200 events handled", n)
		}
		return caughtUp(context.Background(), r, "lazy")
	})
	store.checkChains(t)
	store.mu.Lock()
	busy, idle := len(store.moves[handlers.CheckpointName("lazy", 0)]), len(store.moves[handlers.CheckpointName("lazy", 1)])
	store.mu.Unlock()
	// Partition 0 commits at least once per page of 5 of its events; partition 1,
	// which never has an event, only when idle for PollInterval (or stopping).
	if busy < 40 {
		t.Fatalf("partition 0 stored its checkpoint %d times for 200 events in pages of 5", busy)
	}
	if idle > 5 {
		t.Fatalf("partition 1 stored its checkpoint %d times without ever having an event", idle)
	}
	t.Logf("checkpoint writes: partition 0 %d, partition 1 %d", busy, idle)
}

// TestFilterPassesOverUnwantedEvents: a handler with a Filter gets only the events
// it wants, passes over the rest without a checkpoint write per page, and a Strong
// handler is not waited for on events it does not want.
func TestFilterPassesOverUnwantedEvents(t *testing.T) {
	store := newCASLog(t, memStore(t))
	rec := newRecorder()
	h := handlers.Handler{
		Spec: handlers.Spec{Name: "picky", Partitions: 2, BatchSize: 5, Strong: true,
			Filter: func(e eventstore.RecordedEvent) bool { return strings.HasPrefix(e.StreamID, "keep-") }},
		Handle: rec.handle,
	}
	r := newRunner(t, handlers.RunnerConfig{Store: store, PollInterval: 300 * time.Millisecond}, h)
	appendSpread(t, store, "skip", 10, 20) // 200 unwanted
	appendSpread(t, store, "keep", 3, 2)   // 6 wanted
	waitFor(t, 5*time.Second, func() error {
		if n := rec.distinct(); n != 6 {
			return fmt.Errorf("%d of 6 wanted events handled", n)
		}
		return caughtUp(context.Background(), r, "picky")
	})
	rec.mu.Lock()
	for _, e := range rec.events {
		if !strings.HasPrefix(e.StreamID, "keep-") {
			t.Errorf("delivered an unwanted event of %s", e.StreamID)
		}
	}
	rec.mu.Unlock()
	store.checkChains(t)
	store.mu.Lock()
	writes := len(store.moves[handlers.CheckpointName("picky", 0)]) + len(store.moves[handlers.CheckpointName("picky", 1)])
	store.mu.Unlock()
	if writes > 12 {
		t.Errorf("%d checkpoint writes for 6 wanted events among 200 unwanted ones in pages of 5", writes)
	}

	// Not waited for: an unwanted event, even one no partition has passed yet.
	unwanted := appendN(t, store, "skip-late", 1)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res := &aggregate.Result{StreamID: "skip-late", Events: []aggregate.Event{{Type: unwanted.Type, GlobalPosition: unwanted.GlobalPosition + 1_000_000}}}
	if err := r.WaitFor(ctx, res); err != nil {
		t.Fatalf("WaitFor on an event the Strong handler does not want: %v", err)
	}
	// Waited for: a wanted event beyond anything stored cannot be reached.
	res = &aggregate.Result{StreamID: "keep-0", Events: []aggregate.Event{{Type: "Counted", GlobalPosition: unwanted.GlobalPosition + 1_000_000}}}
	if err := r.WaitFor(ctx, res); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitFor on a wanted event not yet handled: %v, want the deadline", err)
	}
}

// TestPanickingFilterDeliversTheEvent: a Filter that panics does not take the node
// down; the event goes to the handler, whose error policy has the last word.
func TestPanickingFilterDeliversTheEvent(t *testing.T) {
	store := memStore(t)
	rec := newRecorder()
	h := handlers.Handler{
		Spec: handlers.Spec{Name: "fragile", Filter: func(e eventstore.RecordedEvent) bool {
			if e.StreamID == "boom" {
				panic("filter bug")
			}
			return false
		}},
		Handle: rec.handle,
	}
	r := newRunner(t, handlers.RunnerConfig{Store: store}, h)
	appendN(t, store, "quiet", 3)
	appendN(t, store, "boom", 1)
	waitFor(t, 5*time.Second, func() error {
		if n := rec.distinct(); n != 1 {
			return fmt.Errorf("%d events handled, want the one whose Filter panicked", n)
		}
		return caughtUp(context.Background(), r, "fragile")
	})
}

// TestHandlersReceiveDecodedEvents: with RunnerConfig.Decode, each event reaches the
// handler with its Go value; an event the decoder does not know arrives raw (Value
// nil); one it fails to decode goes to the error policy like a failing handler.
func TestHandlersReceiveDecodedEvents(t *testing.T) {
	store := memStore(t)
	appendN(t, store, "good-1", 2)
	appendN(t, store, "other-1", 1)
	appendN(t, store, "bad-1", 1)
	type decoded struct{ Stream string }
	decode := func(e eventstore.RecordedEvent) (any, error) {
		switch {
		case strings.HasPrefix(e.StreamID, "good-"):
			return decoded{Stream: e.StreamID}, nil
		case strings.HasPrefix(e.StreamID, "bad-"):
			return nil, errors.New("cannot decode")
		}
		return nil, nil
	}
	var mu sync.Mutex
	values := map[string][]any{}
	var failures []handlers.Failure
	h := handlers.Handler{
		Spec: handlers.Spec{Name: "typed", OnError: func(f handlers.Failure) (handlers.Decision, time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			failures = append(failures, f)
			return handlers.Skip, 0
		}},
		Handle: func(_ context.Context, e handlers.Event) error {
			mu.Lock()
			defer mu.Unlock()
			values[e.StreamID] = append(values[e.StreamID], e.Value)
			return nil
		},
	}
	r := newRunner(t, handlers.RunnerConfig{Store: store, Decode: decode}, h)
	waitFor(t, 5*time.Second, func() error { return caughtUp(context.Background(), r, "typed") })
	mu.Lock()
	defer mu.Unlock()
	if got := values["good-1"]; len(got) != 2 || got[0] != (decoded{Stream: "good-1"}) || got[1] != got[0] {
		t.Errorf("good-1 delivered %v, want two decoded values", got)
	}
	if got := values["other-1"]; len(got) != 1 || got[0] != nil {
		t.Errorf("other-1 delivered %v, want one raw event (nil Value)", got)
	}
	if got := values["bad-1"]; len(got) != 0 {
		t.Errorf("bad-1 reached the handler: %v", got)
	}
	if len(failures) != 1 || failures[0].Event.StreamID != "bad-1" || !strings.Contains(failures[0].Err.Error(), "cannot decode") {
		t.Errorf("failures %+v, want one for bad-1 saying it cannot decode", failures)
	}
}

// TestRunnerOnErrorIsTheDefaultPolicy: a handler without an OnError of its own gets
// the runner's; one with its own keeps it.
func TestRunnerOnErrorIsTheDefaultPolicy(t *testing.T) {
	store := memStore(t)
	appendN(t, store, "s-1", 1)
	var mu sync.Mutex
	decided := map[string]int{}
	policy := func(who string) handlers.OnError {
		return func(f handlers.Failure) (handlers.Decision, time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			decided[who]++
			return handlers.Skip, 0
		}
	}
	failing := func(context.Context, handlers.Event) error { return errors.New("fails") }
	r := newRunner(t, handlers.RunnerConfig{Store: store, OnError: policy("runner")},
		handlers.Handler{Spec: handlers.Spec{Name: "plain"}, Handle: failing},
		handlers.Handler{Spec: handlers.Spec{Name: "own", OnError: policy("own")}, Handle: failing})
	waitFor(t, 5*time.Second, func() error {
		if err := caughtUp(context.Background(), r, "plain"); err != nil {
			return err
		}
		return caughtUp(context.Background(), r, "own")
	})
	mu.Lock()
	defer mu.Unlock()
	if decided["runner"] != 1 || decided["own"] != 1 {
		t.Fatalf("decisions %v, want one by the runner's policy (plain) and one by the handler's own", decided)
	}
}
