package aggregate_test

import (
	"testing"

	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/eventstore/memstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
)

// storeKinds lists the stores every eachStore test runs against: the in-memory one
// and PostgreSQL (skipped when unreachable, failed under CI=true; see pgtest).
func storeKinds() []storeKind {
	return []storeKind{
		{name: "mem", open: func(t testing.TB) aggregate.Store {
			s := memstore.New()
			t.Cleanup(func() { _ = s.Close() })
			return s
		}},
		{name: "pg", open: func(t testing.TB) aggregate.Store {
			if testing.Short() {
				t.Skip("PostgreSQL tests skipped in -short mode")
			}
			return pgtest.NewStore(t)
		}},
	}
}
