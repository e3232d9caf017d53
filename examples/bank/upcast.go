package bank

import "github.com/ringleader-go/ringleader/eventstore/upcast"

// Upcasts returns the versions of the bank's event types and their upcasters. Every
// bank event is still at version 1; when one changes shape, raise its version here
// and add the upcaster from the previous one, e.g.
//
//	r.Current("MoneyDeposited", 2)
//	r.Add("MoneyDeposited", 1, func(d json.RawMessage) (json.RawMessage, error) { … })
func Upcasts() *upcast.Registry {
	return upcast.New()
}
