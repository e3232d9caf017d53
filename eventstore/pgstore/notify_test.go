package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
)

// TestNotificationsReachOtherProcesses: a subscriber of one store is woken by an
// append through another store on the same schema (another node), via
// LISTEN/NOTIFY, promptly.
func TestNotificationsReachOtherProcesses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	writer := pgtest.NewStore(t)
	reader, err := pgstore.Open(ctx, pgtest.DSN(), pgstore.WithSchema(writer.Schema()))
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()

	ch := reader.SubscribeAppends(ctx)
	// The listener wakes subscribers once when it (re)connects; wait for that and
	// drain it, so the signal measured below can only come from the append.
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("the listener never connected")
	}
	for i := range 3 {
		start := time.Now()
		if _, err := writer.Append(ctx, "s", eventstore.Exact(int64(i)), oneEvent("E")); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
			t.Logf("append %d: another store was notified after %s", i, time.Since(start))
		case <-time.After(5 * time.Second):
			t.Fatalf("append %d: no notification reached the other store within 5s", i)
		}
	}
}
