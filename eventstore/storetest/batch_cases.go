package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/ringleader-go/ringleader/eventstore"
)

// batchCases are the conformance tests of eventstore.BatchAppender, run for stores
// that implement it.
var batchCases = []struct {
	name string
	fn   func(t *testing.T, s eventstore.Store, b eventstore.BatchAppender)
}{
	{"AppendManyIndependentConflicts", testBatchIndependentConflicts},
	{"AppendManySameStreamInOrder", testBatchSameStream},
	{"AppendManyPositions", testBatchPositions},
	{"AppendManyDuplicateEventID", testBatchDuplicateEventID},
	{"AppendManyConcurrentOneWinner", testBatchOneWinner},
	{"AppendManyRefusesDecidedCommands", testBatchOutcomes},
}

func testBatchIndependentConflicts(t *testing.T, s eventstore.Store, b eventstore.BatchAppender) {
	ctx := ctxFor(t)
	mustAppend(t, s, "a", eventstore.NoStream, events("Opened", 1))
	mustAppend(t, s, "b", eventstore.NoStream, events("Opened", 3))
	res := b.AppendMany(ctx, []eventstore.AppendRequest{
		{StreamID: "a", Expected: eventstore.Exact(1), Events: events("A", 2)},   // ok
		{StreamID: "b", Expected: eventstore.Exact(1), Events: events("B", 1)},   // behind: b is at 3
		{StreamID: "c", Expected: eventstore.NoStream, Events: events("C", 1)},   // ok
		{StreamID: "d", Expected: eventstore.Exact(2), Events: events("D", 1)},   // ahead: d does not exist
		{StreamID: "", Expected: eventstore.NoStream, Events: events("X", 1)},    // invalid
		{StreamID: "e", Expected: eventstore.AnyVersion, Events: events("E", 2)}, // ok, computed
	})
	if len(res) != 6 {
		t.Fatalf("%d results for 6 requests", len(res))
	}
	for i, want := range []int64{2, -1, 1, -1, -1, 2} {
		if want < 0 {
			continue
		}
		if res[i].Err != nil || len(res[i].Events) != int(want) {
			t.Fatalf("request %d: %d events, %v; want %d events", i, len(res[i].Events), res[i].Err, want)
		}
	}
	var wv *eventstore.WrongVersionError
	if !errors.As(res[1].Err, &wv) || wv.ActualVersion != 3 {
		t.Errorf("stream b expected at 1: got %v, want WrongVersionError with actual 3", res[1].Err)
	}
	if !errors.As(res[3].Err, &wv) || wv.ActualVersion != 0 {
		t.Errorf("stream d expected at 2: got %v, want WrongVersionError with actual 0", res[3].Err)
	}
	if !errors.Is(res[4].Err, eventstore.ErrInvalid) {
		t.Errorf("empty stream id: got %v, want ErrInvalid", res[4].Err)
	}
	if got := res[0].Events; got[0].StreamVersion != 2 || got[1].StreamVersion != 3 || got[0].Type != "A" {
		t.Errorf("stream a: recorded %+v, want versions 2 and 3", got)
	}
	for stream, want := range map[string]int64{"a": 3, "b": 3, "c": 1, "d": 0, "e": 2} {
		if v := streamVersion(t, s, stream); v != want {
			t.Errorf("stream %s at version %d, want %d", stream, v, want)
		}
	}
}

func testBatchSameStream(t *testing.T, s eventstore.Store, b eventstore.BatchAppender) {
	ctx := ctxFor(t)
	res := b.AppendMany(ctx, []eventstore.AppendRequest{
		{StreamID: "s", Expected: eventstore.NoStream, Events: events("First", 1)},
		{StreamID: "t", Expected: eventstore.NoStream, Events: events("T", 1)},
		{StreamID: "s", Expected: eventstore.Exact(1), Events: events("Second", 2)},
		{StreamID: "s", Expected: eventstore.Exact(1), Events: events("Third", 1)}, // lost to Second
	})
	if res[0].Err != nil || res[1].Err != nil || res[2].Err != nil {
		t.Fatalf("results %+v: want the first three to succeed", res)
	}
	if !errors.Is(res[3].Err, eventstore.ErrWrongVersion) {
		t.Fatalf("third append to s expecting 1: got %v, want ErrWrongVersion", res[3].Err)
	}
	got := readStream(t, s, "s")
	if len(got) != 3 || got[0].Type != "First" || got[1].Type != "Second" || got[2].Type != "Second" {
		t.Fatalf("stream s holds %+v, want First, Second, Second", got)
	}
}

func testBatchPositions(t *testing.T, s eventstore.Store, b eventstore.BatchAppender) {
	ctx := ctxFor(t)
	before := mustAppend(t, s, "before", eventstore.NoStream, events("E", 1))
	var reqs []eventstore.AppendRequest
	for i := range 10 {
		reqs = append(reqs, eventstore.AppendRequest{StreamID: fmt.Sprintf("p-%d", 9-i), Expected: eventstore.NoStream, Events: events("E", 1+i%3)})
	}
	res := b.AppendMany(ctx, reqs)
	after := mustAppend(t, s, "after", eventstore.NoStream, events("E", 1))
	byID := map[string]eventstore.RecordedEvent{}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("request %d: %v", i, r.Err)
		}
		for j, e := range r.Events {
			if e.StreamID != reqs[i].StreamID || e.StreamVersion != int64(j+1) || e.Type != "E" {
				t.Fatalf("request %d event %d recorded as %+v", i, j, e)
			}
			if e.GlobalPosition <= before[0].GlobalPosition || e.GlobalPosition >= after[0].GlobalPosition {
				t.Fatalf("batch position %d not between %d and %d", e.GlobalPosition, before[0].GlobalPosition, after[0].GlobalPosition)
			}
			if j > 0 && e.GlobalPosition <= r.Events[j-1].GlobalPosition {
				t.Fatalf("stream %s: positions not increasing", e.StreamID)
			}
			byID[e.ID.String()] = e
		}
	}
	all := readAll(t, s, len(byID)+2)
	if len(all) != len(byID)+2 {
		t.Fatalf("$all holds %d events, want %d", len(all), len(byID)+2)
	}
	for i, e := range all {
		if i > 0 && e.GlobalPosition <= all[i-1].GlobalPosition {
			t.Fatalf("$all not strictly increasing")
		}
		if r, ok := byID[e.ID.String()]; ok && (r.GlobalPosition != e.GlobalPosition || r.StreamVersion != e.StreamVersion) {
			t.Fatalf("event %s returned as %d/%d but stored as %d/%d", e.ID, r.GlobalPosition, r.StreamVersion, e.GlobalPosition, e.StreamVersion)
		}
	}
}

func testBatchDuplicateEventID(t *testing.T, s eventstore.Store, b eventstore.BatchAppender) {
	ctx := ctxFor(t)
	first := mustAppend(t, s, "a", eventstore.NoStream, events("E", 1))
	dup := events("E", 2)
	dup[1].ID = first[0].ID
	res := b.AppendMany(ctx, []eventstore.AppendRequest{
		{StreamID: "x", Expected: eventstore.NoStream, Events: events("X", 1)},
		{StreamID: "dup", Expected: eventstore.NoStream, Events: dup},
		{StreamID: "y", Expected: eventstore.NoStream, Events: events("Y", 2)},
	})
	if !errors.Is(res[1].Err, eventstore.ErrDuplicateEventID) {
		t.Fatalf("append reusing event id: got %v, want ErrDuplicateEventID", res[1].Err)
	}
	if res[0].Err != nil || res[2].Err != nil {
		t.Fatalf("the other requests failed: %v, %v", res[0].Err, res[2].Err)
	}
	for stream, want := range map[string]int64{"x": 1, "dup": 0, "y": 2} {
		if v := streamVersion(t, s, stream); v != want {
			t.Errorf("stream %s at version %d, want %d", stream, v, want)
		}
	}
}

// testBatchOneWinner races batches that share streams: of the requests expecting
// one version of one stream exactly one wins, and the others of their batches are
// not affected.
func testBatchOneWinner(t *testing.T, s eventstore.Store, b eventstore.BatchAppender) {
	ctx := ctxFor(t)
	const writers, shared = 12, 4
	for i := range shared {
		mustAppend(t, s, fmt.Sprintf("hot-%d", i), eventstore.NoStream, events("Opened", 1))
	}
	var wg sync.WaitGroup
	results := make([][]eventstore.AppendResult, writers)
	start := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var reqs []eventstore.AppendRequest
			// Shared streams in a writer-dependent order, plus a private stream.
			for i := range shared {
				stream := fmt.Sprintf("hot-%d", (w+i)%shared)
				reqs = append(reqs, eventstore.AppendRequest{StreamID: stream, Expected: eventstore.Exact(1), Events: events(fmt.Sprintf("W%d", w), 1+w%2)})
			}
			reqs = append(reqs, eventstore.AppendRequest{StreamID: fmt.Sprintf("own-%d", w), Expected: eventstore.NoStream, Events: events("Own", 1)})
			<-start
			results[w] = b.AppendMany(ctx, reqs)
		}()
	}
	close(start)
	wg.Wait()
	wins := map[string]int{}
	for w, res := range results {
		for i, r := range res[:shared] {
			stream := fmt.Sprintf("hot-%d", (w+i)%shared)
			switch {
			case r.Err == nil:
				wins[stream]++
			case errors.Is(r.Err, eventstore.ErrWrongVersion):
			default:
				t.Errorf("writer %d stream %s: %v", w, stream, r.Err)
			}
		}
		if err := res[shared].Err; err != nil {
			t.Errorf("writer %d: its private stream failed: %v", w, err)
		}
	}
	for i := range shared {
		stream := fmt.Sprintf("hot-%d", i)
		if wins[stream] != 1 {
			t.Errorf("stream %s: %d winners, want 1", stream, wins[stream])
		}
		got := readStream(t, s, stream)
		for j, e := range got {
			if e.StreamVersion != int64(j+1) || (j > 1 && e.Type != got[1].Type) {
				t.Fatalf("stream %s holds %+v: not one winner's events after the opener", stream, got)
			}
		}
	}
}
