package handlers

import (
	"context"
	"fmt"
	"time"

	"github.com/ringleader-go/ringleader/aggregate"
)

var _ aggregate.ConsistencyWaiter = (*Runner)(nil)

// Polling bounds of WaitForPosition.
const (
	waitPollMin = time.Millisecond
	waitPollMax = 20 * time.Millisecond
)

// WaitFor implements aggregate.ConsistencyWaiter: it returns nil once every Strong
// handler has processed the result's events, and ctx's error if ctx ends first (the
// dispatcher answers timeout; the events stay stored). A result without events
// returns at once. It works whichever node runs the partitions: it reads their
// checkpoints from the store.
func (r *Runner) WaitFor(ctx context.Context, res *aggregate.Result) error {
	if res == nil || len(res.Events) == 0 {
		return nil
	}
	return r.WaitForPosition(ctx, res.StreamID, res.Events[len(res.Events)-1].GlobalPosition)
}

// WaitForPosition returns nil once the partition of each named handler (each Strong
// handler if none is named) that receives streamID has its checkpoint at or past
// position. It polls the checkpoints (1ms doubling to 20ms) and is woken at once by
// this runner's own progress. It returns ctx's error if ctx ends first, and
// ErrUnknownHandler for a name not registered.
func (r *Runner) WaitForPosition(ctx context.Context, streamID string, position int64, names ...string) error {
	var pending []string
	if len(names) == 0 {
		for _, d := range r.definitions() {
			if d.spec.Strong {
				pending = append(pending, CheckpointName(d.spec.Name, d.partitionOf(streamID)))
			}
		}
	}
	for _, name := range names {
		d, err := r.definition(name)
		if err != nil {
			return err
		}
		pending = append(pending, CheckpointName(d.spec.Name, d.partitionOf(streamID)))
	}
	delay := waitPollMin
	for {
		wake := r.advanced.wait()
		for i := 0; i < len(pending); {
			cp, err := r.cfg.Store.LoadCheckpoint(ctx, pending[i])
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				return fmt.Errorf("handlers: wait for %s: %w", pending[i], err)
			}
			if cp >= position {
				pending = append(pending[:i], pending[i+1:]...)
				continue
			}
			i++
		}
		if len(pending) == 0 {
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-wake:
		case <-t.C:
		}
		t.Stop()
		delay = min(delay*2, waitPollMax)
	}
}
