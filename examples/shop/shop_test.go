package shop_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"example.com/shop"

	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/memstore"
	"github.com/ringleader-go/ringleader/eventstore/transform"
	"github.com/ringleader-go/ringleader/eventstore/upcast"
	"github.com/ringleader-go/ringleader/handlers/process"
	"github.com/ringleader-go/ringleader/ringtest"
)

func TestInventory(t *testing.T) {
	r := shop.NewRouter()
	ringtest.Given(t, r, shop.StockAdded{SKU: "S1", Quantity: 5}).
		When(shop.ReserveStock{SKU: "S1", OrderID: "o1", Quantity: 2}).
		Then(shop.StockReserved{SKU: "S1", OrderID: "o1", Quantity: 2})
	ringtest.Given(t, r, shop.StockAdded{SKU: "S1", Quantity: 5}, shop.StockReserved{SKU: "S1", OrderID: "o1", Quantity: 4}).
		When(shop.ReserveStock{SKU: "S1", OrderID: "o2", Quantity: 2}).
		ThenRejected(shop.ErrOutOfStock)
	ringtest.Given(t, r, shop.StockAdded{SKU: "S1", Quantity: 5}, shop.StockReserved{SKU: "S1", OrderID: "o1", Quantity: 4}).
		When(shop.ReserveStock{SKU: "S1", OrderID: "o1", Quantity: 4}).
		Then() // reserved before: nothing more
	ringtest.Given(t, r, shop.StockAdded{SKU: "S1", Quantity: 5}, shop.StockReserved{SKU: "S1", OrderID: "o1", Quantity: 4}).
		When(shop.ReleaseStock{SKU: "S1", OrderID: "o1"}).
		Then(shop.StockReleased{SKU: "S1", OrderID: "o1", Quantity: 4})
	ringtest.Given(t, r).When(shop.ReserveStock{SKU: "S1", OrderID: "o1", Quantity: 0}).ThenInvalid()
}

func TestOrder(t *testing.T) {
	r := shop.NewRouter()
	lines := []shop.Line{{SKU: "S1", Quantity: 1}, {SKU: "S2", Quantity: 2}}
	ringtest.Given(t, r).When(shop.PlaceOrder{OrderID: "o1", Lines: lines}).
		Then(shop.OrderPlaced{OrderID: "o1", Lines: lines})
	ringtest.Given(t, r).When(shop.PlaceOrder{OrderID: "o1"}).ThenInvalid()
	ringtest.Given(t, r).When(shop.PlaceOrder{OrderID: "o1", Lines: []shop.Line{{SKU: "S1", Quantity: -1}}}).ThenInvalid()
	ringtest.Given(t, r, shop.OrderPlaced{OrderID: "o1", Lines: lines}).
		When(shop.ConfirmOrder{OrderID: "o1"}).Then(shop.OrderConfirmed{OrderID: "o1"})
	ringtest.Given(t, r, shop.OrderPlaced{OrderID: "o1", Lines: lines}, shop.OrderExpired{OrderID: "o1"}).
		When(shop.ConfirmOrder{OrderID: "o1"}).ThenRejected(shop.ErrOrderNotPending)
	ringtest.Given(t, r, shop.OrderPlaced{OrderID: "o1", Lines: lines}).
		When(shop.PlaceOrder{OrderID: "o1", Lines: lines}).ThenRejected(shop.ErrOrderExists)
}

// TestFulfilmentSteps drives the process manager's pure functions through the
// paths a cluster test cannot force: an expiry with reservations held, and a
// reservation answered after the order failed.
func TestFulfilmentSteps(t *testing.T) {
	cfg := shop.Fulfilment(time.Minute)
	placedAt := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	placed := process.Event{Value: shop.OrderPlaced{OrderID: "o1", Lines: []shop.Line{{SKU: "S1", Quantity: 1}, {SKU: "S2", Quantity: 1}}}}
	placed.CreatedAt = placedAt
	cmds, err := cfg.Handle(shop.FulfilmentState{}, placed)
	if err != nil || len(cmds) != 3 || cmds[0].Schedule == "" || !cmds[0].DueAt.Equal(placedAt.Add(time.Minute)) {
		t.Fatalf("OrderPlaced: %+v, %v; want the expiry schedule then two reservations", cmds, err)
	}
	s := cfg.Apply(shop.FulfilmentState{}, placed)
	reserved := func(sku string) process.Sent {
		return process.Sent{Tag: "reserve", Value: shop.ReserveStock{SKU: sku, OrderID: "o1", Quantity: 1}}
	}
	s, cmds, _ = cfg.Outcome(s, reserved("S1"), process.Outcome{})
	if len(cmds) != 0 || len(s.Reserved) != 1 {
		t.Fatalf("first reservation: %+v, %+v", s, cmds)
	}
	// The order expires now: the held reservation is released and the process ends.
	expired := process.Event{Value: shop.OrderExpired{OrderID: "o1"}}
	if in := cfg.Interested(expired); in.Kind != process.KindStop {
		t.Errorf("OrderExpired means %v, want stop", in.Kind)
	}
	cmds, _ = cfg.Handle(s, expired)
	if len(cmds) != 1 || cmds[0].Value != (shop.ReleaseStock{SKU: "S1", OrderID: "o1"}) {
		t.Fatalf("OrderExpired: %+v, want S1 released", cmds)
	}
	s = cfg.Apply(s, expired)
	// S2's reservation, answered after the expiry, is given straight back.
	_, cmds, _ = cfg.Outcome(s, reserved("S2"), process.Outcome{})
	if len(cmds) != 1 || cmds[0].Value != (shop.ReleaseStock{SKU: "S2", OrderID: "o1"}) {
		t.Fatalf("a late reservation: %+v, want it released", cmds)
	}
}

// TestUpcastOrderPlacedV1: an OrderPlaced stored at version 1 (one SKU) reads as
// version 2 (lines), both for the order aggregate and for readers of the store.
func TestUpcastOrderPlacedV1(t *testing.T) {
	ctx := context.Background()
	raw := memstore.New()
	defer raw.Close()
	v1 := eventstore.EventData{Type: "OrderPlaced", Data: json.RawMessage(`{"order_id":"o1","sku":"S1","quantity":3}`),
		Metadata: map[string]string{upcast.MetaVersion: "1"}}
	if _, err := raw.Append(ctx, "order-o1", eventstore.NoStream, []eventstore.EventData{v1}); err != nil {
		t.Fatal(err)
	}
	store := transform.Wrap(raw, shop.Upcasts())
	events, err := store.ReadStream(ctx, "order-o1", 1, 10)
	if err != nil || len(events) != 1 {
		t.Fatalf("read: %v, %v", events, err)
	}
	router := shop.NewRouter()
	got, err := router.DecodeEvent(events[0])
	want := shop.OrderPlaced{OrderID: "o1", Lines: []shop.Line{{SKU: "S1", Quantity: 3}}}
	if err != nil || got.(shop.OrderPlaced).Lines[0] != want.Lines[0] {
		t.Fatalf("decoded %#v, %v; want %#v", got, err, want)
	}
	d, err := aggregate.New(aggregate.Config{Store: store, Router: router})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	res, err := d.Dispatch(ctx, shop.ConfirmOrder{OrderID: "o1"}, aggregate.ReturnState())
	if err != nil {
		t.Fatal(err)
	}
	if state := res.State.(*shop.Order); len(state.Lines) != 1 || state.Lines[0] != want.Lines[0] {
		t.Fatalf("the order rebuilt from a v1 event has lines %+v", state.Lines)
	}
}
