package shop

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ringleader-go/ringleader/handlers/process"
)

// FulfilmentName names the fulfilment process manager.
const FulfilmentName = "shop_fulfilment"

// Command tags of the fulfilment process: the Outcome function tells answers apart
// by them.
const (
	tagReserve = "reserve"
	tagRelease = "release"
	tagConfirm = "confirm"
	tagCancel  = "cancel"
)

// expirySchedule names the order's expiry within its process.
const expirySchedule = "expire"

// FulfilmentState is where one order's fulfilment stands.
type FulfilmentState struct {
	OrderID string `json:"order_id"`
	Lines   []Line `json:"lines"`
	// Reserved are the SKUs whose reservation succeeded and was not released.
	Reserved []string `json:"reserved,omitempty"`
	// Failed is set once the order cannot be confirmed (out of stock, expired, or
	// its confirmation refused): every reservation is then released.
	Failed bool `json:"failed,omitempty"`
}

// Fulfilment returns the fulfilment process manager, which gives an order
// timeout to be confirmed:
//
//	OrderPlaced    → schedule ExpireOrder at placed + timeout; ReserveStock per line
//	all reserved   → ConfirmOrder, cancel the expiry
//	one refused    → ReleaseStock for each reserved line, CancelOrder, cancel the expiry
//	OrderExpired   → ReleaseStock for each reserved line
//
// Its functions are pure: they read the events and the commands' answers as Go
// values (handlers.Event.Value, process.Sent.Value) and return commands.
func Fulfilment(timeout time.Duration) process.Config[FulfilmentState] {
	return process.Config[FulfilmentState]{
		Name: FulfilmentName,
		Interested: func(e process.Event) process.Interest {
			switch v := e.Value.(type) {
			case OrderPlaced:
				return process.Start(v.OrderID)
			case OrderExpired:
				return process.Stop(v.OrderID)
			case OrderConfirmed:
				return process.Stop(v.OrderID)
			case OrderCancelled:
				return process.Stop(v.OrderID)
			}
			return process.Interest{}
		},
		Handle: func(s FulfilmentState, e process.Event) ([]process.Command, error) {
			switch v := e.Value.(type) {
			case OrderPlaced:
				cmds := []process.Command{process.ScheduleAt(expirySchedule, e.CreatedAt.Add(timeout), ExpireOrder{OrderID: v.OrderID})}
				for _, l := range v.Lines {
					cmds = append(cmds, process.Tagged(tagReserve, ReserveStock{SKU: l.SKU, OrderID: v.OrderID, Quantity: l.Quantity}))
				}
				return cmds, nil
			case OrderExpired:
				return releaseAll(s), nil
			}
			return nil, nil
		},
		Apply: func(s FulfilmentState, e process.Event) FulfilmentState {
			switch v := e.Value.(type) {
			case OrderPlaced:
				s.OrderID, s.Lines = v.OrderID, v.Lines
			case OrderExpired:
				s.Failed, s.Reserved = true, nil // releaseAll, in Handle, gave them back
			}
			return s
		},
		Outcome: fulfilmentOutcome,
	}
}

// fulfilmentOutcome takes the next step after a command's answer.
func fulfilmentOutcome(s FulfilmentState, c process.Sent, o process.Outcome) (FulfilmentState, []process.Command, error) {
	switch c.Tag {
	case tagReserve:
		sku := c.Value.(ReserveStock).SKU
		switch {
		case o.OK() && s.Failed:
			// Reserved after the order failed: give it straight back.
			return s, []process.Command{process.Tagged(tagRelease, ReleaseStock{SKU: sku, OrderID: s.OrderID})}, nil
		case o.OK():
			s.Reserved = append(s.Reserved, sku)
			if len(s.Reserved) < len(s.Lines) {
				return s, nil, nil
			}
			return s, []process.Command{
				process.Tagged(tagConfirm, ConfirmOrder{OrderID: s.OrderID}),
				process.CancelSchedule(expirySchedule),
			}, nil
		case s.Failed:
			return s, nil, nil
		}
		reason := "out of stock: " + sku
		if o.Reason != ErrOutOfStock.Reason {
			reason = fmt.Sprintf("reservation of %s refused (%s): %s", sku, o.Code, o.Message)
		}
		cmds := releaseAll(s)
		s.Failed, s.Reserved = true, nil
		return s, append(cmds,
			process.Tagged(tagCancel, CancelOrder{OrderID: s.OrderID, Reason: reason}),
			process.CancelSchedule(expirySchedule)), nil
	case tagConfirm, tagRelease, tagCancel:
		// None needs a next step: a refused confirmation means the order expired
		// first, and OrderExpired releases the stock; releasing is idempotent; a
		// refused cancel means the order already ended.
		return s, nil, nil
	}
	return s, nil, fmt.Errorf("shop: fulfilment: answer to an unknown command tag %q", c.Tag)
}

// releaseAll returns a ReleaseStock for each reserved line.
func releaseAll(s FulfilmentState) []process.Command {
	reserved := slices.Clone(s.Reserved)
	slices.SortFunc(reserved, strings.Compare)
	cmds := make([]process.Command, 0, len(reserved))
	for _, sku := range reserved {
		cmds = append(cmds, process.Tagged(tagRelease, ReleaseStock{SKU: sku, OrderID: s.OrderID}))
	}
	return cmds
}
