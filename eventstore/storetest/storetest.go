// Package storetest is the conformance suite every eventstore.Store implementation
// must pass. An implementation's test calls Run with a constructor that returns a
// fresh, empty store for each subtest:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) eventstore.Store { return memstore.New() })
//	}
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/internal/testwait"
)

// NewStore returns a fresh, empty store for one subtest; the suite closes it.
type NewStore func(t *testing.T) eventstore.Store

// Run runs every conformance test against stores made by newStore.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s eventstore.Store)
	}{
		{"AppendAndReadBack", testAppendAndReadBack},
		{"ExpectedVersion", testExpectedVersion},
		{"ConcurrentAppendsToOneStreamOneWinner", testOneWinner},
		{"ConcurrentAppendsToManyStreams", testManyStreams},
		{"ReadStreamPaging", testReadStreamPaging},
		{"ReadAllPaging", testReadAllPaging},
		{"Snapshots", testSnapshots},
		{"Checkpoints", testCheckpoints},
		{"ConcurrentCheckpointCompareAndSet", testCheckpointRace},
		{"BadInputWritesNothing", testBadInput},
		{"DuplicateEventID", testDuplicateEventID},
		{"CommandIndex", testCommandIndex},
		{"Outcomes", testOutcomes},
		{"OutcomeRacesAppend", testOutcomeRacesAppend},
		{"PruneOutcomes", testPruneOutcomes},
		{"Notifications", testNotifications},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { _ = s.Close() })
			tc.fn(t, s)
		})
	}
	for _, tc := range batchCases {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { _ = s.Close() })
			b, ok := s.(eventstore.BatchAppender)
			if !ok {
				t.Skip("the store does not implement eventstore.BatchAppender")
			}
			tc.fn(t, s, b)
		})
	}
}

// ctxFor returns a context that ends with the test or after a generous timeout.
func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// events makes n events of type typ whose data records their index.
func events(typ string, n int) []eventstore.EventData {
	out := make([]eventstore.EventData, n)
	for i := range out {
		out[i] = eventstore.EventData{
			Type:     typ,
			Data:     json.RawMessage(fmt.Sprintf(`{"n": %d, "note": "event %d"}`, i, i)),
			Metadata: map[string]string{"index": fmt.Sprint(i)},
		}
	}
	return out
}

func mustAppend(t *testing.T, s eventstore.Store, stream string, expected eventstore.ExpectedVersion, evs []eventstore.EventData) []eventstore.RecordedEvent {
	t.Helper()
	rec, err := s.Append(ctxFor(t), stream, expected, evs)
	if err != nil {
		t.Fatalf("append %d events to %s expecting %s: %v", len(evs), stream, expected, err)
	}
	return rec
}

// readStream reads a whole stream through the paging helper.
func readStream(t *testing.T, s eventstore.Store, stream string) []eventstore.RecordedEvent {
	t.Helper()
	var out []eventstore.RecordedEvent
	for e, err := range eventstore.StreamEvents(ctxFor(t), s, stream, 1, 7) {
		if err != nil {
			t.Fatalf("read stream %s: %v", stream, err)
		}
		out = append(out, e)
	}
	return out
}

// readAll reads the whole global order in pages of 13, waiting until it holds at
// least want events: a store may hold back the global order while other transactions
// run (PostgreSQL's visibility watermark covers every transaction in the cluster, and
// other tests' transactions run beside this one).
func readAll(t *testing.T, s eventstore.Store, want int) []eventstore.RecordedEvent {
	t.Helper()
	var out []eventstore.RecordedEvent
	waitFor(t, 15*time.Second, fmt.Sprintf("$all to hold %d events", want), func() bool {
		out = nil
		next := int64(1)
		for {
			page, err := s.ReadAll(ctxFor(t), next, 13)
			if err != nil {
				t.Fatalf("read $all from %d: %v", next, err)
			}
			out = append(out, page...)
			if len(page) < 13 {
				return len(out) >= want
			}
			next = page[len(page)-1].GlobalPosition + 1
		}
	})
	return out
}

// waitHead waits until the store's head position is want (see readAll for why it
// may lag).
func waitHead(t *testing.T, s eventstore.Store, want int64) {
	t.Helper()
	var head int64
	waitFor(t, 15*time.Second, fmt.Sprintf("head position %d", want), func() bool {
		var err error
		head, err = s.HeadPosition(ctxFor(t))
		if err != nil {
			t.Fatalf("head position: %v", err)
		}
		return head >= want
	})
	if head != want {
		t.Fatalf("head position %d, want %d", head, want)
	}
}

func streamVersion(t *testing.T, s eventstore.Store, stream string) int64 {
	t.Helper()
	v, err := s.StreamVersion(ctxFor(t), stream)
	if err != nil {
		t.Fatalf("stream version of %s: %v", stream, err)
	}
	return v
}

// sameJSON compares two JSON documents by meaning: stores may reformat them (jsonb
// drops whitespace and orders keys).
func sameJSON(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("not JSON: %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("not JSON: %s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

// waitFor polls cond until it holds, failing t after total.
func waitFor(t *testing.T, total time.Duration, what string, cond func() bool) {
	t.Helper()
	err := testwait.Until(total, func() error {
		if !cond() {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("timed out after %s waiting for %s", total, what)
	}
}
