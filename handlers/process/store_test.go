package process_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
	"github.com/ringleader-go/ringleader/handlers/process"
)

// stores are the StateStores every store test runs against.
func stores(t *testing.T) map[string]func(t *testing.T) process.StateStore {
	return map[string]func(t *testing.T) process.StateStore{
		"mem": func(t *testing.T) process.StateStore { return process.NewMemStore() },
		"pg": func(t *testing.T) process.StateStore {
			if testing.Short() {
				t.Skip("PostgreSQL skipped in -short mode")
			}
			es := pgtest.NewStore(t)
			ctx := context.Background()
			s, err := process.OpenPGStore(ctx, es.Pool(), es.Schema())
			if err != nil {
				t.Fatal(err)
			}
			// Opening again is harmless.
			if _, err := process.OpenPGStore(ctx, es.Pool(), ""); err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
}

func TestStateStores(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t)
			if _, ok, err := s.Load(ctx, "m", "p"); ok || err != nil {
				t.Fatalf("Load of nothing = %v, %v", ok, err)
			}
			at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
			r := process.Record{
				Manager: "m", ProcessID: "p", State: json.RawMessage(`{"a":1}`), Seq: 2, LastPosition: 77,
				Status: process.Running, UpdatedAt: at,
				Pending: []process.Sent{{Type: "T", Tag: "x", Body: json.RawMessage(`{"k":"v"}`),
					Options: process.DispatchOptions{CommandID: "m:p:e:1", CorrelationID: "p", CausationID: "e"}}},
			}
			saved, err := s.Save(ctx, r)
			if err != nil || saved.Version != 1 {
				t.Fatalf("Save = %+v, %v", saved, err)
			}
			got, ok, err := s.Load(ctx, "m", "p")
			if err != nil || !ok {
				t.Fatalf("Load = %v, %v", ok, err)
			}
			var st map[string]int
			if json.Unmarshal(got.State, &st) != nil || st["a"] != 1 || got.Seq != 2 || got.LastPosition != 77 ||
				got.Status != process.Running || got.Version != 1 || !got.UpdatedAt.Equal(at) || len(got.Pending) != 1 ||
				got.Pending[0].Options.CommandID != "m:p:e:1" || got.Pending[0].Tag != "x" || string(got.Pending[0].Body) != `{"k": "v"}` && string(got.Pending[0].Body) != `{"k":"v"}` {
				t.Fatalf("Load = %+v", got)
			}
			// A second insert of the same process conflicts; so does a stale update.
			if _, err := s.Save(ctx, r); !errors.Is(err, process.ErrConflict) {
				t.Fatalf("second insert: %v", err)
			}
			got.Status, got.Pending = process.Done, nil
			next, err := s.Save(ctx, got)
			if err != nil || next.Version != 2 {
				t.Fatalf("update = %+v, %v", next, err)
			}
			if _, err := s.Save(ctx, got); !errors.Is(err, process.ErrConflict) {
				t.Fatalf("stale update: %v", err)
			}
			final, _, _ := s.Load(ctx, "m", "p")
			if final.Status != process.Done || len(final.Pending) != 0 || final.Version != 2 {
				t.Fatalf("final = %+v", final)
			}
			// Records of other managers and processes are separate.
			if _, err := s.Save(ctx, process.Record{Manager: "m2", ProcessID: "p", Status: process.Running}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// The order process end to end on each store, through a refusal.
func TestManagerOnStores(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t)
			d := newFake()
			d.refuse = func(typ string) bool { return typ == "Charge" }
			m := newManager(t, s, d)
			e := event("OrderPlaced", "o1", 10)
			for range 2 {
				if err := m.Handle(ctx, e); err != nil {
					t.Fatal(err)
				}
			}
			if err := m.Handle(ctx, event("OrderClosed", "o1", 11)); err != nil {
				t.Fatal(err)
			}
			r, st := load(t, s, "o1")
			if r.Status != process.Done || !st.Released || len(d.calls) != 4 {
				t.Fatalf("record %+v state %+v calls %v", r, st, d.callTypes())
			}
		})
	}
}
