package handlers

import (
	"context"
	"errors"
	"runtime/debug"
	"time"

	"github.com/ringleader-go/ringleader/eventstore"
)

// outcome is what became of one matching event.
type outcome int

const (
	handled outcome = iota
	skipped
)

// infraError wraps an error that is not the handler's failure (a lost lease, a
// checkpoint conflict, the store down): it bypasses OnError.
type infraError struct{ err error }

func (e *infraError) Error() string { return e.err.Error() }
func (e *infraError) Unwrap() error { return e.err }

// attempt runs fn for event e until it succeeds or OnError says Skip or Stop,
// waiting the policy's delay between retries. It returns a *StoppedError on Stop,
// errNotDesired if the partition is asked to stop while waiting, ctx's error if ctx
// ends, or fn's *infraError.
func (p *partition) attempt(ctx context.Context, e eventstore.RecordedEvent, fn func() error) (outcome, error) {
	spec := p.def.spec
	for attempts := 1; ; attempts++ {
		err := recovered(fn)
		if err == nil {
			return handled, nil
		}
		var infra *infraError
		if errors.As(err, &infra) {
			return 0, infra.err
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		f := Failure{Handler: spec.Name, Partition: p.index, Event: e, Err: err, Attempts: attempts}
		d, delay := spec.OnError(f)
		p.r.cfg.Observer.Failed(f, d)
		p.noteErr(err)
		log := p.log.With().Err(err).Int64("position", e.GlobalPosition).Str("stream", e.StreamID).
			Int64("version", e.StreamVersion).Str("type", e.Type).Int("attempts", attempts).Logger()
		switch d {
		case Skip:
			log.Warn().Msg("handlers: event skipped after failure")
			return skipped, nil
		case Stop:
			return 0, &StoppedError{Handler: spec.Name, Partition: p.index, Event: e, Err: err}
		}
		log.Warn().Dur("delay", delay).Msg("handlers: event failed; retrying")
		if err := p.waitRetry(ctx, delay); err != nil {
			return 0, err
		}
	}
}

// waitRetry waits delay unless ctx ends or the partition is asked to stop.
func (p *partition) waitRetry(ctx context.Context, delay time.Duration) error {
	t := time.NewTimer(delay)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-p.kick:
			if !p.desired() {
				return errNotDesired
			}
		}
	}
}

// recovered calls fn, turning a panic into a *PanicError.
func recovered(fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return fn()
}
