package pgstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
)

// BenchmarkAppendMany measures group commits of one event to each of N streams, from
// 4 concurrent appenders, against single appends from 32: ns/op is per stream append.
func BenchmarkAppendMany(b *testing.B) {
	body := json.RawMessage(`{"account_number":"X","amount":1,"balance":1}`)
	meta := map[string]string{eventstore.MetaCommandID: "c", eventstore.MetaCausationID: "c", eventstore.MetaCorrelationID: "c"}
	for _, group := range []int{1, 8, 32, 128} {
		b.Run(fmt.Sprintf("streams=%d", group), func(b *testing.B) {
			s := pgtest.NewStore(b)
			ctx := context.Background()
			workers := 4
			if group == 1 {
				workers = 32
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					versions := make([]int64, group)
					reqs := make([]eventstore.AppendRequest, group)
					for next.Add(int64(group)) <= int64(b.N) {
						for k := range reqs {
							reqs[k] = eventstore.AppendRequest{StreamID: fmt.Sprintf("b-%d-%d", w, k), Expected: eventstore.Exact(versions[k]),
								Events: []eventstore.EventData{{Type: "MoneyDeposited", Data: body, Metadata: meta}}}
						}
						var err error
						if group == 1 {
							_, err = s.Append(ctx, reqs[0].StreamID, reqs[0].Expected, reqs[0].Events)
						} else {
							for _, r := range s.AppendMany(ctx, reqs) {
								if r.Err != nil {
									err = r.Err
								}
							}
						}
						if err != nil {
							b.Error(err)
							return
						}
						for k := range versions {
							versions[k]++
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "appends/s")
		})
	}
}

// A group commit that commits while an older transaction is still open is not
// delivered before that transaction's event: ReadAll never skips, batch or not.
func TestAppendManyWatermark(t *testing.T) {
	s := pgtest.NewStore(t)
	ctx := context.Background()
	slow, slowPos := beginAppend(t, schemaConn(t, s), "slow")
	res := s.AppendMany(ctx, []eventstore.AppendRequest{
		{StreamID: "fast-1", Expected: eventstore.NoStream, Events: oneEvent("Fast")},
		{StreamID: "fast-2", Expected: eventstore.NoStream, Events: oneEvent("Fast")},
	})
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		if r.Events[0].GlobalPosition <= slowPos {
			t.Fatalf("batch position %d not after the open transaction's %d", r.Events[0].GlobalPosition, slowPos)
		}
	}
	if got, err := s.ReadAll(ctx, 1, 100); err != nil || len(got) != 0 {
		t.Fatalf("while the older transaction is open: ReadAll = %d events, %v; want none", len(got), err)
	}
	if err := slow.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got := readAllEventually(t, s, 1, 3)
	if len(got) != 3 || got[0].StreamID != "slow" || got[1].StreamID == "slow" || got[2].StreamID == "slow" {
		t.Fatalf("after commit: ReadAll = %+v; want the slow event, then the batch", got)
	}
}

// A writer outside the append protocol can leave a hole that lets a batch insert only
// the first of a stream's events; the all-or-nothing guard then rolls the batch back,
// and each request gets Append's own verdict: the holed stream fails, the others go in.
func TestAppendManyNeverAppendsPartOfAStream(t *testing.T) {
	s := pgtest.NewStore(t)
	ctx := context.Background()
	if _, err := s.Append(ctx, "holed", eventstore.NoStream, oneEvent("First")); err != nil {
		t.Fatal(err)
	}
	// Version 3 without version 2: no protocol-abiding writer can do this.
	if _, err := schemaConn(t, s).Exec(ctx, `INSERT INTO events (global_position, stream_id, stream_version, event_id, event_type, data)
		VALUES (pg_current_xact_id()::text::bigint * 65536, 'holed', 3, gen_random_uuid(), 'Rogue', '{}')`); err != nil {
		t.Fatal(err)
	}
	two := append(oneEvent("Second"), oneEvent("Third")...)
	res := s.AppendMany(ctx, []eventstore.AppendRequest{
		{StreamID: "clean-1", Expected: eventstore.NoStream, Events: oneEvent("A")},
		{StreamID: "holed", Expected: eventstore.Exact(1), Events: two},
		{StreamID: "clean-2", Expected: eventstore.NoStream, Events: oneEvent("B")},
	})
	if res[0].Err != nil || res[2].Err != nil {
		t.Fatalf("the other streams' appends failed: %v, %v", res[0].Err, res[2].Err)
	}
	if res[1].Err == nil {
		t.Fatalf("the holed stream's append succeeded: %+v", res[1].Events)
	}
	got, err := s.ReadStream(ctx, "holed", 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range got {
		if e.Type == "Second" || e.Type == "Third" {
			t.Fatalf("the holed stream got part of its events: %+v", got)
		}
	}
}

// Failed pipelined appends hand their connection back to the pool exactly once:
// closing such a batch twice touched the connection's statement cache after another
// goroutine had taken it (a data race, and a map that two goroutines write). Every
// append here carries a NOTIFY (interval 1ns), so all go through pgx batches, and
// most fail on a taken version. Run with -race.
func TestFailedBatchesReleaseTheirConnectionOnce(t *testing.T) {
	s := pgtest.NewStore(t, pgstore.WithNotifyInterval(time.Nanosecond),
		pgstore.WithPoolConfig(func(c *pgxpool.Config) { c.MaxConns = 2 })) // connections change hands all the time
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 60 {
				stream := fmt.Sprint("contended-", i%5)
				version, err := s.StreamVersion(ctx, stream)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = s.Append(ctx, stream, eventstore.Exact(version), oneEvent(fmt.Sprint("W", w)))
				_ = s.AppendMany(ctx, []eventstore.AppendRequest{
					{StreamID: stream, Expected: eventstore.Exact(version), Events: oneEvent("Late")},
					{StreamID: fmt.Sprint("fresh-", w, "-", i), Expected: eventstore.NoStream, Events: oneEvent("New")},
				})
				_, _ = s.RecordOutcome(ctx, eventstore.CommandOutcome{StreamID: stream, CommandID: fmt.Sprint("c-", w, "-", i), StreamVersion: version})
			}
		}()
	}
	wg.Wait()
	// Without -race too: every connection went back to the pool. (The store's own
	// NOTIFY sender may hold one for a moment, so wait for it.)
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := s.Pool().Stat()
		if st.AcquiredConns() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d connections still acquired after the appends returned: a failed batch kept its connection", st.AcquiredConns(), st.TotalConns())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
