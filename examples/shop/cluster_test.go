package shop_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"example.com/shop"

	"github.com/ringleader-go/ringleader/eventstore/pgstore"
	"github.com/ringleader-go/ringleader/ringtest"
	"github.com/ringleader-go/ringleader/transport"
)

// querier is what the checks read PostgreSQL through.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// sender sends one command and returns the node that ran it.
type sender func(t *testing.T, commandType string, command any) string

// placeOrders drives the shop through its paths with send and checks the read
// model in db: an order that is confirmed, and one that is cancelled out of stock
// after one of its lines was reserved (that reservation must come back). It returns
// the nodes that ran the commands.
func placeOrders(t *testing.T, send sender, db querier) map[string]bool {
	t.Helper()
	nodes := map[string]bool{}
	for sku, n := range map[string]int{"S1": 5, "S2": 1} {
		nodes[send(t, "AddStock", shop.AddStock{SKU: sku, Quantity: n})] = true
	}
	nodes[send(t, "PlaceOrder", shop.PlaceOrder{OrderID: "o1", Lines: []shop.Line{{SKU: "S1", Quantity: 2}}})] = true
	nodes[send(t, "PlaceOrder", shop.PlaceOrder{OrderID: "o2", Lines: []shop.Line{{SKU: "S1", Quantity: 1}, {SKU: "S2", Quantity: 3}}})] = true

	want := map[string]string{"o1": shop.StatusConfirmed, "o2": shop.StatusCancelled}
	waitFor(t, 30*time.Second, func() error {
		for id, status := range want {
			var got string
			err := db.QueryRow(context.Background(), `SELECT status FROM shop_orders WHERE order_id = $1`, id).Scan(&got)
			if err != nil || got != status {
				return fmt.Errorf("order %s is %q (%v), want %q", id, got, err, status)
			}
		}
		stock, err := shop.LoadStock(context.Background(), db)
		if err != nil {
			return err
		}
		// o1 holds 2 of S1; o2's reservation of S1 was released when S2 ran out.
		if stock["S1"] != (shop.StockRow{OnHand: 5, Reserved: 2}) || stock["S2"] != (shop.StockRow{OnHand: 1}) {
			return fmt.Errorf("shop_stock is %+v", stock)
		}
		return nil
	})
	var reason string
	if err := db.QueryRow(context.Background(), `SELECT reason FROM shop_orders WHERE order_id = 'o2'`).Scan(&reason); err != nil || reason != "out of stock: S2" {
		t.Errorf("o2 was cancelled for %q (%v), want out of stock: S2", reason, err)
	}
	return nodes
}

func waitFor(t *testing.T, limit time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestShopOnAnInProcessCluster runs the shop on three nodes in this process.
func TestShopOnAnInProcessCluster(t *testing.T) {
	c := ringtest.StartCluster(t, shop.App(), ringtest.Options{Nodes: 3, Postgres: true, Args: []string{"--reservation-timeout=1m"}})
	send := func(t *testing.T, _ string, command any) string {
		t.Helper()
		reply, err := c.Send(context.Background(), command, transport.WithConsistency("strong"))
		if err != nil || !reply.OK {
			t.Fatalf("%T: %+v, %v", command, reply, err)
		}
		return reply.Node
	}
	nodes := placeOrders(t, send, c.Store().(*pgstore.Store).Pool())
	if len(nodes) < 2 {
		t.Errorf("every command ran on %v", nodes)
	}
}
