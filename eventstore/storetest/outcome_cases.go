package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/eventstore"
)

// ofCommand makes n events of idempotent command id for stream: they carry the id
// and have ids derived from it, as the aggregate runtime appends them.
func ofCommand(stream, id string, n int) []eventstore.EventData {
	evs := events("E", n)
	for i := range evs {
		evs[i].ID = eventstore.CommandEventID(stream, id, i)
		evs[i].Metadata = map[string]string{eventstore.MetaCommandID: id}
	}
	return evs
}

// testOutcomes: an outcome is recorded only on the version it was decided on and only
// for a command without events; once recorded it is the command's answer, and the
// command's events are refused.
func testOutcomes(t *testing.T, s eventstore.Store) {
	ctx := ctxFor(t)
	mustAppend(t, s, "acc", eventstore.NoStream, ofCommand("acc", "open", 2))
	rejected := eventstore.CommandOutcome{StreamID: "acc", CommandID: "w-1", StreamVersion: 2, Code: "rejected", Message: "insufficient funds", Reason: "insufficient_funds"}

	stale := rejected
	stale.StreamVersion = 1
	var wv *eventstore.WrongVersionError
	if prior, err := s.RecordOutcome(ctx, stale); !errors.As(err, &wv) || wv.ActualVersion != 2 || prior != nil {
		t.Fatalf("outcome decided at version 1 of a stream at 2: %v, %v; want WrongVersionError with actual 2", prior, err)
	}
	if got, err := s.ReadOutcome(ctx, "acc", "w-1"); err != nil || got != nil {
		t.Fatalf("a stale outcome was recorded: %+v, %v", got, err)
	}

	if prior, err := s.RecordOutcome(ctx, rejected); err != nil || prior != nil {
		t.Fatalf("record an outcome: %+v, %v; want recorded", prior, err)
	}
	got, err := s.ReadOutcome(ctx, "acc", "w-1")
	if err != nil || got == nil || got.Code != "rejected" || got.Message != "insufficient funds" || got.Reason != "insufficient_funds" || got.StreamVersion != 2 || got.CreatedAt.IsZero() {
		t.Fatalf("read back: %+v, %v", got, err)
	}

	// Asked again (a retry decided on a newer state): the first outcome holds.
	mustAppend(t, s, "acc", eventstore.Exact(2), ofCommand("acc", "deposit", 1))
	again := eventstore.CommandOutcome{StreamID: "acc", CommandID: "w-1", StreamVersion: 3}
	prior, err := s.RecordOutcome(ctx, again)
	if err != nil || prior == nil || prior.Message != "insufficient funds" || prior.Reason != "insufficient_funds" || prior.StreamVersion != 2 {
		t.Fatalf("second outcome of w-1: %+v, %v; want the first one back", prior, err)
	}

	// The command's events are refused, whatever version they expect.
	if _, err := s.Append(ctx, "acc", eventstore.Exact(3), ofCommand("acc", "w-1", 1)); !errors.Is(err, eventstore.ErrCommandDecided) {
		t.Fatalf("append events of a command with an outcome: %v, want ErrCommandDecided", err)
	}
	if _, err := s.Append(ctx, "acc", eventstore.AnyVersion, ofCommand("acc", "w-1", 1)); !errors.Is(err, eventstore.ErrCommandDecided) {
		t.Fatalf("append (any version) events of a command with an outcome: %v, want ErrCommandDecided", err)
	}
	// Events that carry the id without ids derived from it are not an idempotent
	// command's (the runtime's commands sent without an id): not checked.
	plain := events("E", 1)
	plain[0].Metadata = map[string]string{eventstore.MetaCommandID: "w-1"}
	mustAppend(t, s, "acc", eventstore.Exact(3), plain)
	// The id is scoped to its stream, and other commands append as usual.
	mustAppend(t, s, "other", eventstore.NoStream, ofCommand("other", "w-1", 1))
	mustAppend(t, s, "acc", eventstore.Exact(4), ofCommand("acc", "w-2", 1))
	if v, err := s.StreamVersion(ctx, "acc"); err != nil || v != 5 {
		t.Fatalf("acc at %d, %v; want 5", v, err)
	}

	// A command with events cannot get an outcome.
	if prior, err := s.RecordOutcome(ctx, eventstore.CommandOutcome{StreamID: "acc", CommandID: "w-2", StreamVersion: 5}); !errors.Is(err, eventstore.ErrCommandDecided) || prior != nil {
		t.Fatalf("outcome of a command that appended: %+v, %v; want ErrCommandDecided", prior, err)
	}
	// A success without events, on a stream that does not exist yet.
	if prior, err := s.RecordOutcome(ctx, eventstore.CommandOutcome{StreamID: "new", CommandID: "noop", StreamVersion: 0}); err != nil || prior != nil {
		t.Fatalf("outcome at version 0 of a missing stream: %+v, %v", prior, err)
	}
	if got, err := s.ReadOutcome(ctx, "new", "noop"); err != nil || got == nil || got.Code != "" {
		t.Fatalf("read back the success: %+v, %v", got, err)
	}

	for _, bad := range []eventstore.CommandOutcome{
		{StreamID: "", CommandID: "c", StreamVersion: 0},
		{StreamID: "s", CommandID: "", StreamVersion: 0},
		{StreamID: "s", CommandID: "c", StreamVersion: -1},
		{StreamID: "s", CommandID: "c", Message: "a\x00b"},
	} {
		if _, err := s.RecordOutcome(ctx, bad); !errors.Is(err, eventstore.ErrInvalid) {
			t.Errorf("RecordOutcome(%+v): %v, want ErrInvalid", bad, err)
		}
	}
}

// testOutcomeRacesAppend: a command's events and an outcome of it, written at the
// same time, never both succeed; one always does.
func testOutcomeRacesAppend(t *testing.T, s eventstore.Store) {
	ctx := ctxFor(t)
	const rounds = 40
	var wg sync.WaitGroup
	appendErrs := make([]error, rounds)
	outcomeErrs := make([]error, rounds)
	priors := make([]*eventstore.CommandOutcome, rounds)
	for i := range rounds {
		stream := fmt.Sprintf("race-%d", i)
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, appendErrs[i] = s.Append(ctx, stream, eventstore.NoStream, ofCommand(stream, "c", 1))
		}()
		go func() {
			defer wg.Done()
			priors[i], outcomeErrs[i] = s.RecordOutcome(ctx, eventstore.CommandOutcome{StreamID: stream, CommandID: "c", Code: "rejected", Message: "no"})
		}()
	}
	wg.Wait()
	for i := range rounds {
		appended := appendErrs[i] == nil
		recorded := outcomeErrs[i] == nil && priors[i] == nil
		if appended == recorded {
			t.Errorf("round %d: append %v, outcome %v (prior %+v): want exactly one to succeed", i, appendErrs[i], outcomeErrs[i], priors[i])
			continue
		}
		if appended && !errors.Is(outcomeErrs[i], eventstore.ErrCommandDecided) {
			t.Errorf("round %d: the append won but the outcome failed with %v, want ErrCommandDecided", i, outcomeErrs[i])
		}
		if recorded && !errors.Is(appendErrs[i], eventstore.ErrCommandDecided) {
			t.Errorf("round %d: the outcome won but the append failed with %v, want ErrCommandDecided", i, appendErrs[i])
		}
	}
}

// testBatchOutcomes: in a batch, only the request of a command with an outcome is
// refused.
func testBatchOutcomes(t *testing.T, s eventstore.Store, b eventstore.BatchAppender) {
	ctx := ctxFor(t)
	mustAppend(t, s, "a", eventstore.NoStream, events("Opened", 1))
	if _, err := s.RecordOutcome(ctx, eventstore.CommandOutcome{StreamID: "a", CommandID: "done", StreamVersion: 1, Code: "rejected", Message: "no"}); err != nil {
		t.Fatal(err)
	}
	res := b.AppendMany(ctx, []eventstore.AppendRequest{
		{StreamID: "a", Expected: eventstore.Exact(1), Events: ofCommand("a", "done", 1)},
		{StreamID: "b", Expected: eventstore.NoStream, Events: ofCommand("b", "done", 2)}, // same id, other stream
		{StreamID: "c", Expected: eventstore.NoStream, Events: events("C", 1)},
	})
	if !errors.Is(res[0].Err, eventstore.ErrCommandDecided) {
		t.Errorf("request of a command with an outcome: %v, want ErrCommandDecided", res[0].Err)
	}
	if res[1].Err != nil || len(res[1].Events) != 2 || res[2].Err != nil || len(res[2].Events) != 1 {
		t.Errorf("the other requests: %+v, %+v; want both appended", res[1], res[2])
	}
	if v, err := s.StreamVersion(ctx, "a"); err != nil || v != 1 {
		t.Errorf("stream a at %d, %v; want 1", v, err)
	}
}

// testPruneOutcomes: PruneOutcomes deletes exactly the outcomes recorded before the
// given time; a pruned command may be decided again, a command with events never.
func testPruneOutcomes(t *testing.T, s eventstore.Store) {
	ctx := ctxFor(t)
	mustAppend(t, s, "acc", eventstore.NoStream, ofCommand("acc", "open", 1))
	record := func(id string) time.Time {
		t.Helper()
		o := eventstore.CommandOutcome{StreamID: "acc", CommandID: id, StreamVersion: 1, Code: "rejected", Message: "no"}
		if prior, err := s.RecordOutcome(ctx, o); err != nil || prior != nil {
			t.Fatalf("record %s: %+v, %v", id, prior, err)
		}
		got, err := s.ReadOutcome(ctx, "acc", id)
		if err != nil || got == nil {
			t.Fatalf("read %s back: %+v, %v", id, got, err)
		}
		return got.CreatedAt
	}
	prune := func(before time.Time, want int64) {
		t.Helper()
		if n, err := s.PruneOutcomes(ctx, before); err != nil || n != want {
			t.Fatalf("prune before %s: %d, %v; want %d pruned", before, n, err, want)
		}
	}
	present := func(id string, want bool) {
		t.Helper()
		got, err := s.ReadOutcome(ctx, "acc", id)
		if err != nil || (got != nil) != want {
			t.Fatalf("outcome of %s after pruning: %+v, %v; want present=%v", id, got, err, want)
		}
	}

	older := record("old")
	time.Sleep(5 * time.Millisecond) // so that the next outcome is recorded later
	newer := record("new")
	if !older.Before(newer) {
		t.Fatalf("outcomes recorded 5ms apart have times %s and %s", older, newer)
	}
	prune(older, 0) // strictly before
	present("old", true)
	prune(newer, 1)
	present("old", false)
	present("new", true)

	// Pruned, the command has no outcome: it may be decided again.
	record("old")
	prune(time.Now().Add(time.Hour), 2)
	present("new", false)
	// Events are never pruned: a command that appended keeps its outcome.
	o := eventstore.CommandOutcome{StreamID: "acc", CommandID: "open", StreamVersion: 1}
	if _, err := s.RecordOutcome(ctx, o); !errors.Is(err, eventstore.ErrCommandDecided) {
		t.Fatalf("outcome of a command with events after pruning: %v, want ErrCommandDecided", err)
	}
}
