package shop

import (
	"encoding/json"
	"time"

	"github.com/ringleader-go/ringleader"
	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/config"
	"github.com/ringleader-go/ringleader/eventstore/upcast"
	"github.com/ringleader-go/ringleader/handlers"
)

// Stream prefixes of the shop's aggregate types.
const (
	OrderStreamPrefix = "order-"
	StockStreamPrefix = "stock-"
)

// ReservationTimeout is the shop's own setting (--reservation-timeout,
// RL_RESERVATION_TIMEOUT, file key reservation_timeout): how long an order may stay
// pending before it expires.
const ReservationTimeout = "reservation-timeout"

// NewRouter returns the shop's router: order and inventory commands.
func NewRouter() *aggregate.Router {
	order := aggregate.NewType[Order]("order", aggregate.TypeConfig{StreamPrefix: OrderStreamPrefix},
		OrderPlaced{}, OrderConfirmed{}, OrderCancelled{}, OrderExpired{})
	inventory := aggregate.NewType[Inventory]("inventory", aggregate.TypeConfig{StreamPrefix: StockStreamPrefix},
		StockAdded{}, StockReserved{}, StockReleased{})
	r := aggregate.NewRouter()
	aggregate.Route(r, order, func(c PlaceOrder) string { return c.OrderID })
	aggregate.Route(r, order, func(c ConfirmOrder) string { return c.OrderID })
	aggregate.Route(r, order, func(c CancelOrder) string { return c.OrderID })
	aggregate.Route(r, order, func(c ExpireOrder) string { return c.OrderID })
	aggregate.Route(r, inventory, func(c AddStock) string { return c.SKU })
	aggregate.Route(r, inventory, func(c ReserveStock) string { return c.SKU })
	aggregate.Route(r, inventory, func(c ReleaseStock) string { return c.SKU })
	return r
}

// Upcasts returns the event versions: OrderPlaced is at version 2. Version 1 held a
// single SKU and quantity; the upcaster turns it into one line.
func Upcasts() *upcast.Registry {
	r := upcast.New()
	r.Current("OrderPlaced", 2)
	r.Add("OrderPlaced", 1, func(data json.RawMessage) (json.RawMessage, error) {
		var v1 struct {
			OrderID  string `json:"order_id"`
			SKU      string `json:"sku"`
			Quantity int    `json:"quantity"`
		}
		if err := json.Unmarshal(data, &v1); err != nil {
			return nil, err
		}
		return json.Marshal(OrderPlaced{OrderID: v1.OrderID, Lines: []Line{{SKU: v1.SKU, Quantity: v1.Quantity}}})
	})
	return r
}

// App returns the shop as a Ringleader application.
func App() ringleader.App {
	return ringleader.App{
		Name:     "shop",
		Router:   NewRouter(),
		Upcasts:  Upcasts(),
		Settings: []config.Setting{config.Duration(ReservationTimeout, 30*time.Second, "how long an order may stay pending before it expires")},
		Handlers: func(h ringleader.Host) ([]handlers.Registrant, error) {
			fulfilment, err := ringleader.Process(h, Fulfilment(h.Settings.Duration(ReservationTimeout)),
				handlers.Spec{Partitions: 4})
			return []handlers.Registrant{Projection(), fulfilment}, err
		},
	}
}
