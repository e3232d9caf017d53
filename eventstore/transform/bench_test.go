package transform_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/memstore"
	"github.com/ringleader-go/ringleader/eventstore/shred"
	"github.com/ringleader-go/ringleader/eventstore/transform"
	"github.com/ringleader-go/ringleader/eventstore/upcast"
)

// BenchmarkReadAllUntouched measures ReadAll of 100 events of types no transform
// touches, bare and through the bank-like pair of transforms (upcasting and
// crypto-shredding): the handlers' hot path.
func BenchmarkReadAllUntouched(b *testing.B) {
	ctx := context.Background()
	mem := memstore.New()
	b.Cleanup(func() { _ = mem.Close() })
	for i := range 100 {
		_, _ = mem.Append(ctx, "account-"+string(rune('a'+i%26)), eventstore.AnyVersion, []eventstore.EventData{{Type: "MoneyDeposited",
			Data: json.RawMessage(`{"account_number":"a","amount":1,"balance":1}`), Metadata: map[string]string{"command_id": "c"}}})
	}
	sh, _ := shred.New(shred.Config{Rules: []shred.Rule{{EventType: "AccountOpened", SubjectField: "account_number", Fields: []shred.Field{{Name: "holder_name"}}}}})
	up := upcast.New().Current("AccountOpened", 2).Add("AccountOpened", 1, func(d json.RawMessage) (json.RawMessage, error) { return d, nil })
	for name, s := range map[string]eventstore.Store{"bare": mem, "wrapped": transform.Wrap(mem, up, sh)} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if evs, err := s.ReadAll(ctx, 0, 100); err != nil || len(evs) != 100 {
					b.Fatal(len(evs), err)
				}
			}
		})
	}
}
