package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/ringleader-go/ringleader/eventstore"
)

func testAppendAndReadBack(t *testing.T, s eventstore.Store) {
	in := events("Deposited", 3)
	in[1].ID = uuid.New()
	in[2].Metadata = map[string]string{eventstore.MetaCommandID: "c-1", eventstore.MetaCorrelationID: "corr", eventstore.MetaCausationID: "cause"}
	rec := mustAppend(t, s, "acc-1", eventstore.NoStream, in)
	if len(rec) != 3 {
		t.Fatalf("append returned %d events, want 3", len(rec))
	}
	if rec[1].ID != in[1].ID {
		t.Errorf("caller's event id not kept: got %s, want %s", rec[1].ID, in[1].ID)
	}
	for i, e := range rec {
		if e.StreamVersion != int64(i+1) {
			t.Errorf("event %d: stream version %d, want %d", i, e.StreamVersion, i+1)
		}
		if i > 0 && e.GlobalPosition != rec[i-1].GlobalPosition+1 {
			t.Errorf("positions of one append not contiguous: %d after %d", e.GlobalPosition, rec[i-1].GlobalPosition)
		}
		if e.ID == uuid.Nil || e.CreatedAt.IsZero() || e.StreamID != "acc-1" {
			t.Errorf("event %d incomplete: %+v", i, e)
		}
	}
	got := readStream(t, s, "acc-1")
	if len(got) != 3 {
		t.Fatalf("read back %d events, want 3", len(got))
	}
	for i := range got {
		g, w := got[i], rec[i]
		if g.ID != w.ID || g.Type != w.Type || g.StreamVersion != w.StreamVersion || g.GlobalPosition != w.GlobalPosition {
			t.Errorf("event %d read back as %+v, appended as %+v", i, g, w)
		}
		if !sameJSON(t, g.Data, in[i].Data) {
			t.Errorf("event %d data %s, want %s", i, g.Data, in[i].Data)
		}
		if fmt.Sprint(g.Metadata) != fmt.Sprint(in[i].Metadata) {
			t.Errorf("event %d metadata %v, want %v", i, g.Metadata, in[i].Metadata)
		}
		if !g.CreatedAt.Equal(w.CreatedAt) {
			t.Errorf("event %d created at %v, append said %v", i, g.CreatedAt, w.CreatedAt)
		}
	}
	if v := streamVersion(t, s, "acc-1"); v != 3 {
		t.Errorf("stream version %d, want 3", v)
	}
	if v := streamVersion(t, s, "nobody"); v != 0 {
		t.Errorf("version of a missing stream %d, want 0", v)
	}
	waitHead(t, s, rec[2].GlobalPosition)
	// The caller's slices are not the store's: changing them changes nothing stored.
	got[0].Metadata["index"] = "changed"
	in[0].Data[2] = 'X'
	again := readStream(t, s, "acc-1")
	if again[0].Metadata["index"] != "0" || !json.Valid(again[0].Data) {
		t.Errorf("store shares memory with its callers: %+v", again[0])
	}
}

func testExpectedVersion(t *testing.T, s eventstore.Store) {
	ctx := ctxFor(t)
	type step struct {
		name     string
		stream   string
		expected eventstore.ExpectedVersion
		wantErr  bool  // a *WrongVersionError
		actual   int64 // its ActualVersion
	}
	steps := []step{
		{"stream exists on a missing stream", "s", eventstore.StreamExists, true, 0},
		{"exact 1 on a missing stream", "s", eventstore.Exact(1), true, 0},
		{"no stream on a missing stream", "s", eventstore.NoStream, false, 0},           // → 2
		{"no stream on an existing stream", "s", eventstore.NoStream, true, 2},          //
		{"exact 0 on an existing stream", "s", eventstore.Exact(0), true, 2},            //
		{"stream exists on an existing stream", "s", eventstore.StreamExists, false, 0}, // → 4
		{"exact current version", "s", eventstore.Exact(4), false, 0},                   // → 6
		{"exact stale version", "s", eventstore.Exact(4), true, 6},
		{"exact future version", "s", eventstore.Exact(9), true, 6},
		{"any version on an existing stream", "s", eventstore.AnyVersion, false, 0}, // → 8
		{"any version on a missing stream", "t", eventstore.AnyVersion, false, 0},   // t → 2
		{"exact 0 on a missing stream", "u", eventstore.Exact(0), false, 0},         // u → 2
	}
	for _, st := range steps {
		before := streamVersion(t, s, st.stream)
		_, err := s.Append(ctx, st.stream, st.expected, events("E", 2))
		if !st.wantErr {
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if v := streamVersion(t, s, st.stream); v != before+2 {
				t.Fatalf("%s: version %d after append, want %d", st.name, v, before+2)
			}
			continue
		}
		var wv *eventstore.WrongVersionError
		if !errors.Is(err, eventstore.ErrWrongVersion) || !errors.As(err, &wv) {
			t.Fatalf("%s: got %v, want ErrWrongVersion", st.name, err)
		}
		if wv.ActualVersion != st.actual || wv.StreamID != st.stream || wv.Expected != st.expected {
			t.Errorf("%s: error carries %+v, want actual version %d", st.name, *wv, st.actual)
		}
		if v := streamVersion(t, s, st.stream); v != before {
			t.Errorf("%s: a refused append changed the version from %d to %d", st.name, before, v)
		}
	}
	if got := len(readStream(t, s, "s")); got != 8 {
		t.Errorf("stream s holds %d events, want 8", got)
	}
	if _, err := s.Append(ctx, "s", eventstore.ExpectedVersion(-3), events("E", 1)); !errors.Is(err, eventstore.ErrInvalid) {
		t.Errorf("expected version -3: got %v, want ErrInvalid", err)
	}
}

func testOneWinner(t *testing.T, s eventstore.Store) {
	ctx := ctxFor(t)
	mustAppend(t, s, "hot", eventstore.NoStream, events("Opened", 1))
	const writers = 50
	var wg sync.WaitGroup
	errs := make([]error, writers)
	start := make(chan struct{})
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = s.Append(ctx, "hot", eventstore.Exact(1), events(fmt.Sprintf("Writer%d", i), 2))
		}()
	}
	close(start)
	wg.Wait()
	wins := 0
	for i, err := range errs {
		var wv *eventstore.WrongVersionError
		switch {
		case err == nil:
			wins++
		case errors.As(err, &wv):
			if wv.ActualVersion != 3 {
				t.Errorf("writer %d: loser told actual version %d, want 3", i, wv.ActualVersion)
			}
		default:
			t.Errorf("writer %d: %v, want nil or ErrWrongVersion", i, err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d writers won, want exactly 1", wins)
	}
	got := readStream(t, s, "hot")
	if len(got) != 3 || got[1].Type != got[2].Type {
		t.Fatalf("stream holds %d events (%v), want the opener plus one writer's 2", len(got), got)
	}
}

func testManyStreams(t *testing.T, s eventstore.Store) {
	ctx := ctxFor(t)
	const writers, appendsEach, streams = 16, 20, 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	var appended []eventstore.RecordedEvent
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range appendsEach {
				stream := fmt.Sprintf("many-%d", (w+i)%streams)
				rec, err := s.Append(ctx, stream, eventstore.AnyVersion, events("E", 1+(w+i)%3))
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				mu.Lock()
				appended = append(appended, rec...)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	total := 0
	for i := range streams {
		stream := fmt.Sprintf("many-%d", i)
		got := readStream(t, s, stream)
		for j, e := range got {
			if e.StreamVersion != int64(j+1) {
				t.Fatalf("stream %s: event %d has version %d: versions are not 1..n", stream, j, e.StreamVersion)
			}
		}
		if v := streamVersion(t, s, stream); v != int64(len(got)) {
			t.Errorf("stream %s: version %d, but %d events", stream, v, len(got))
		}
		total += len(got)
	}
	all := readAll(t, s, len(appended))
	if len(all) != len(appended) || total != len(appended) {
		t.Fatalf("$all holds %d events, streams %d, appends returned %d", len(all), total, len(appended))
	}
	seen := map[uuid.UUID]bool{}
	for i, e := range all {
		if seen[e.ID] {
			t.Fatalf("event %s twice in $all", e.ID)
		}
		seen[e.ID] = true
		if i > 0 && e.GlobalPosition <= all[i-1].GlobalPosition {
			t.Fatalf("$all not strictly increasing: %d after %d", e.GlobalPosition, all[i-1].GlobalPosition)
		}
	}
	for _, e := range appended {
		if !seen[e.ID] {
			t.Fatalf("appended event %s missing from $all", e.ID)
		}
	}
}

func testBadInput(t *testing.T, s eventstore.Store) {
	ctx := ctxFor(t)
	good := mustAppend(t, s, "good", eventstore.NoStream, events("E", 1))
	big := make([]byte, eventstore.DefaultMaxEventBytes+1)
	for i := range big {
		big[i] = ' '
	}
	copy(big, `"`)
	big[len(big)-1] = '"'
	cases := []struct {
		name   string
		stream string
		events []eventstore.EventData
		want   error
	}{
		{"empty stream id", "", events("E", 1), eventstore.ErrInvalid},
		{"no events", "bad", nil, eventstore.ErrInvalid},
		{"empty type", "bad", []eventstore.EventData{{Data: json.RawMessage(`{}`)}}, eventstore.ErrInvalid},
		{"no data", "bad", []eventstore.EventData{{Type: "E"}}, eventstore.ErrInvalid},
		{"data not JSON", "bad", []eventstore.EventData{{Type: "E", Data: json.RawMessage(`{"a":`)}}, eventstore.ErrInvalid},
		{"second event not JSON", "good", append(events("E", 1), eventstore.EventData{Type: "E", Data: json.RawMessage(`nope`)}), eventstore.ErrInvalid},
		{"NUL escape in data", "bad", []eventstore.EventData{{Type: "E", Data: json.RawMessage(`"a\u0000b"`)}}, eventstore.ErrInvalid},
		{"NUL in metadata", "bad", []eventstore.EventData{{Type: "E", Data: json.RawMessage(`1`), Metadata: map[string]string{"k": "a\x00"}}}, eventstore.ErrInvalid},
		{"invalid UTF-8 stream id", "\xff", events("E", 1), eventstore.ErrInvalid},
		{"oversized event", "bad", []eventstore.EventData{{Type: "E", Data: big}}, eventstore.ErrEventTooLarge},
	}
	for _, c := range cases {
		_, err := s.Append(ctx, c.stream, eventstore.AnyVersion, c.events)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	if v := streamVersion(t, s, "bad"); v != 0 {
		t.Errorf("refused appends created stream bad at version %d", v)
	}
	if v := streamVersion(t, s, "good"); v != 1 {
		t.Errorf("refused append changed stream good to version %d", v)
	}
	// Nothing reached the global order either: after a marker, $all holds exactly
	// the good event and the marker.
	marker := mustAppend(t, s, "marker", eventstore.NoStream, events("E", 1))
	waitHead(t, s, marker[0].GlobalPosition)
	if all := readAll(t, s, 2); len(all) != 2 || all[0].ID != good[0].ID || all[1].ID != marker[0].ID {
		t.Errorf("refused appends reached $all: it holds %d events", len(all))
	}
	for _, limit := range []int{0, -1} {
		if _, err := s.ReadStream(ctx, "good", 1, limit); !errors.Is(err, eventstore.ErrInvalid) {
			t.Errorf("ReadStream limit %d: got %v, want ErrInvalid", limit, err)
		}
		if _, err := s.ReadAll(ctx, 1, limit); !errors.Is(err, eventstore.ErrInvalid) {
			t.Errorf("ReadAll limit %d: got %v, want ErrInvalid", limit, err)
		}
	}
	if _, err := s.ReadStream(ctx, "", 1, 10); !errors.Is(err, eventstore.ErrInvalid) {
		t.Errorf("ReadStream of empty id: got %v, want ErrInvalid", err)
	}
}

func testDuplicateEventID(t *testing.T, s eventstore.Store) {
	ctx := ctxFor(t)
	first := mustAppend(t, s, "a", eventstore.NoStream, events("E", 1))
	dup := events("E", 2)
	dup[1].ID = first[0].ID
	if _, err := s.Append(ctx, "b", eventstore.AnyVersion, dup); !errors.Is(err, eventstore.ErrDuplicateEventID) {
		t.Fatalf("append reusing event id %s: got %v, want ErrDuplicateEventID", first[0].ID, err)
	}
	if v := streamVersion(t, s, "b"); v != 0 {
		t.Errorf("append with a duplicate id wrote %d events", v)
	}
}

func testCommandIndex(t *testing.T, s eventstore.Store) {
	ctx := ctxFor(t)
	withCommand := func(id string, n int) []eventstore.EventData {
		evs := events("E", n)
		for i := range evs {
			evs[i].Metadata = map[string]string{eventstore.MetaCommandID: id}
		}
		return evs
	}
	mustAppend(t, s, "x", eventstore.NoStream, withCommand("c-1", 2))
	mustAppend(t, s, "x", eventstore.Exact(2), withCommand("c-2", 1))
	mustAppend(t, s, "y", eventstore.NoStream, withCommand("c-1", 1))
	got, err := s.ReadCommandEvents(ctx, "x", "c-1")
	if err != nil || len(got) != 2 || got[0].StreamVersion != 1 || got[1].StreamVersion != 2 {
		t.Fatalf("events of c-1 in x: %v, %v; want versions 1 and 2", got, err)
	}
	got, err = s.ReadCommandEvents(ctx, "x", "c-3")
	if err != nil || len(got) != 0 {
		t.Fatalf("events of unknown command: %v, %v; want none", got, err)
	}
}
