package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
	"github.com/ringleader-go/ringleader/handlers"
)

// balances is a bank-like projection: one row per stream, balance += amount.
func balances(name string, k int) handlers.Projection {
	return handlers.Projection{
		Spec: handlers.Spec{Name: name, Partitions: k},
		Setup: func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS balances (stream_id text PRIMARY KEY, balance bigint NOT NULL, version bigint NOT NULL)`)
			return err
		},
		Project: func(ctx context.Context, tx pgx.Tx, e handlers.Event) error {
			var v struct{ Amount int64 }
			if err := json.Unmarshal(e.Data, &v); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO balances (stream_id, balance, version) VALUES ($1, $2, $3)
				ON CONFLICT (stream_id) DO UPDATE SET balance = balances.balance + EXCLUDED.balance, version = EXCLUDED.version`,
				e.StreamID, v.Amount, e.StreamVersion)
			return err
		},
	}
}

// BenchmarkProjectionThroughput: b.N events (1000 streams, appended beforehand) are
// projected from origin by one runner with K partitions; reports events/s in all and
// per partition. K=1/batch=1 commits one transaction per event instead of one per
// page of 100, for comparison.
//
//	go test -run '^$' -bench 'ProjectionThroughput' -benchtime 20000x ./handlers/
func BenchmarkProjectionThroughput(b *testing.B) {
	for _, c := range []struct{ k, batch int }{{1, 0}, {2, 0}, {4, 0}, {1, 1}} {
		k := c.k
		name := fmt.Sprintf("K=%d", k)
		if c.batch != 0 {
			name += fmt.Sprintf("/batch=%d", c.batch) // one transaction per event, for comparison
		}
		b.Run(name, func(b *testing.B) {
			store := pgtest.NewStore(b)
			ctx := context.Background()
			const perAppend = 10
			for i := 0; i < b.N; i += perAppend {
				n := min(perAppend, b.N-i)
				evs := make([]eventstore.EventData, n)
				for j := range evs {
					evs[j] = eventstore.EventData{Type: "Deposited", Data: json.RawMessage(`{"amount":5}`)}
				}
				if _, err := store.Append(ctx, fmt.Sprintf("acc-%d", (i/perAppend)%1000), eventstore.AnyVersion, evs); err != nil {
					b.Fatal(err)
				}
			}
			r, err := handlers.NewRunner(handlers.RunnerConfig{Store: store, PG: store, NodeID: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			p := balances("balances", k)
			p.BatchSize = c.batch
			if err := r.Register(p); err != nil {
				b.Fatal(err)
			}
			head, _ := store.HeadPosition(ctx)
			b.ResetTimer()
			start := time.Now()
			if err := r.Start(ctx); err != nil {
				b.Fatal(err)
			}
			waitCaughtUp(b, store, "balances", k, head)
			elapsed := time.Since(start)
			b.StopTimer()
			rate := float64(b.N) / elapsed.Seconds()
			b.ReportMetric(rate, "events/s")
			b.ReportMetric(rate/float64(k), "events/s/partition")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// waitCaughtUp polls the checkpoints (cheaply, unlike Status) until all reach head.
func waitCaughtUp(b *testing.B, store *pgstore.Store, name string, k int, head int64) {
	ctx := context.Background()
	deadline := time.Now().Add(5 * time.Minute)
	for i := 0; i < k; {
		cp, err := store.LoadCheckpoint(ctx, handlers.CheckpointName(name, i))
		if err != nil {
			b.Fatal(err)
		}
		if cp >= head {
			i++
			continue
		}
		if time.Now().After(deadline) {
			b.Fatalf("partition %d at %d, head %d", i, cp, head)
		}
		time.Sleep(time.Millisecond)
	}
}

// lagObserver measures, per event, the time from its append (created_at, the
// appending transaction's start on the database clock) to the commit of the
// projection transaction that applied it.
type lagObserver struct {
	handlers.NopObserver
	mu      sync.Mutex
	pending map[int][]time.Time // partition → created_at of projected, uncommitted events
	lags    []time.Duration
}

func (o *lagObserver) projected(partition int, e eventstore.RecordedEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.pending[partition] = append(o.pending[partition], e.CreatedAt)
}

// Handled implements handlers.Observer: the page's events are committed.
func (o *lagObserver) Handled(_ string, partition int, _ int, _, _ int64, _ time.Duration) {
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, t := range o.pending[partition] {
		o.lags = append(o.lags, now.Sub(t))
	}
	o.pending[partition] = o.pending[partition][:0]
}

// BenchmarkProjectionLag appends b.N events at a steady 1000 events/s (4 writers,
// 100 streams, one event per append) while a K=4 projection follows; reports the
// p50 and p99 of append-to-projected latency.
//
//	go test -run '^$' -bench 'ProjectionLag' -benchtime 5000x ./handlers/
func BenchmarkProjectionLag(b *testing.B) {
	store := pgtest.NewStore(b)
	ctx := context.Background()
	obs := &lagObserver{pending: map[int][]time.Time{}}
	p := balances("lag", 4)
	project := p.Project
	p.Project = func(ctx context.Context, tx pgx.Tx, e handlers.Event) error {
		err := project(ctx, tx, e)
		if err == nil {
			obs.projected(placementOf(e.StreamID, 4), e.RecordedEvent)
		}
		return err
	}
	r, err := handlers.NewRunner(handlers.RunnerConfig{Store: store, PG: store, NodeID: "bench", Observer: obs})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	if err := r.Register(p); err != nil {
		b.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		b.Fatal(err)
	}
	const writers, rate = 4, 1000
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Second * writers / rate)
			defer tick.Stop()
			for i := w; i < b.N; i += writers {
				<-tick.C
				evs := []eventstore.EventData{{Type: "Deposited", Data: json.RawMessage(`{"amount":1}`)}}
				if _, err := store.Append(ctx, fmt.Sprintf("acc-%d", rand.IntN(100)), eventstore.AnyVersion, evs); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	head, _ := store.HeadPosition(ctx)
	waitCaughtUp(b, store, "lag", 4, head)
	b.StopTimer()
	obs.mu.Lock()
	defer obs.mu.Unlock()
	lags := obs.lags
	if len(lags) != b.N {
		b.Fatalf("measured %d of %d events", len(lags), b.N)
	}
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	b.ReportMetric(float64(lags[len(lags)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}
