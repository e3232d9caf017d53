package aggregate_test

import (
	"testing"

	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/eventstore/memstore"
)

func storeKinds() []storeKind {
	return []storeKind{
		{name: "mem", open: func(t testing.TB) aggregate.Store {
			s := memstore.New()
			t.Cleanup(func() { _ = s.Close() })
			return s
		}},
	}
}
