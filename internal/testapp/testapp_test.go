package testapp_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/errcode"
	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/memstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
	"github.com/ringleader-go/ringleader/handlers"
	"github.com/ringleader-go/ringleader/internal/testapp"
)

// TestCounterRules dispatches through the app's router on an in-memory store: each
// command records the events it should, and each refusal has its sentinel and code.
func TestCounterRules(t *testing.T) {
	app := testapp.App()
	if err := app.Validate(); err != nil {
		t.Fatal(err)
	}
	store := memstore.New()
	t.Cleanup(func() { _ = store.Close() })
	d, err := aggregate.New(aggregate.Config{Store: store, Router: app.Router})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	ctx := context.Background()
	for _, c := range []struct {
		name string
		cmd  any
		want []any // events recorded
		err  error // the refusal, with code
		code string
	}{
		{"add", testapp.Add{ID: "a", N: 2}, []any{testapp.Added{ID: "a", N: 2, Total: 2}}, nil, ""},
		{"add again", testapp.Add{ID: "a", N: 3, Note: "hi"}, []any{testapp.Added{ID: "a", N: 3, Total: 5, Note: "hi"}}, nil, ""},
		{"add zero", testapp.Add{ID: "a"}, nil, testapp.ErrNotPositive, errcode.Invalid},
		{"add negative", testapp.Add{ID: "a", N: -1}, nil, testapp.ErrNotPositive, errcode.Invalid},
		{"add without id", testapp.Add{N: 1}, nil, aggregate.ErrInvalid, errcode.Invalid},
		{"close non-zero", testapp.Close{ID: "a"}, nil, testapp.ErrNotZero, errcode.Rejected},
		{"close zero", testapp.Close{ID: "b"}, []any{testapp.Closed{ID: "b"}}, nil, ""},
		{"close twice", testapp.Close{ID: "b"}, nil, testapp.ErrClosed, errcode.Rejected},
		{"add to closed", testapp.Add{ID: "b", N: 1}, nil, testapp.ErrClosed, errcode.Rejected},
		{"forget", testapp.Forget{ID: "a"}, []any{testapp.Forgotten{ID: "a"}}, nil, ""},
		{"forget twice", testapp.Forget{ID: "a"}, nil, nil, ""},
	} {
		res, err := d.Dispatch(ctx, c.cmd)
		if c.err != nil {
			if !errors.Is(err, c.err) || aggregate.CodeOf(err) != c.code {
				t.Errorf("%s: %v (code %q), want %v (code %q)", c.name, err, aggregate.CodeOf(err), c.err, c.code)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		var got []any
		for _, e := range res.Events {
			got = append(got, e.Value)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: recorded %+v, want %+v", c.name, got, c.want)
		}
	}
}

// TestProjectionIsIdempotent: testapp_counters applies each stream version once, so
// events projected again (a replay after a crash) change nothing.
func TestProjectionIsIdempotent(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL skipped in -short mode")
	}
	db := pgtest.Connect(t)
	schema := pgtest.NewSchema(t)
	ctx := context.Background()
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	ident := pgx.Identifier{schema}.Sanitize()
	if _, err := tx.Exec(ctx, `CREATE SCHEMA `+ident+`; SET LOCAL search_path TO `+ident); err != nil {
		t.Fatal(err)
	}
	p := testapp.Projection()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := p.Setup(ctx, tx); err != nil {
		t.Fatal(err)
	}
	ev := func(stream string, version int64, v any) handlers.Event {
		return handlers.Event{RecordedEvent: eventstore.RecordedEvent{StreamID: testapp.StreamPrefix + stream, StreamVersion: version}, Value: v}
	}
	a1, a2, a3 := ev("a", 1, testapp.Added{ID: "a", N: 2, Total: 2, Note: "x"}), ev("a", 2, testapp.Added{ID: "a", N: 3, Total: 5}), ev("a", 3, testapp.Forgotten{ID: "a"})
	b1 := ev("b", 1, testapp.Closed{ID: "b"})
	for _, e := range []handlers.Event{a1, a2, a1, b1, a2, a3, a2, b1, ev("a", 4, "not a counter event")} {
		if err := p.Project(ctx, tx, e); err != nil {
			t.Fatal(err)
		}
	}
	var got string
	if err := tx.QueryRow(ctx, `SELECT string_agg(format('%s:%s:%s:%s:%s', id, total, closed, version, coalesce(note, '-')), ' ' ORDER BY id)
FROM testapp_counters`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := "a:5:f:3:- b:0:t:1:-"; got != want {
		t.Fatalf("testapp_counters %q, want %q", got, want)
	}
}
