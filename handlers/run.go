package handlers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/tracing"
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

// cursor is how far a partition has got: Stored is its checkpoint in the store,
// Scanned how far it has looked. Between them lie only events of other partitions,
// so a partition that finds nothing of its own does not write its checkpoint for
// every page: it saves Scanned when it next handles an event, when it has been
// idle for PollInterval, or when it stops here.
type cursor struct {
	stored, scanned int64
}

func at(position int64) cursor { return cursor{stored: position, scanned: position} }

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
	poll := time.NewTicker(p.r.cfg.PollInterval)
	defer poll.Stop()

	spec := p.def.spec
	cur, err := p.start(ctx)
	saved := p.r.cfg.Now()
	ioFailures := 0
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !p.desired() {
			p.saveScanned(ctx, cur)
			return nil
		}
		var pg page
		if err == nil {
			pg, err = p.r.feed.read(ctx, cur.scanned+1, spec.BatchSize, spec.Partitions, p.wants)
		}
		progressed := err == nil && pg.through > cur.scanned
		if err == nil && len(pg.events) > 0 {
			cur, err = p.process(ctx, cur, pg)
			saved = p.r.cfg.Now()
		} else if progressed {
			cur.scanned = pg.through
			if p.r.cfg.Now().Sub(saved) >= p.r.cfg.PollInterval {
				cur, err = p.commit(ctx, cur.stored, cur.scanned, 0, time.Time{})
				saved = p.r.cfg.Now()
			}
		}
		var stopped *StoppedError
		switch {
		case errors.As(err, &stopped):
			return err
		case errors.Is(err, errNotDesired):
			p.saveScanned(ctx, cur)
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
			cur, err = p.load(ctx)
			continue
		}
		ioFailures = 0
		if pg.more {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.kick:
		case <-p.r.feed.after(pg.gen):
		case <-poll.C:
			// A checkpoint moved by someone else (a Reset on another node) is
			// noticed here when the partition is idle, and by the next
			// compare-and-set otherwise. Progress over other partitions' events is
			// saved here too.
			var stored cursor
			if stored, err = p.load(ctx); err == nil && stored.stored != cur.stored {
				p.log.Info().Int64("from", cur.stored).Int64("to", stored.stored).Msg("handlers: checkpoint moved elsewhere; following it")
				if stored.stored < cur.stored {
					p.r.feed.forget() // a Reset elsewhere: replay from the store
				}
				cur = stored
			} else if err == nil && cur.scanned > cur.stored {
				cur, err = p.commit(ctx, cur.stored, cur.scanned, 0, time.Time{})
				saved = p.r.cfg.Now()
			}
		}
	}
}

// wants reports whether e belongs to this partition and the handler wants it.
func (p *partition) wants(e eventstore.RecordedEvent) bool {
	return p.def.partitionOf(e.StreamID) == p.index && p.def.filter(e, p.log)
}

// filter applies the handler's Filter. A Filter that panics is treated as wanting
// the event, so that the handler (and its error policy) sees it.
func (d *definition) filter(e eventstore.RecordedEvent, log zerolog.Logger) (want bool) {
	if d.spec.Filter == nil {
		return true
	}
	defer func() {
		if r := recover(); r != nil {
			log.Error().Str("panic", fmt.Sprint(r)).Int64("position", e.GlobalPosition).Msg("handlers: Filter panicked; delivering the event")
			want = true
		}
	}()
	return d.spec.Filter(e)
}

// saveScanned stores progress over other partitions' events when the partition
// stops here, so that its next owner does not look at them again. Best effort: the
// compare-and-set keeps it safe, and a failure only costs that second look.
func (p *partition) saveScanned(ctx context.Context, cur cursor) {
	if cur.scanned > cur.stored {
		_, _ = p.commit(ctx, cur.stored, cur.scanned, 0, time.Time{})
	}
}

// start loads the checkpoint; a first run of a Current handler starts at the head.
func (p *partition) start(ctx context.Context) (cursor, error) {
	cur, err := p.load(ctx)
	if err != nil || cur.stored != 0 || p.def.spec.StartFrom != Current {
		return cur, err
	}
	head, err := p.r.cfg.Store.HeadPosition(ctx)
	if err != nil || head == 0 {
		return at(0), err
	}
	return p.commit(ctx, 0, head, 0, time.Time{})
}

// load reads the stored checkpoint.
func (p *partition) load(ctx context.Context) (cursor, error) {
	cp, err := p.r.cfg.Store.LoadCheckpoint(ctx, p.cpName)
	if err == nil {
		p.setPosition(cp)
	}
	return at(cp), err
}

// process handles the partition's events of one page and returns where it got.
// With tracing, the page is a span of its own (a page holds events of many
// commands), linked to the trace of each event's command.
func (p *partition) process(ctx context.Context, cur cursor, pg page) (cursor, error) {
	ctx, span := tracing.Tracer().Start(ctx, "page "+p.def.spec.Name)
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(tracing.AttrHandler.String(p.def.spec.Name), tracing.AttrPartition.Int(p.index),
			tracing.AttrEvents.Int(len(pg.events)), tracing.AttrGlobalFrom.Int64(cur.stored), tracing.AttrGlobalThrough.Int64(pg.through))
		for _, e := range pg.events {
			if sc := trace.SpanContextFromContext(tracing.ExtractMetadata(ctx, e.Metadata)); sc.IsValid() {
				span.AddLink(trace.Link{SpanContext: sc})
			}
		}
	}
	if p.def.proj != nil {
		return p.processProjection(ctx, cur, pg)
	}
	return p.processHandler(ctx, cur, pg)
}

// commit advances the checkpoint from → to with compare-and-set, outside any
// transaction, and reports n handled events. On a conflict it follows the stored
// value. It uses a context that survives ctx's cancellation (bounded by
// commitTimeout), so that work done before Close is recorded.
func (p *partition) commit(ctx context.Context, from, to int64, n int, began time.Time) (cursor, error) {
	if k := p.r.cfg.Knobs.BeforeCommit; k != nil {
		k(p.def.spec.Name, p.index, from, to)
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	err := p.r.cfg.Store.StoreCheckpoint(cctx, p.cpName, from, to)
	return p.committed(from, to, n, began, err)
}

// committed records the outcome of a checkpoint compare-and-set from → to.
func (p *partition) committed(from, to int64, n int, began time.Time, err error) (cursor, error) {
	var conflict *eventstore.CheckpointConflictError
	if errors.As(err, &conflict) {
		p.log.Warn().Int64("expected", from).Int64("actual", conflict.Actual).
			Msg("handlers: checkpoint moved by another holder; following it")
		if conflict.Actual < from {
			p.r.feed.forget() // a Reset elsewhere: replay from the store
		}
		p.setPosition(conflict.Actual)
		return at(conflict.Actual), nil
	}
	if err != nil {
		return at(from), err
	}
	p.setPosition(to)
	p.r.advanced.fire()
	took := time.Duration(0)
	if !began.IsZero() {
		took = p.r.cfg.Now().Sub(began)
	}
	p.r.cfg.Observer.Handled(p.def.spec.Name, p.index, n, from, to, took)
	return at(to), nil
}
