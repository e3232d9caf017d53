package shop

import (
	"fmt"

	"github.com/ringleader-go/ringleader/aggregate"
)

// AddStock puts Quantity more of SKU on hand.
type AddStock struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// ReserveStock holds Quantity of SKU for an order. Reserving again for the same
// order changes nothing.
type ReserveStock struct {
	SKU      string `json:"sku"`
	OrderID  string `json:"order_id"`
	Quantity int    `json:"quantity"`
}

// ReleaseStock gives back what an order reserved of SKU (nothing, if it reserved
// nothing).
type ReleaseStock struct {
	SKU     string `json:"sku"`
	OrderID string `json:"order_id"`
}

// Validate refuses a non-positive quantity.
func (c AddStock) Validate() error { return positive(c.Quantity) }

// Validate refuses a non-positive quantity or a missing order.
func (c ReserveStock) Validate() error {
	if c.OrderID == "" {
		return aggregate.InvalidField("order_id", "required")
	}
	return positive(c.Quantity)
}

func positive(n int) error {
	if n <= 0 {
		return aggregate.InvalidField("quantity", "must be positive, got %d", n)
	}
	return nil
}

// StockAdded records stock put on hand.
type StockAdded struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// StockReserved records stock held for an order.
type StockReserved struct {
	SKU      string `json:"sku"`
	OrderID  string `json:"order_id"`
	Quantity int    `json:"quantity"`
}

// StockReleased records an order's reservation given back.
type StockReleased struct {
	SKU      string `json:"sku"`
	OrderID  string `json:"order_id"`
	Quantity int    `json:"quantity"`
}

// ErrOutOfStock rejects a reservation of more than is available.
var ErrOutOfStock = aggregate.Reject("out_of_stock", "out of stock")

// Inventory is the stock of one SKU.
type Inventory struct {
	OnHand   int            `json:"on_hand"`
	Reserved map[string]int `json:"reserved"` // by order
}

// available is what can still be reserved.
func (s *Inventory) available() int {
	n := s.OnHand
	for _, q := range s.Reserved {
		n -= q
	}
	return n
}

// Execute decides a command against the stock.
func (s *Inventory) Execute(command any) ([]any, error) {
	switch c := command.(type) {
	case AddStock:
		return []any{StockAdded(c)}, nil
	case ReserveStock:
		if _, done := s.Reserved[c.OrderID]; done {
			return nil, nil
		}
		if c.Quantity > s.available() {
			return nil, fmt.Errorf("%w: %s has %d available, %d asked", ErrOutOfStock, c.SKU, s.available(), c.Quantity)
		}
		return []any{StockReserved(c)}, nil
	case ReleaseStock:
		q, held := s.Reserved[c.OrderID]
		if !held {
			return nil, nil
		}
		return []any{StockReleased{SKU: c.SKU, OrderID: c.OrderID, Quantity: q}}, nil
	}
	return nil, fmt.Errorf("inventory: unexpected command %T", command)
}

// Apply folds an event into the stock.
func (s *Inventory) Apply(event any) {
	switch e := event.(type) {
	case StockAdded:
		s.OnHand += e.Quantity
	case StockReserved:
		if s.Reserved == nil {
			s.Reserved = map[string]int{}
		}
		s.Reserved[e.OrderID] = e.Quantity
	case StockReleased:
		delete(s.Reserved, e.OrderID)
	}
}
