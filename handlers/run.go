package handlers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ringleader-go/ringleader/eventstore"
)

// Backoff bounds for retrying the store after an I/O error (not a handler failure).
const (
	ioRetryMin = 100 * time.Millisecond
	ioRetryMax = 5 * time.Second
	// commitTimeout bounds a checkpoint write, which outlives a cancelled ctx so that
	// work done before Close is not redone.
	commitTimeout = 5 * time.Second
)

// StoppedError is why a partition stopped: its OnError said Stop for Event.
type StoppedError struct {
	Handler   string
	Partition int
	Event     eventstore.RecordedEvent
	Err       error
}

// Error implements error.
func (e *StoppedError) Error() string {
	return fmt.Sprintf("handlers: %s#%d stopped at position %d (%s v%d): %v",
		e.Handler, e.Partition, e.Event.GlobalPosition, e.Event.StreamID, e.Event.StreamVersion, e.Err)
}

// Unwrap returns the handler's error.
func (e *StoppedError) Unwrap() error { return e.Err }

// errNotDesired: the partition was asked to stop while waiting to retry.
var errNotDesired = errors.New("handlers: partition no longer runs here")

// run processes the partition while it is desired and the lease is held. It returns
// nil when asked to stop, a *StoppedError when OnError said Stop, or ctx's error when
// the runner closed or the lease was lost.
func (p *partition) run(ctx context.Context, lease Lease) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if lost := lease.Lost(); lost != nil {
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-lost:
				p.log.Warn().Msg("handlers: partition lease lost; stopping at once")
				cancel()
			case <-done:
			}
		}()
	}
	notes := p.r.cfg.Store.SubscribeAppends(ctx)
	poll := time.NewTicker(p.r.cfg.PollInterval)
	defer poll.Stop()

	spec := p.def.spec
	cp, err := p.start(ctx)
	ioFailures := 0
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !p.desired() {
			return nil
		}
		var batch []eventstore.RecordedEvent
		if err == nil {
			batch, err = p.r.cfg.Store.ReadAll(ctx, cp+1, spec.BatchSize)
		}
		if err == nil && len(batch) > 0 {
			cp, err = p.process(ctx, cp, batch)
		}
		var stopped *StoppedError
		switch {
		case errors.As(err, &stopped):
			return err
		case errors.Is(err, errNotDesired):
			return nil
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			ioFailures++
			p.noteErr(err)
			p.log.Warn().Err(err).Int("failures", ioFailures).Msg("handlers: partition I/O error; retrying")
			if !p.sleep(ctx, Backoff(ioFailures, ioRetryMin, ioRetryMax)) {
				return ctx.Err()
			}
			cp, err = p.load(ctx)
			continue
		}
		ioFailures = 0
		if len(batch) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.kick:
		case _, ok := <-notes:
			if !ok {
				notes = nil // the store closed: the poll goes on
			}
		case <-poll.C:
			// A checkpoint moved by someone else (a Reset on another node) is
			// noticed here when the partition is idle, and by the next
			// compare-and-set otherwise.
			var stored int64
			if stored, err = p.load(ctx); err == nil && stored != cp {
				p.log.Info().Int64("from", cp).Int64("to", stored).Msg("handlers: checkpoint moved elsewhere; following it")
				cp = stored
			}
		}
	}
}

// start loads the checkpoint; a first run of a Current handler starts at the head.
func (p *partition) start(ctx context.Context) (int64, error) {
	cp, err := p.load(ctx)
	if err != nil || cp != 0 || p.def.spec.StartFrom != Current {
		return cp, err
	}
	head, err := p.r.cfg.Store.HeadPosition(ctx)
	if err != nil || head == 0 {
		return 0, err
	}
	return p.commit(ctx, 0, head, 0, time.Time{})
}

// load reads the stored checkpoint.
func (p *partition) load(ctx context.Context) (int64, error) {
	cp, err := p.r.cfg.Store.LoadCheckpoint(ctx, p.cpName)
	if err == nil {
		p.setPosition(cp)
	}
	return cp, err
}

// process handles one page read from cp+1 and returns the new checkpoint.
func (p *partition) process(ctx context.Context, cp int64, batch []eventstore.RecordedEvent) (int64, error) {
	if p.def.proj != nil {
		return p.processProjection(ctx, cp, batch)
	}
	return p.processHandler(ctx, cp, batch)
}

// commit advances the checkpoint from → to with compare-and-set, outside any
// transaction, and reports n handled events. On a conflict it follows the stored
// value. It uses a context that survives ctx's cancellation (bounded by
// commitTimeout), so that work done before Close is recorded.
func (p *partition) commit(ctx context.Context, from, to int64, n int, began time.Time) (int64, error) {
	if k := p.r.cfg.Knobs.BeforeCommit; k != nil {
		k(p.def.spec.Name, p.index, from, to)
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	err := p.r.cfg.Store.StoreCheckpoint(cctx, p.cpName, from, to)
	return p.committed(from, to, n, began, err)
}

// committed records the outcome of a checkpoint compare-and-set from → to.
func (p *partition) committed(from, to int64, n int, began time.Time, err error) (int64, error) {
	var conflict *eventstore.CheckpointConflictError
	if errors.As(err, &conflict) {
		p.log.Warn().Int64("expected", from).Int64("actual", conflict.Actual).
			Msg("handlers: checkpoint moved by another holder; following it")
		p.setPosition(conflict.Actual)
		return conflict.Actual, nil
	}
	if err != nil {
		return from, err
	}
	p.setPosition(to)
	p.r.advanced.fire()
	took := time.Duration(0)
	if !began.IsZero() {
		took = p.r.cfg.Now().Sub(began)
	}
	p.r.cfg.Observer.Handled(p.def.spec.Name, p.index, n, from, to, took)
	return to, nil
}
