package handlers

import (
	"context"
	"fmt"
	"time"

	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/eventstore"
)

var _ aggregate.ConsistencyWaiter = (*Runner)(nil)

// Polling bounds of WaitForPosition.
const (
	waitPollMin = time.Millisecond
	waitPollMax = 20 * time.Millisecond
)

// WaitFor implements aggregate.ConsistencyWaiter: it returns nil once every Strong
// handler has processed the result's events (those its Filter wants), and ctx's
// error if ctx ends first (the dispatcher answers timeout; the events stay stored).
// A result without events returns at once. It works whichever node runs the
// partitions: it reads their checkpoints from the store.
func (r *Runner) WaitFor(ctx context.Context, res *aggregate.Result) error {
	if res == nil || len(res.Events) == 0 {
		return nil
	}
	want := map[string]int64{} // checkpoint name → position it must reach
	for _, d := range r.definitions() {
		if !d.spec.Strong {
			continue
		}
		for _, ev := range res.Events {
			e := eventstore.RecordedEvent{GlobalPosition: ev.GlobalPosition, StreamID: res.StreamID,
				StreamVersion: ev.StreamVersion, ID: ev.ID, Type: ev.Type, Data: ev.Data, Metadata: ev.Metadata}
			if d.filter(e, r.log) {
				want[CheckpointName(d.spec.Name, d.partitionOf(res.StreamID))] = ev.GlobalPosition
			}
		}
	}
	return r.waitCheckpoints(ctx, want)
}

// WaitForPosition returns nil once the partition of each named handler (each Strong
// handler if none is named) that receives streamID has its checkpoint at or past
// position. It polls the checkpoints (1ms doubling to 20ms) and is woken at once by
// this runner's own progress. It returns ctx's error if ctx ends first, and
// ErrUnknownHandler for a name not registered.
func (r *Runner) WaitForPosition(ctx context.Context, streamID string, position int64, names ...string) error {
	want := map[string]int64{}
	if len(names) == 0 {
		for _, d := range r.definitions() {
			if d.spec.Strong {
				want[CheckpointName(d.spec.Name, d.partitionOf(streamID))] = position
			}
		}
	}
	for _, name := range names {
		d, err := r.definition(name)
		if err != nil {
			return err
		}
		want[CheckpointName(d.spec.Name, d.partitionOf(streamID))] = position
	}
	return r.waitCheckpoints(ctx, want)
}

// waitCheckpoints returns nil once every named checkpoint is at or past its
// position, polling them (1ms doubling to 20ms) and woken at once by this runner's
// own progress; ctx's error if ctx ends first.
func (r *Runner) waitCheckpoints(ctx context.Context, want map[string]int64) error {
	delay := waitPollMin
	for {
		wake := r.advanced.wait()
		for name, position := range want {
			cp, err := r.cfg.Store.LoadCheckpoint(ctx, name)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				return fmt.Errorf("handlers: wait for %s: %w", name, err)
			}
			if cp >= position {
				delete(want, name)
			}
		}
		if len(want) == 0 {
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
