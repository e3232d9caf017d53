package memstore_test

import (
	"testing"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/memstore"
	"github.com/ringleader-go/ringleader/eventstore/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) eventstore.Store { return memstore.New() })
}
