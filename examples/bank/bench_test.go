package bank_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/errcode"
	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/examples/bank"
)

// reportRate reports commands per second over the timed part of the benchmark.
func reportRate(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "cmds/s")
	}
}

// BenchmarkHotAggregate: deposits from many concurrent clients to one account, so
// every command queues on one instance (the serial path plus one append each).
func BenchmarkHotAggregate(b *testing.B) {
	for _, sn := range storeNames() {
		b.Run(sn, func(b *testing.B) {
			d := newBank(b, openStore(b, sn), aggregate.Config{Timeout: time.Minute})
			ctx := context.Background()
			if _, err := d.Dispatch(ctx, bank.OpenAccount{AccountNumber: "hot"}); err != nil {
				b.Fatal(err)
			}
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := d.Dispatch(ctx, bank.DepositMoney{AccountNumber: "hot", Amount: 1}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportRate(b)
		})
	}
}

// BenchmarkManyAggregates: deposits spread round-robin over 10 000 live accounts.
func BenchmarkManyAggregates(b *testing.B) {
	const accounts = 10_000
	for _, sn := range storeNames() {
		b.Run(sn, func(b *testing.B) {
			d := newBank(b, openStore(b, sn), aggregate.Config{Timeout: time.Minute, MaxLive: 2 * accounts})
			ctx := context.Background()
			parallel(b, accounts, 32, func(i int) error {
				_, err := d.Dispatch(ctx, bank.OpenAccount{AccountNumber: fmt.Sprint("acct-", i)})
				return err
			})
			var next atomic.Int64
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1) % accounts
					if _, err := d.Dispatch(ctx, bank.DepositMoney{AccountNumber: fmt.Sprint("acct-", i), Amount: 1}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportRate(b)
		})
	}
}

// BenchmarkRehydrate10k: time to bring a 10 000-event account live (passivate, then
// a command that is rejected so nothing is appended), with and without a snapshot.
func BenchmarkRehydrate10k(b *testing.B) {
	const events = 10_000
	for _, sn := range storeNames() {
		for _, snap := range []bool{false, true} {
			name := sn + "/no-snapshot"
			policy := aggregate.SnapshotPolicy{}
			if snap {
				name, policy = sn+"/snapshot", aggregate.SnapshotPolicy{Every: 100, Version: 1}
			}
			b.Run(name, func(b *testing.B) {
				store := openStore(b, sn)
				seedAccount(b, store, "account-big", events)
				var replayed atomic.Int64
				knobs := &aggregate.TestingKnobs{AfterRehydrate: func(_ string, _ int64, n int) { replayed.Add(int64(n)) }}
				d := newBank(b, store, aggregate.Config{Router: bank.NewRouter(bank.Config{AccountSnapshots: &policy}), Knobs: knobs})
				ctx := context.Background()
				rehydrate := func() {
					if err := d.Passivate(ctx, "account-big"); err != nil {
						b.Fatal(err)
					}
					_, err := d.Dispatch(ctx, bank.WithdrawMoney{AccountNumber: "big", Amount: 1 << 40})
					if aggregate.CodeOf(err) != errcode.Rejected {
						b.Fatalf("withdraw: %v", err)
					}
				}
				rehydrate() // with snapshots, this first full replay writes one (saved before Passivate returns)
				replayed.Store(0)
				b.ResetTimer()
				for range b.N {
					rehydrate()
				}
				b.StopTimer()
				b.ReportMetric(float64(replayed.Load())/float64(b.N), "events/op")
			})
		}
	}
}

// BenchmarkIdleAggregateMemory: heap plus stack bytes held per live, idle account
// (one command taken, nothing in flight). Use -benchtime=10000x for a stable figure.
func BenchmarkIdleAggregateMemory(b *testing.B) {
	store := openStore(b, "mem")
	for i := range b.N {
		seedAccount(b, store, fmt.Sprint("account-idle-", i), 1)
	}
	d := newBank(b, store, aggregate.Config{MaxLive: b.N + 1})
	ctx := context.Background()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for i := range b.N {
		_, err := d.Dispatch(ctx, bank.WithdrawMoney{AccountNumber: fmt.Sprint("idle-", i), Amount: 1 << 40})
		if aggregate.CodeOf(err) != errcode.Rejected {
			b.Fatalf("withdraw: %v", err)
		}
	}
	b.StopTimer()
	if live := d.Stats().Live; live != b.N {
		b.Fatalf("live = %d, want %d", live, b.N)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	stack := int64(after.StackInuse) - int64(before.StackInuse)
	b.ReportMetric(float64(heap+stack)/float64(b.N), "B/aggregate")
	b.ReportMetric(float64(stack)/float64(b.N), "stackB/aggregate")
	runtime.KeepAlive(d)
}

// seedAccount appends an opened account with n-1 deposits to stream, in batches,
// each event carrying a command id as the runtime would write it.
func seedAccount(b *testing.B, store aggregate.Store, stream string, n int) {
	b.Helper()
	ctx := context.Background()
	number := stream[len(bank.AccountStreamPrefix):]
	batch := make([]eventstore.EventData, 0, 500)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if _, err := store.Append(ctx, stream, eventstore.AnyVersion, batch); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	for i := range n {
		var typ string
		var v any
		if i == 0 {
			typ, v = "AccountOpened", bank.AccountOpened{AccountNumber: number}
		} else {
			typ, v = "MoneyDeposited", bank.MoneyDeposited{AccountNumber: number, Amount: 1, Balance: int64(i)}
		}
		data, _ := json.Marshal(v)
		id := uuid.NewString()
		batch = append(batch, eventstore.EventData{Type: typ, Data: data, Metadata: map[string]string{
			eventstore.MetaCommandID: id, eventstore.MetaCausationID: id, eventstore.MetaCorrelationID: id,
		}})
		if len(batch) == cap(batch) {
			flush()
		}
	}
	flush()
}

// parallel runs f(0..n-1) on workers goroutines, failing b on the first error.
func parallel(b *testing.B, n, workers int, f func(i int) error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		b.Fatal(err)
	}
}

// BenchmarkHotAggregateWithCommandIDs: deposits with a Command-Id each (as an
// idempotent client or a process manager sends them) to an account its node loaded
// from a snapshot, one at a time. The node's memory of command ids starts at the
// snapshot, so it cannot prove an id new from memory.
func BenchmarkHotAggregateWithCommandIDs(b *testing.B) {
	for _, sn := range storeNames() {
		b.Run(sn, func(b *testing.B) {
			store := openStore(b, sn)
			ctx := context.Background()
			warm := newBank(b, store, aggregate.Config{Timeout: time.Minute})
			if _, err := warm.Dispatch(ctx, bank.OpenAccount{AccountNumber: "hot-ids"}); err != nil {
				b.Fatal(err)
			}
			for i := range 150 { // a snapshot at version 100
				if _, err := warm.Dispatch(ctx, bank.DepositMoney{AccountNumber: "hot-ids", Amount: 1}, aggregate.WithCommandID(fmt.Sprint("warm-", i))); err != nil {
					b.Fatal(err)
				}
			}
			_ = warm.Close()
			d := newBank(b, store, aggregate.Config{Timeout: time.Minute})
			b.ResetTimer()
			for i := range b.N {
				if _, err := d.Dispatch(ctx, bank.DepositMoney{AccountNumber: "hot-ids", Amount: 1}, aggregate.WithCommandID(fmt.Sprint("bench-", i))); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b)
		})
	}
}
