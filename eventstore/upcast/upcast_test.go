package upcast_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/memstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
	"github.com/ringleader-go/ringleader/eventstore/transform"
	"github.com/ringleader-go/ringleader/eventstore/upcast"
)

// The test-only "customer" domain. Its CustomerRegistered event went through three
// shapes:
//
//	v1 {"id":"c1","full_name":"Ada Lovelace"}
//	v2 {"id":"c1","first_name":"Ada","last_name":"Lovelace"}
//	v3 {"id":"c1","name":{"first":"Ada","last":"Lovelace"},"tier":"standard"}  (current)

type personName struct {
	First string `json:"first"`
	Last  string `json:"last"`
}

// CustomerRegistered is the current (v3) shape.
type CustomerRegistered struct {
	ID   string     `json:"id"`
	Name personName `json:"name"`
	Tier string     `json:"tier"`
}

// CustomerRenamed has never changed shape.
type CustomerRenamed struct {
	ID   string     `json:"id"`
	Name personName `json:"name"`
}

type RegisterCustomer struct {
	ID    string
	First string
	Last  string
}

type RenameCustomer struct {
	ID   string
	Last string
}

type Customer struct {
	ID   string     `json:"id"`
	Name personName `json:"name"`
	Tier string     `json:"tier"`
}

func (c *Customer) Execute(cmd any) ([]any, error) {
	switch x := cmd.(type) {
	case RegisterCustomer:
		if c.ID != "" {
			return nil, errors.New("already registered")
		}
		return []any{CustomerRegistered{ID: x.ID, Name: personName{x.First, x.Last}, Tier: "standard"}}, nil
	case RenameCustomer:
		if c.ID == "" {
			return nil, errors.New("not registered")
		}
		return []any{CustomerRenamed{ID: c.ID, Name: personName{c.Name.First, x.Last}}}, nil
	}
	return nil, fmt.Errorf("unknown command %T", cmd)
}

func (c *Customer) Apply(e any) {
	switch x := e.(type) {
	case CustomerRegistered:
		c.ID, c.Name, c.Tier = x.ID, x.Name, x.Tier
	case CustomerRenamed:
		c.Name = x.Name
	}
}

// customerUpcasts registers CustomerRegistered v1 → v2 → v3.
func customerUpcasts() *upcast.Registry {
	return upcast.New().
		Current("CustomerRegistered", 3).
		Add("CustomerRegistered", 1, func(d json.RawMessage) (json.RawMessage, error) {
			var v1 struct {
				ID       string `json:"id"`
				FullName string `json:"full_name"`
			}
			if err := json.Unmarshal(d, &v1); err != nil {
				return nil, err
			}
			first, last, _ := strings.Cut(v1.FullName, " ")
			return json.Marshal(map[string]string{"id": v1.ID, "first_name": first, "last_name": last})
		}).
		Add("CustomerRegistered", 2, func(d json.RawMessage) (json.RawMessage, error) {
			var v2 struct {
				ID        string `json:"id"`
				FirstName string `json:"first_name"`
				LastName  string `json:"last_name"`
			}
			if err := json.Unmarshal(d, &v2); err != nil {
				return nil, err
			}
			return json.Marshal(CustomerRegistered{ID: v2.ID, Name: personName{v2.FirstName, v2.LastName}, Tier: "standard"})
		})
}

func customerRouter() *aggregate.Router {
	typ := aggregate.NewType[Customer]("customer", aggregate.TypeConfig{StreamPrefix: "customer-"}, CustomerRegistered{}, CustomerRenamed{})
	r := aggregate.NewRouter()
	aggregate.Route(r, typ, func(c RegisterCustomer) string { return c.ID })
	aggregate.Route(r, typ, func(c RenameCustomer) string { return c.ID })
	return r
}

// Events written in the v1 and v2 shapes by "old code" straight into PostgreSQL
// rehydrate a real aggregate through the two upcasters; the stored rows stay as they
// were written, and new events are stamped with the current version.
func TestOldEventsRehydrateAggregateThroughTwoUpcasters(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL skipped in -short mode")
	}
	ctx := context.Background()
	raw := pgtest.NewStore(t)
	// Old code: v1 had no version stamp at all; v2 code stamped "2".
	if _, err := raw.Append(ctx, "customer-c1", eventstore.NoStream, []eventstore.EventData{
		{Type: "CustomerRegistered", Data: json.RawMessage(`{"id":"c1","full_name":"Ada Lovelace"}`)},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Append(ctx, "customer-c2", eventstore.NoStream, []eventstore.EventData{
		{Type: "CustomerRegistered", Data: json.RawMessage(`{"id":"c2","first_name":"Grace","last_name":"Hopper"}`),
			Metadata: map[string]string{upcast.MetaVersion: "2"}},
	}); err != nil {
		t.Fatal(err)
	}
	reg := customerUpcasts()
	if err := reg.Validate(); err != nil {
		t.Fatal(err)
	}
	store := transform.Wrap(raw, reg)
	d, err := aggregate.New(aggregate.Config{Store: store, Router: customerRouter()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })

	for id, want := range map[string]Customer{
		"c1": {ID: "c1", Name: personName{"Ada", "Byron"}, Tier: "standard"},
		"c2": {ID: "c2", Name: personName{"Grace", "Byron"}, Tier: "standard"},
	} {
		res, err := d.Dispatch(ctx, RenameCustomer{ID: id, Last: "Byron"}, aggregate.ReturnState())
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if got := *res.State.(*Customer); got != want {
			t.Errorf("%s: state %+v, want %+v", id, got, want)
		}
		if res.AggregateVersion != 2 {
			t.Errorf("%s: version %d, want 2", id, res.AggregateVersion)
		}
	}

	// The store is untouched: the v1 row still has its v1 body and no stamp.
	var body string
	var stamp *string
	if err := raw.Pool().QueryRow(ctx, `SELECT data::text, metadata->>'event_version' FROM events WHERE stream_id = 'customer-c1' AND stream_version = 1`).Scan(&body, &stamp); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, "full_name") || stamp != nil {
		t.Errorf("stored v1 event changed: %s, stamp %v", body, stamp)
	}
	// Reads through the wrapper give the current shape and version.
	evs, err := store.ReadStream(ctx, "customer-c1", 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	var cur CustomerRegistered
	if err := json.Unmarshal(evs[0].Data, &cur); err != nil || cur.Name.Last != "Lovelace" || evs[0].Metadata[upcast.MetaVersion] != "3" {
		t.Errorf("read %s %v", evs[0].Data, evs[0].Metadata)
	}
	// A fresh registration is written in the current shape, stamped 3, and needs no
	// upcasting.
	if _, err := d.Dispatch(ctx, RegisterCustomer{ID: "c3", First: "Alan", Last: "Turing"}); err != nil {
		t.Fatal(err)
	}
	if err := raw.Pool().QueryRow(ctx, `SELECT data::text, metadata->>'event_version' FROM events WHERE stream_id = 'customer-c3'`).Scan(&body, &stamp); err != nil {
		t.Fatal(err)
	}
	if stamp == nil || *stamp != "3" || !strings.Contains(body, `"first": "Alan"`) {
		t.Errorf("new event stored as %s, stamp %v", body, stamp)
	}
}

func recorded(typ, data string, md map[string]string) eventstore.RecordedEvent {
	if md == nil {
		md = map[string]string{}
	}
	return eventstore.RecordedEvent{StreamID: "s", StreamVersion: 1, Type: typ, Data: json.RawMessage(data), Metadata: md}
}

func TestDecodeErrors(t *testing.T) {
	ctx := context.Background()
	reg := customerUpcasts()
	for name, tc := range map[string]struct {
		e    eventstore.RecordedEvent
		want error
	}{
		"too new":        {recorded("CustomerRegistered", `{}`, map[string]string{upcast.MetaVersion: "4"}), upcast.ErrTooNew},
		"unknown type":   {recorded("Other", `{}`, map[string]string{upcast.MetaVersion: "2"}), upcast.ErrTooNew},
		"bad version":    {recorded("CustomerRegistered", `{}`, map[string]string{upcast.MetaVersion: "two"}), upcast.ErrBadVersion},
		"zero version":   {recorded("CustomerRegistered", `{}`, map[string]string{upcast.MetaVersion: "0"}), upcast.ErrBadVersion},
		"malformed JSON": {recorded("CustomerRegistered", `{"id":`, nil), nil},
	} {
		err := reg.DecodeEvent(ctx, &tc.e)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: err %v, want %v", name, err, tc.want)
		}
	}
	gap := upcast.New().Current("E", 3).Add("E", 2, func(d json.RawMessage) (json.RawMessage, error) { return d, nil })
	e := recorded("E", `{}`, nil)
	err := gap.DecodeEvent(ctx, &e)
	var ge *upcast.GapError
	if !errors.As(err, &ge) || ge.From != 1 || ge.Current != 3 {
		t.Errorf("gap: %v", err)
	}
	if err := gap.Validate(); !errors.Is(err, upcast.ErrGap) {
		t.Errorf("Validate: %v", err)
	}
	panicky := upcast.New().Current("E", 2).Add("E", 1, func(json.RawMessage) (json.RawMessage, error) { panic("boom") })
	e = recorded("E", `{}`, nil)
	if err := panicky.DecodeEvent(ctx, &e); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("panic: %v", err)
	}
	invalid := upcast.New().Current("E", 2).Add("E", 1, func(json.RawMessage) (json.RawMessage, error) { return json.RawMessage(`{`), nil })
	e = recorded("E", `{}`, nil)
	if err := invalid.DecodeEvent(ctx, &e); err == nil {
		t.Error("invalid JSON from an upcaster: no error")
	}
	bad := upcast.New().Current("E", 0).Add("E", 0, nil).Add("F", 1, nil)
	if err := bad.Validate(); err == nil || strings.Count(err.Error(), "\n") < 2 {
		t.Errorf("Validate: %v", err)
	}
}

// Events of types the registry does not know pass through untouched, with no copy of
// their metadata; current events too.
func TestUnregisteredAndCurrentPassThrough(t *testing.T) {
	ctx := context.Background()
	reg := customerUpcasts()
	md := map[string]string{"command_id": "x"}
	for _, e := range []eventstore.RecordedEvent{
		recorded("MoneyDeposited", `{"amount":1}`, md),
		recorded("CustomerRegistered", `{"id":"c"}`, map[string]string{upcast.MetaVersion: "3"}),
	} {
		got := e
		err := reg.DecodeEvent(ctx, &got)
		if err != nil || string(got.Data) != string(e.Data) || fmt.Sprint(got.Metadata) != fmt.Sprint(e.Metadata) {
			t.Errorf("%s: %s %v %v", e.Type, got.Data, got.Metadata, err)
		}
	}
	plain := recorded("MoneyDeposited", `{}`, md)
	if allocs := testing.AllocsPerRun(100, func() { _ = reg.DecodeEvent(ctx, &plain) }); allocs > 0 {
		t.Errorf("unregistered event: %v allocations per decode", allocs)
	}
}

// Through transform.Wrap with the in-memory store: Append returns the caller's
// events, stamps the version, and AppendMany keeps working.
func TestWrapMemstore(t *testing.T) {
	ctx := context.Background()
	mem := memstore.New()
	t.Cleanup(func() { _ = mem.Close() })
	store := transform.Wrap(mem, customerUpcasts())
	rec, err := store.Append(ctx, "customer-x", eventstore.NoStream, []eventstore.EventData{{Type: "CustomerRegistered", Data: json.RawMessage(`{"id":"x"}`)}})
	if err != nil || rec[0].Metadata[upcast.MetaVersion] != "3" {
		t.Fatal(rec, err)
	}
	b, ok := store.(eventstore.BatchAppender)
	if !ok {
		t.Fatal("wrapper lost BatchAppender")
	}
	res := b.AppendMany(ctx, []eventstore.AppendRequest{
		{StreamID: "customer-y", Expected: eventstore.NoStream, Events: []eventstore.EventData{{Type: "CustomerRegistered", Data: json.RawMessage(`{"id":"y"}`)}}},
		{StreamID: "customer-x", Expected: eventstore.NoStream, Events: []eventstore.EventData{{Type: "CustomerRenamed", Data: json.RawMessage(`{}`)}}},
	})
	if res[0].Err != nil || !errors.Is(res[1].Err, eventstore.ErrWrongVersion) {
		t.Fatal(res)
	}
}
