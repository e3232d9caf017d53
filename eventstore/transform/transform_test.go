package transform_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/memstore"
	"github.com/ringleader-go/ringleader/eventstore/transform"
)

// tag appends its name to a "trail" field on write and checks and strips it on read,
// so the test sees the order transforms run in.
type tag struct{ name string }

func (t tag) EncodeEvent(_ context.Context, _ string, e *eventstore.EventData) error {
	var m map[string]string
	if err := json.Unmarshal(e.Data, &m); err != nil {
		return err
	}
	if m["fail"] == t.name {
		return errors.New("refused by " + t.name)
	}
	m["trail"] += t.name
	e.Data, _ = json.Marshal(m)
	return nil
}

func (t tag) DecodeEvent(_ context.Context, e *eventstore.RecordedEvent) error {
	var m map[string]string
	if err := json.Unmarshal(e.Data, &m); err != nil {
		return err
	}
	trail, ok := strings.CutSuffix(m["trail"], t.name)
	if !ok {
		return errors.New(t.name + " is not last in " + m["trail"])
	}
	m["trail"] = trail
	e.Data, _ = json.Marshal(m)
	return nil
}

func (t tag) EncodeSnapshot(_ context.Context, s eventstore.Snapshot) (eventstore.Snapshot, error) {
	s.Type += t.name
	return s, nil
}

func (t tag) DecodeSnapshot(_ context.Context, s eventstore.Snapshot) (eventstore.Snapshot, error) {
	if t.name == "hide" {
		return s, eventstore.ErrNotFound
	}
	s.Type = strings.TrimSuffix(s.Type, t.name)
	return s, nil
}

func TestOrderAndRoundTrip(t *testing.T) {
	ctx := context.Background()
	mem := memstore.New()
	t.Cleanup(func() { _ = mem.Close() })
	if transform.Wrap(mem) != eventstore.Store(mem) || transform.Wrap(mem, nil) != eventstore.Store(mem) {
		t.Fatal("Wrap without transforms should return the store itself")
	}
	s := transform.Wrap(mem, tag{"a"}, tag{"b"})
	if transform.Unwrap(s) != eventstore.Store(mem) {
		t.Fatal("Unwrap")
	}
	rec, err := s.Append(ctx, "s", eventstore.NoStream, []eventstore.EventData{{Type: "E", Data: json.RawMessage(`{"x":"1"}`)}})
	if err != nil || string(rec[0].Data) != `{"x":"1"}` {
		t.Fatalf("Append returned %s, %v", rec[0].Data, err)
	}
	stored, _ := mem.ReadStream(ctx, "s", 1, 1)
	if !strings.Contains(string(stored[0].Data), `"trail":"ab"`) {
		t.Fatalf("stored %s", stored[0].Data)
	}
	for name, read := range map[string]func() ([]eventstore.RecordedEvent, error){
		"ReadStream": func() ([]eventstore.RecordedEvent, error) { return s.ReadStream(ctx, "s", 1, 10) },
		"ReadAll":    func() ([]eventstore.RecordedEvent, error) { return s.ReadAll(ctx, 0, 10) },
	} {
		evs, err := read()
		if err != nil || len(evs) != 1 || !strings.Contains(string(evs[0].Data), `"trail":""`) {
			t.Errorf("%s: %v %v", name, evs, err)
		}
	}
	if _, err := s.Append(ctx, "s", eventstore.AnyVersion, []eventstore.EventData{{Type: "E", Data: json.RawMessage(`{"fail":"b"}`)}}); err == nil || !strings.Contains(err.Error(), "refused by b") {
		t.Errorf("refused append: %v", err)
	}
	// A read that a transform cannot decode says which event.
	_, _ = mem.Append(ctx, "raw", eventstore.NoStream, []eventstore.EventData{{Type: "E", Data: json.RawMessage(`{"trail":"zz"}`)}})
	if _, err := s.ReadStream(ctx, "raw", 1, 10); err == nil || !strings.Contains(err.Error(), `"raw" v1`) {
		t.Errorf("undecodable: %v", err)
	}

	snap := eventstore.Snapshot{StreamID: "s", StreamVersion: 1, SchemaVersion: 1, Type: "T", Data: json.RawMessage(`{}`)}
	if err := s.SaveSnapshot(ctx, snap); err != nil {
		t.Fatal(err)
	}
	if got, _ := mem.LoadSnapshot(ctx, "s", 1); got.Type != "Tab" {
		t.Fatalf("stored snapshot type %q", got.Type)
	}
	if got, err := s.LoadSnapshot(ctx, "s", 1); err != nil || got.Type != "T" {
		t.Fatalf("loaded %q %v", got.Type, err)
	}
	hidden := transform.Wrap(mem, tag{"hide"})
	if _, err := hidden.LoadSnapshot(ctx, "s", 1); !errors.Is(err, eventstore.ErrNotFound) {
		t.Fatalf("hidden snapshot: %v", err)
	}
}

// noBatch is a store without AppendMany.
type noBatch struct{ eventstore.Store }

func TestBatchAppenderOnlyWhenInnerHasIt(t *testing.T) {
	mem := memstore.New()
	t.Cleanup(func() { _ = mem.Close() })
	if _, ok := transform.Wrap(mem, tag{"a"}).(eventstore.BatchAppender); !ok {
		t.Error("lost BatchAppender")
	}
	if _, ok := transform.Wrap(noBatch{mem}, tag{"a"}).(eventstore.BatchAppender); ok {
		t.Error("invented BatchAppender")
	}
}
