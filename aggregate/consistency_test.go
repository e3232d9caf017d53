package aggregate_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/errcode"
)

// waiterFunc adapts a function to aggregate.ConsistencyWaiter.
type waiterFunc func(ctx context.Context, res *aggregate.Result) error

func (f waiterFunc) WaitFor(ctx context.Context, res *aggregate.Result) error { return f(ctx, res) }

func TestStrongConsistencyHook(t *testing.T) {
	leakCheck(t)
	var calls atomic.Int64
	var fail atomic.Bool
	waiter := waiterFunc(func(ctx context.Context, res *aggregate.Result) error {
		calls.Add(1)
		if fail.Load() {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	})
	d := newDispatcher(t, aggregate.Config{Store: storeKinds()[0].open(t), Router: counterRouter(aggregate.TypeConfig{}), StrongConsistency: waiter})

	if res := mustDispatch(t, d, Add{ID: "s", N: 1}); res.Consistency != aggregate.Eventual || calls.Load() != 0 {
		t.Fatalf("eventual waited: %+v calls %d", res, calls.Load())
	}
	if res := mustDispatch(t, d, Add{ID: "s", N: 1}, aggregate.WithConsistency(aggregate.Strong)); res.Consistency != aggregate.Strong || calls.Load() != 1 {
		t.Fatalf("strong: %+v calls %d", res, calls.Load())
	}
	// Handlers too slow: the events are stored, the caller learns that consistency,
	// not the command, timed out.
	fail.Store(true)
	res, err := d.Dispatch(context.Background(), Add{ID: "s", N: 1}, aggregate.WithConsistency(aggregate.Strong), aggregate.WithTimeout(20*time.Millisecond))
	if aggregate.CodeOf(err) != errcode.ConsistencyTimeout || !errors.Is(err, aggregate.ErrConsistencyTimeout) || res == nil || res.AggregateVersion != 3 {
		t.Fatalf("res %+v err %v", res, err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
}
