package shop

import (
	"fmt"

	"github.com/ringleader-go/ringleader/aggregate"
)

// Line is one SKU of an order and how many of it.
type Line struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// PlaceOrder places an order of one or more lines.
type PlaceOrder struct {
	OrderID string `json:"order_id"`
	Lines   []Line `json:"lines"`
}

// ConfirmOrder confirms a pending order (the fulfilment process sends it once every
// line is reserved).
type ConfirmOrder struct {
	OrderID string `json:"order_id"`
}

// CancelOrder cancels a pending order.
type CancelOrder struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason"`
}

// ExpireOrder ends an order still pending when its reservation time is up (the
// fulfilment process schedules it).
type ExpireOrder struct {
	OrderID string `json:"order_id"`
}

// Validate requires at least one line, each with a SKU and a positive quantity.
func (c PlaceOrder) Validate() error {
	if len(c.Lines) == 0 {
		return aggregate.InvalidField("lines", "an order needs at least one line")
	}
	for i, l := range c.Lines {
		if l.SKU == "" {
			return aggregate.InvalidField(fmt.Sprintf("lines.%d.sku", i), "required")
		}
		if l.Quantity <= 0 {
			return aggregate.InvalidField(fmt.Sprintf("lines.%d.quantity", i), "must be positive, got %d", l.Quantity)
		}
	}
	return nil
}

// OrderPlaced records a placed order (version 2: lines; see Upcasts).
type OrderPlaced struct {
	OrderID string `json:"order_id"`
	Lines   []Line `json:"lines"`
}

// OrderConfirmed records a confirmed order.
type OrderConfirmed struct {
	OrderID string `json:"order_id"`
}

// OrderCancelled records a cancelled order and why.
type OrderCancelled struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason"`
}

// OrderExpired records an order that was not confirmed in time.
type OrderExpired struct {
	OrderID string `json:"order_id"`
}

// Order statuses.
const (
	StatusPending   = "pending"
	StatusConfirmed = "confirmed"
	StatusCancelled = "cancelled"
	StatusExpired   = "expired"
)

// Rejections of order commands.
var (
	ErrOrderExists     = aggregate.Reject("order_exists", "order already placed")
	ErrOrderNotPending = aggregate.Reject("order_not_pending", "order is not pending")
)

// Order is one customer order.
type Order struct {
	Status string `json:"status"`
	Lines  []Line `json:"lines"`
}

// Execute decides a command against the order.
func (o *Order) Execute(command any) ([]any, error) {
	if _, placing := command.(PlaceOrder); placing {
		if o.Status != "" {
			return nil, ErrOrderExists
		}
		c := command.(PlaceOrder)
		return []any{OrderPlaced(c)}, nil
	}
	if o.Status != StatusPending {
		return nil, fmt.Errorf("%w (it is %q)", ErrOrderNotPending, o.Status)
	}
	switch c := command.(type) {
	case ConfirmOrder:
		return []any{OrderConfirmed(c)}, nil
	case CancelOrder:
		return []any{OrderCancelled(c)}, nil
	case ExpireOrder:
		return []any{OrderExpired(c)}, nil
	}
	return nil, fmt.Errorf("order: unexpected command %T", command)
}

// Apply folds an event into the order.
func (o *Order) Apply(event any) {
	switch e := event.(type) {
	case OrderPlaced:
		o.Status, o.Lines = StatusPending, e.Lines
	case OrderConfirmed:
		o.Status = StatusConfirmed
	case OrderCancelled:
		o.Status = StatusCancelled
	case OrderExpired:
		o.Status = StatusExpired
	}
}
