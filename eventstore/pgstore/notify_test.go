package pgstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

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

// notifyLog LISTENs on a store's NOTIFY channel on a connection of its own and
// records when each notification arrived, until the test ends.
type notifyLog struct {
	mu   sync.Mutex
	at   []time.Time
	stop func()
}

func listenRaw(t *testing.T, channel string) *notifyLog {
	t.Helper()
	conn := pgtest.Connect(t)
	if _, err := conn.Exec(context.Background(), "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	l := &notifyLog{stop: func() { cancel(); <-done }}
	go func() {
		defer close(done)
		for {
			if _, err := conn.WaitForNotification(ctx); err != nil {
				return
			}
			l.mu.Lock()
			l.at = append(l.at, time.Now())
			l.mu.Unlock()
		}
	}()
	// Registered after Connect's cleanup, so it runs first: the connection closes
	// only once the goroutine has stopped using it.
	t.Cleanup(l.stop)
	return l
}

// times returns the arrival times recorded so far.
func (l *notifyLog) times() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.at...)
}

// TestAppendsBetweenNotificationsAreAnnounced: the first append after a quiet
// spell carries the NOTIFY in its own transaction; appends within the interval after
// it share one the store sends when the interval is over, so a reader that reads only
// when woken still sees every event. A connection LISTENing on the channel counts
// the NOTIFYs: never two within an interval, and exactly two a round (the carrier's
// and the one owed for the appends after it) when those appends fit in the interval.
func TestAppendsBetweenNotificationsAreAnnounced(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const interval = time.Second
	writer, err := pgstore.Open(ctx, pgtest.DSN(), pgstore.WithSchema(pgtest.NewStore(t).Schema()), pgstore.WithNotifyInterval(interval))
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	reader, ch := listeningReader(ctx, t, writer.Schema())
	// Only writer appends on this schema, so every NOTIFY on the channel is its.
	notes := listenRaw(t, "ringleader_appends_"+writer.Schema())
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

	type span struct {
		round    int
		from, to time.Time
	}
	var rounds []span // the rounds whose appends fitted in the interval: from before the carrier to the next round
	for round := range 3 {
		time.Sleep(interval) // a quiet spell: the next append carries the NOTIFY
		roundStart := time.Now()
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
		burstEnd := time.Now()
		last, err := writer.HeadPosition(ctx)
		if err != nil {
			t.Fatal(err)
		}
		readWhenWoken("the appends after it", last)
		if n := len(rounds); n > 0 && rounds[n-1].round == round-1 {
			rounds[n-1].to = roundStart
		}
		if burstEnd.Sub(roundStart) < interval*4/5 {
			rounds = append(rounds, span{round, roundStart, roundStart.Add(2 * interval)})
		} else {
			t.Logf("round %d: the appends took %s, longer than the interval: its NOTIFYs are not counted", round, burstEnd.Sub(roundStart))
		}
	}
	time.Sleep(interval) // any NOTIFY still owed has arrived
	got := notes.times()
	// At most one NOTIFY per interval. The owed one is sent at least the interval
	// after the carrier claimed its NOTIFY, before the carrier's commit delivered
	// that: the arrivals can be closer than the interval by the carrier's commit
	// latency, hence half of it. A single append sending its own NOTIFY would
	// arrive milliseconds after another.
	for i := 1; i < len(got); i++ {
		if gap := got[i].Sub(got[i-1]); gap < interval/2 {
			t.Errorf("NOTIFYs %d and %d arrived %s apart, within the %s interval: an append sent a NOTIFY of its own", i-1, i, gap, interval)
		}
	}
	// A round whose appends all finished well within the interval: its carrier's
	// NOTIFY and one owed NOTIFY for all the rest.
	for _, r := range rounds {
		n := 0
		for _, at := range got {
			if !at.Before(r.from) && at.Before(r.to) {
				n++
			}
		}
		if n != 2 {
			t.Errorf("round %d, 26 appends within the interval, sent %d NOTIFYs; want 2 (the carrier's and one owed for the rest)", r.round, n)
		}
	}
	if len(rounds) == 0 {
		t.Errorf("no round's appends fitted in the %s interval: the NOTIFY count was never checked", interval)
	}
	t.Logf("%d NOTIFYs in all, %d rounds counted", len(got), len(rounds))
}
