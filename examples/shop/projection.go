package shop

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ringleader-go/ringleader/handlers"
)

// ProjectionName names the shop's projection.
const ProjectionName = "shop"

// Projection keeps two PostgreSQL tables from the events: shop_stock (per SKU: on
// hand, reserved, the stream version applied) and shop_orders (per order: status,
// reason). It is strongly consistent: a command sent with strong consistency is
// answered once these tables show its events. Each write applies only when the row
// is at the event's previous version, so a redelivered page changes nothing.
func Projection() handlers.Projection {
	return handlers.Projection{
		Spec: handlers.Spec{Name: ProjectionName, Partitions: 4, Strong: true},
		Setup: func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `
CREATE TABLE IF NOT EXISTS shop_stock (
	sku      text PRIMARY KEY,
	on_hand  int    NOT NULL,
	reserved int    NOT NULL,
	version  bigint NOT NULL);
CREATE TABLE IF NOT EXISTS shop_orders (
	order_id text PRIMARY KEY,
	status   text   NOT NULL,
	reason   text   NOT NULL DEFAULT '',
	version  bigint NOT NULL)`)
			return err
		},
		Project: project,
		Reset: func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `TRUNCATE shop_stock, shop_orders`)
			return err
		},
	}
}

// stockUpsert adds to a SKU's row, or creates it, if the row is at version-1.
const stockUpsert = `INSERT INTO shop_stock (sku, on_hand, reserved, version) VALUES ($1, $2, $3, $4)
ON CONFLICT (sku) DO UPDATE SET on_hand = shop_stock.on_hand + excluded.on_hand,
	reserved = shop_stock.reserved + excluded.reserved, version = excluded.version
WHERE shop_stock.version = excluded.version - 1`

// orderUpsert sets an order's status, or creates its row, if the row is at version-1.
const orderUpsert = `INSERT INTO shop_orders (order_id, status, reason, version) VALUES ($1, $2, $3, $4)
ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, reason = excluded.reason, version = excluded.version
WHERE shop_orders.version = excluded.version - 1`

func project(ctx context.Context, tx pgx.Tx, e handlers.Event) error {
	var err error
	switch v := e.Value.(type) {
	case StockAdded:
		_, err = tx.Exec(ctx, stockUpsert, v.SKU, v.Quantity, 0, e.StreamVersion)
	case StockReserved:
		_, err = tx.Exec(ctx, stockUpsert, v.SKU, 0, v.Quantity, e.StreamVersion)
	case StockReleased:
		_, err = tx.Exec(ctx, stockUpsert, v.SKU, 0, -v.Quantity, e.StreamVersion)
	case OrderPlaced:
		_, err = tx.Exec(ctx, orderUpsert, v.OrderID, StatusPending, "", e.StreamVersion)
	case OrderConfirmed:
		_, err = tx.Exec(ctx, orderUpsert, v.OrderID, StatusConfirmed, "", e.StreamVersion)
	case OrderCancelled:
		_, err = tx.Exec(ctx, orderUpsert, v.OrderID, StatusCancelled, v.Reason, e.StreamVersion)
	case OrderExpired:
		_, err = tx.Exec(ctx, orderUpsert, v.OrderID, StatusExpired, "", e.StreamVersion)
	}
	if err != nil {
		return fmt.Errorf("shop: project %s at %d: %w", e.Type, e.GlobalPosition, err)
	}
	return nil
}

// StockRow is one SKU in shop_stock.
type StockRow struct {
	OnHand, Reserved int
}

// LoadStock reads shop_stock, by SKU.
func LoadStock(ctx context.Context, q interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}) (map[string]StockRow, error) {
	rows, err := q.Query(ctx, `SELECT sku, on_hand, reserved FROM shop_stock`)
	if err != nil {
		return nil, fmt.Errorf("shop: read shop_stock: %w", err)
	}
	out := map[string]StockRow{}
	for rows.Next() {
		var sku string
		var r StockRow
		if err := rows.Scan(&sku, &r.OnHand, &r.Reserved); err != nil {
			return nil, err
		}
		out[sku] = r
	}
	return out, rows.Err()
}
