package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/eventstore/pgstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
)

// TestCloseDoesNotWaitForEverForALeakedConnection: a connection someone never
// released must not hang Close (and with it a node's shutdown).
func TestCloseDoesNotWaitForEverForALeakedConnection(t *testing.T) {
	s := pgtest.NewStore(t, pgstore.WithCloseTimeout(200*time.Millisecond))
	conn, err := s.Pool().Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	began := time.Now()
	_ = s.Close()
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("Close took %s with a connection checked out; want about the close timeout", took)
	}
}
