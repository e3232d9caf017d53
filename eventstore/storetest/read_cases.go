package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/eventstore"
)

func testReadStreamPaging(t *testing.T, s eventstore.Store) {
	ctx := ctxFor(t)
	mustAppend(t, s, "p", eventstore.NoStream, events("E", 10))
	mustAppend(t, s, "other", eventstore.NoStream, events("E", 3))
	mustAppend(t, s, "p", eventstore.Exact(10), events("E", 15))
	cases := []struct {
		from  int64
		limit int
		want  []int64 // versions
	}{
		{1, 5, []int64{1, 2, 3, 4, 5}},
		{6, 3, []int64{6, 7, 8}},
		{23, 10, []int64{23, 24, 25}},
		{25, 10, []int64{25}},
		{26, 10, nil},
		{0, 2, []int64{1, 2}}, // versions start at 1; 0 reads from the start
	}
	for _, c := range cases {
		got, err := s.ReadStream(ctx, "p", c.from, c.limit)
		if err != nil {
			t.Fatalf("ReadStream(p, %d, %d): %v", c.from, c.limit, err)
		}
		var versions []int64
		for _, e := range got {
			if e.StreamID != "p" {
				t.Fatalf("ReadStream(p) returned an event of stream %s", e.StreamID)
			}
			versions = append(versions, e.StreamVersion)
		}
		if !equalInts(versions, c.want) {
			t.Errorf("ReadStream(p, %d, %d) = versions %v, want %v", c.from, c.limit, versions, c.want)
		}
	}
	if got, err := s.ReadStream(ctx, "missing", 1, 10); err != nil || len(got) != 0 {
		t.Errorf("ReadStream of a missing stream: %v, %v; want empty", got, err)
	}
	if n := len(readStream(t, s, "p")); n != 25 {
		t.Errorf("paged read of p found %d events, want 25", n)
	}
}

func testReadAllPaging(t *testing.T, s eventstore.Store) {
	ctx := ctxFor(t)
	var appended []eventstore.RecordedEvent
	for i := range 9 {
		appended = append(appended, mustAppend(t, s, []string{"a", "b", "c"}[i%3], eventstore.AnyVersion, events("E", 1+i%4))...)
	}
	all := readAll(t, s, len(appended))
	if len(all) != len(appended) {
		t.Fatalf("$all holds %d events, want %d", len(all), len(appended))
	}
	for i := range all {
		if all[i].ID != appended[i].ID || all[i].GlobalPosition != appended[i].GlobalPosition {
			t.Fatalf("$all[%d] = %s@%d, want %s@%d: appends of one writer must read back in order",
				i, all[i].ID, all[i].GlobalPosition, appended[i].ID, appended[i].GlobalPosition)
		}
	}
	mid := appended[7].GlobalPosition
	page, err := s.ReadAll(ctx, mid, 3)
	if err != nil || len(page) != 3 || page[0].GlobalPosition != mid {
		t.Fatalf("ReadAll(%d, 3) = %v, %v; want 3 events from %d", mid, page, err, mid)
	}
	last := appended[len(appended)-1].GlobalPosition
	if page, err := s.ReadAll(ctx, last+1, 10); err != nil || len(page) != 0 {
		t.Errorf("ReadAll past the end: %v, %v; want empty", page, err)
	}
	waitHead(t, s, last)
}

func testSnapshots(t *testing.T, s eventstore.Store) {
	ctx := ctxFor(t)
	if _, err := s.LoadSnapshot(ctx, "acc", 1); !errors.Is(err, eventstore.ErrNotFound) {
		t.Fatalf("load of a missing snapshot: %v, want ErrNotFound", err)
	}
	save := func(version int64, schema int, data string) {
		t.Helper()
		err := s.SaveSnapshot(ctx, eventstore.Snapshot{StreamID: "acc", StreamVersion: version, SchemaVersion: schema, Type: "Account", Data: []byte(data)})
		if err != nil {
			t.Fatalf("save snapshot: %v", err)
		}
	}
	save(10, 1, `{"balance": 100}`)
	save(20, 1, `{"balance": 250}`)
	got, err := s.LoadSnapshot(ctx, "acc", 1)
	if err != nil || got.StreamVersion != 20 || got.SchemaVersion != 1 || got.Type != "Account" || got.StreamID != "acc" || !sameJSON(t, got.Data, []byte(`{"balance":250}`)) || got.CreatedAt.IsZero() {
		t.Fatalf("load snapshot: %+v, %v; want the one at version 20", got, err)
	}
	if _, err := s.LoadSnapshot(ctx, "acc", 2); !errors.Is(err, eventstore.ErrNotFound) {
		t.Errorf("load with another schema version: %v, want ErrNotFound", err)
	}
	save(30, 2, `{"balance_cents": 25000}`)
	if _, err := s.LoadSnapshot(ctx, "acc", 1); !errors.Is(err, eventstore.ErrNotFound) {
		t.Errorf("old schema version after a new one was saved: %v, want ErrNotFound", err)
	}
	if got, err := s.LoadSnapshot(ctx, "acc", 2); err != nil || got.StreamVersion != 30 {
		t.Errorf("load schema version 2: %+v, %v", got, err)
	}
	bad := []eventstore.Snapshot{
		{StreamID: "", StreamVersion: 1, Data: []byte(`{}`)},
		{StreamID: "acc", StreamVersion: -1, Data: []byte(`{}`)},
		{StreamID: "acc", StreamVersion: 1, Data: []byte(`{`)},
	}
	for _, b := range bad {
		if err := s.SaveSnapshot(ctx, b); !errors.Is(err, eventstore.ErrInvalid) {
			t.Errorf("save %+v: got %v, want ErrInvalid", b, err)
		}
	}
}

func testCheckpoints(t *testing.T, s eventstore.Store) {
	ctx := ctxFor(t)
	if p, err := s.LoadCheckpoint(ctx, "h#0"); err != nil || p != 0 {
		t.Fatalf("missing checkpoint: %d, %v; want 0", p, err)
	}
	steps := []struct {
		expected, next int64
		ok             bool
		actual         int64
	}{
		{5, 10, false, 0}, // nothing stored: counts as 0
		{0, 10, true, 0},
		{0, 20, false, 10},
		{9, 20, false, 10},
		{10, 20, true, 0},
		{20, 20, true, 0},
		{20, 0, true, 0}, // a reset is an explicit compare-and-set too
		{0, 7, true, 0},
	}
	for i, st := range steps {
		err := s.StoreCheckpoint(ctx, "h#0", st.expected, st.next)
		var ce *eventstore.CheckpointConflictError
		switch {
		case st.ok && err != nil:
			t.Fatalf("step %d: store %d→%d: %v", i, st.expected, st.next, err)
		case !st.ok && !errors.As(err, &ce):
			t.Fatalf("step %d: store %d→%d: got %v, want ErrCheckpointConflict", i, st.expected, st.next, err)
		case !st.ok && (ce.Actual != st.actual || !errors.Is(err, eventstore.ErrCheckpointConflict)):
			t.Fatalf("step %d: conflict says actual %d, want %d", i, ce.Actual, st.actual)
		}
	}
	if p, _ := s.LoadCheckpoint(ctx, "h#0"); p != 7 {
		t.Errorf("checkpoint %d, want 7", p)
	}
	if p, _ := s.LoadCheckpoint(ctx, "h#1"); p != 0 {
		t.Errorf("another checkpoint moved: %d", p)
	}
	if err := s.StoreCheckpoint(ctx, "", 0, 1); !errors.Is(err, eventstore.ErrInvalid) {
		t.Errorf("empty name: %v, want ErrInvalid", err)
	}
	if err := s.StoreCheckpoint(ctx, "h#1", 0, -1); !errors.Is(err, eventstore.ErrInvalid) {
		t.Errorf("negative position: %v, want ErrInvalid", err)
	}
}

func testCheckpointRace(t *testing.T, s eventstore.Store) {
	ctx := ctxFor(t)
	for _, from := range []int64{0, 100} { // first store, then an advance
		if from != 0 {
			if err := s.StoreCheckpoint(ctx, "race", 0, from); err != nil {
				t.Fatal(err)
			}
		}
		const racers = 20
		var wg sync.WaitGroup
		errs := make([]error, racers)
		start := make(chan struct{})
		for i := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = s.StoreCheckpoint(ctx, "race", from, from+1+int64(i))
			}()
		}
		close(start)
		wg.Wait()
		wins, winner := 0, int64(0)
		for i, err := range errs {
			if err == nil {
				wins++
				winner = from + 1 + int64(i)
			} else if !errors.Is(err, eventstore.ErrCheckpointConflict) {
				t.Fatalf("racer %d: %v", i, err)
			}
		}
		if wins != 1 {
			t.Fatalf("from %d: %d racers advanced the checkpoint, want exactly 1", from, wins)
		}
		if p, _ := s.LoadCheckpoint(ctx, "race"); p != winner {
			t.Fatalf("checkpoint %d, but the winner stored %d", p, winner)
		}
		if err := s.StoreCheckpoint(ctx, "race", winner, 0); err != nil {
			t.Fatal(err)
		}
	}
}

func testNotifications(t *testing.T, s eventstore.Store) {
	ctx, cancel := context.WithCancel(ctxFor(t))
	ch := s.SubscribeAppends(ctx)
	// Drain what a subscription may signal at once (a store may wake new subscribers).
	drain(ch)
	mustAppend(t, s, "n", eventstore.NoStream, events("E", 1))
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatal("subscription closed early")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no notification within 5s of an append")
	}
	cancel()
	waitFor(t, 5*time.Second, "the subscription to close after its context ended", func() bool {
		select {
		case _, ok := <-ch:
			return !ok
		default:
			return false
		}
	})
}

func testClosed(t *testing.T, s eventstore.Store) {
	ch := s.SubscribeAppends(ctxFor(t))
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	waitFor(t, 5*time.Second, "subscriptions to close with the store", func() bool {
		select {
		case _, ok := <-ch:
			return !ok
		default:
			return false
		}
	})
	if _, err := s.Append(ctxFor(t), "x", eventstore.AnyVersion, events("E", 1)); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("append after close: %v, want ErrClosed", err)
	}
	if _, err := s.ReadAll(ctxFor(t), 1, 10); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("read after close: %v, want ErrClosed", err)
	}
}

func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		case <-time.After(50 * time.Millisecond):
			return
		}
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
