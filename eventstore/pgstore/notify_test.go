package pgstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
)

// listeningReader opens another store on schema (another node), closed at cleanup,
// and subscribes to its append notifications. The listener wakes subscribers once
// when it (re)connects; it waits for that and drains it, so that later signals can
// only come from appends.
func listeningReader(ctx context.Context, t *testing.T, schema string) (*pgstore.Store, <-chan struct{}) {
	t.Helper()
	reader, err := pgstore.Open(ctx, pgtest.DSN(), pgstore.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reader.Close() })
	ch := reader.SubscribeAppends(ctx)
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("the listener never connected")
	}
	return reader, ch
}

// TestNotificationsReachOtherProcesses: a subscriber of one store is woken by an
// append through another store on the same schema (another node), via
// LISTEN/NOTIFY, promptly.
func TestNotificationsReachOtherProcesses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	writer := pgtest.NewStore(t)
	_, ch := listeningReader(ctx, t, writer.Schema())
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

// TestAppendsBetweenNotificationsAreAnnounced: the first append after a quiet
// spell carries the NOTIFY in its own transaction; appends within the interval after
// it share one the store sends when the interval is over, so a reader that reads only
// when woken still sees every event.
func TestAppendsBetweenNotificationsAreAnnounced(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const interval = 500 * time.Millisecond
	writer, err := pgstore.Open(ctx, pgtest.DSN(), pgstore.WithSchema(pgtest.NewStore(t).Schema()), pgstore.WithNotifyInterval(interval))
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	reader, ch := listeningReader(ctx, t, writer.Schema())
	// readWhenWoken waits to be woken and reads the head, until it has seen want; it
	// fails if no wake comes for much longer than the interval.
	readWhenWoken := func(what string, want int64) {
		t.Helper()
		for {
			select {
			case <-ch:
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: the reader was not woken for the events up to position %d", what, want)
			}
			seen, err := reader.HeadPosition(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if seen >= want {
				return
			}
		}
	}

	for round := range 3 {
		time.Sleep(interval) // a quiet spell: the next append carries the NOTIFY
		carrier, err := writer.Append(ctx, fmt.Sprintf("carrier-%d", round), eventstore.Exact(0), oneEvent("E"))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		readWhenWoken("the carrying append", carrier[0].GlobalPosition)
		if waited := time.Since(start); waited >= interval {
			// Only the sender's NOTIFY, after the interval, woke it.
			t.Fatalf("the first append after a quiet spell was announced only after %s", waited)
		}
		// Within the interval: single appends from several goroutines and a group
		// commit, none of which may send a NOTIFY of its own.
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for v := range 5 {
					if _, err := writer.Append(ctx, fmt.Sprintf("single-%d-%d", round, w), eventstore.Exact(int64(v)), oneEvent("E")); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		var reqs []eventstore.AppendRequest
		for s := range 5 {
			reqs = append(reqs, eventstore.AppendRequest{StreamID: fmt.Sprintf("many-%d-%d", round, s), Expected: eventstore.Exact(0), Events: oneEvent("E")})
		}
		for _, r := range writer.AppendMany(ctx, reqs) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
		last, err := writer.HeadPosition(ctx)
		if err != nil {
			t.Fatal(err)
		}
		readWhenWoken("the appends after it", last)
	}
}
