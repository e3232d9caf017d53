package aggregate

import (
	"context"
	"fmt"
)

// Pipeline is what middleware sees of one dispatch. Before functions may change its
// fields (enrich metadata, set a correlation id, replace the command with another
// value of the same type); After and OnFailure should only read it.
type Pipeline struct {
	// Command is the command value (never a pointer).
	Command any
	// Target is where the command goes, resolved from Command before the middleware
	// runs and again after it.
	Target Target
	// CommandID identifies the command; generated (a UUID) when the caller gave none.
	CommandID string
	// CausationID and CorrelationID are written into every recorded event's metadata.
	CausationID   string
	CorrelationID string
	// Metadata is written into every recorded event's metadata, below the three ids.
	// Never nil.
	Metadata map[string]string
	// Consistency is the consistency the caller asked for.
	Consistency Consistency
	// Assigns carries values between middleware of one dispatch. Never nil.
	Assigns map[string]any
}

// Middleware runs around dispatch, for validation, enrichment, authorisation,
// logging. Any function may be nil. Functions run on the dispatching goroutine, not
// the aggregate's, so they may block, but that counts against the command's timeout.
type Middleware struct {
	// Name identifies the middleware in errors.
	Name string
	// Before runs before the command is sent to its aggregate. A non-nil error stops
	// the dispatch: errors that CodeOf recognises keep their code, others become a
	// *RejectedError (e.g. "not authorised").
	Before func(ctx context.Context, p *Pipeline) error
	// After runs after a successful dispatch (including a duplicate).
	After func(ctx context.Context, p *Pipeline, res *Result)
	// OnFailure runs after a failed dispatch, whatever stage failed.
	OnFailure func(ctx context.Context, p *Pipeline, err error)
}

// chain is the middleware of one dispatch, outermost first.
type chain []Middleware

// before runs the Before functions in order, stopping at the first error.
func (c chain) before(ctx context.Context, p *Pipeline) error {
	for _, mw := range c {
		if mw.Before == nil {
			continue
		}
		if err := safeBefore(mw, ctx, p); err != nil {
			if _, known := knownCode(err); !known {
				err = &RejectedError{Err: err}
			}
			return err
		}
	}
	return nil
}

// after runs the After functions in reverse order.
func (c chain) after(ctx context.Context, p *Pipeline, res *Result) {
	for i := len(c) - 1; i >= 0; i-- {
		if f := c[i].After; f != nil {
			func() {
				defer func() { _ = recover() }()
				f(ctx, p, res)
			}()
		}
	}
}

// failure runs the OnFailure functions in reverse order.
func (c chain) failure(ctx context.Context, p *Pipeline, err error) {
	for i := len(c) - 1; i >= 0; i-- {
		if f := c[i].OnFailure; f != nil {
			func() {
				defer func() { _ = recover() }()
				f(ctx, p, err)
			}()
		}
	}
}

func safeBefore(mw Middleware, ctx context.Context, p *Pipeline) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{StreamID: p.Target.StreamID, Where: "middleware " + mw.Name, Value: r}
		}
	}()
	return mw.Before(ctx, p)
}

// errMiddlewareChangedType reports a Before that swapped the command for another type.
func errMiddlewareChangedType(want string, got any) error {
	return invalid(want, fmt.Sprintf("middleware replaced the command with a %T", got), nil)
}
