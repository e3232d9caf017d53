package aggregate

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/codes"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/tracing"
)

// Dispatcher executes commands against live aggregate instances, one goroutine per
// instance. Create it with New; it is safe for concurrent use. Close it when done.
type Dispatcher struct {
	cfg    Config
	log    zerolog.Logger
	router *Router
	// group batches appends of different instances; nil without a BatchAppender.
	group *groupAppender

	mu     sync.Mutex
	closed bool
	live   map[string]*instance // stream id → instance
	lru    *list.List           // of *instance, most recently used first

	quit      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// Stats is a point-in-time view of a dispatcher.
type Stats struct {
	// Live is the number of live instances (at most Config.MaxLive).
	Live int
}

// New validates cfg and returns a running dispatcher.
func New(cfg Config) (*Dispatcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	d := &Dispatcher{
		cfg:    cfg,
		log:    cfg.Logger.With().Str("component", "aggregate").Logger(),
		router: cfg.Router,
		live:   map[string]*instance{},
		lru:    list.New(),
		quit:   make(chan struct{}),
	}
	d.group = newGroupAppender(cfg.Store, cfg, &d.wg)
	d.wg.Add(1)
	go d.sweep()
	return d, nil
}

// Dispatch executes command (a value, or pointer to one, of a routed type) on its
// aggregate and returns the outcome. It blocks until the command's events are stored
// (and, with Strong consistency and a Config.StrongConsistency, handled), the command
// fails, or the timeout passes. Errors classify with CodeOf; see the Err variables.
// With Strong consistency a wait that fails returns both the Result and the error.
func (d *Dispatcher) Dispatch(ctx context.Context, command any, opts ...Option) (*Result, error) {
	o := dispatchOptions{consistency: Eventual}
	for _, opt := range opts {
		opt(&o)
	}
	rt, cmd, err := d.router.lookup(command)
	if err != nil {
		p := &Pipeline{Command: command, Metadata: map[string]string{}, Assigns: map[string]any{}}
		chain(d.router.middleware).failure(ctx, p, err)
		return nil, err
	}
	p := d.pipeline(rt, cmd, o)
	mw := chain(append(d.router.middleware[:len(d.router.middleware):len(d.router.middleware)], rt.inherited...))
	ctx, cancel := context.WithTimeout(ctx, d.timeout(rt, o))
	defer cancel()
	ctx, span := tracing.Tracer().Start(ctx, "dispatch "+rt.name)
	defer span.End()

	res, err := d.dispatch(ctx, rt, mw, p, o)
	if span.IsRecording() {
		span.SetAttributes(tracing.AttrCommandType.String(rt.name), tracing.AttrCommandID.String(p.CommandID),
			tracing.AttrStream.String(p.Target.StreamID), tracing.AttrCode.String(CodeOf(err)))
		if res != nil {
			span.SetAttributes(tracing.AttrVersion.Int64(res.AggregateVersion), tracing.AttrEvents.Int(len(res.Events)))
		}
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
	}
	if err != nil {
		mw.failure(ctx, p, err)
		return res, err
	}
	mw.after(ctx, p, res)
	return res, nil
}

// dispatch runs the middleware's Before, sends the command to its instance and
// waits for strong consistency.
func (d *Dispatcher) dispatch(ctx context.Context, rt *route, mw chain, p *Pipeline, o dispatchOptions) (*Result, error) {
	target, err := rt.target(p.Command)
	if err != nil {
		return nil, err
	}
	p.Target = target
	if err := mw.before(ctx, p); err != nil {
		return nil, err
	}
	if reflect.TypeOf(p.Command) != rt.goType {
		return nil, errMiddlewareChangedType(rt.name, p.Command)
	}
	if p.Target, err = rt.target(p.Command); err != nil {
		return nil, err
	}
	res, err := d.send(ctx, rt, p, o)
	if err != nil {
		return nil, err
	}
	if p.Consistency == Strong && d.cfg.StrongConsistency != nil {
		wctx, span := tracing.Tracer().Start(ctx, "consistency wait")
		err := d.cfg.StrongConsistency.WaitFor(wctx, res)
		span.End()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return res, fmt.Errorf("%w: %w", ErrConsistencyTimeout, err)
			}
			return res, waitError(ctx, fmt.Errorf("aggregate: strong consistency: %w", err))
		}
	}
	return res, nil
}

func (d *Dispatcher) pipeline(rt *route, cmd any, o dispatchOptions) *Pipeline {
	p := &Pipeline{
		Command:       cmd,
		CommandID:     o.commandID,
		CausationID:   o.causationID,
		CorrelationID: o.correlationID,
		Metadata:      o.metadata,
		Consistency:   o.consistency,
		Assigns:       map[string]any{},
	}
	if p.CommandID == "" {
		p.CommandID = uuid.NewString()
	}
	if p.CausationID == "" {
		p.CausationID = p.CommandID
	}
	if p.CorrelationID == "" {
		p.CorrelationID = p.CommandID
	}
	if p.Metadata == nil {
		p.Metadata = map[string]string{}
	}
	if p.Consistency == "" {
		p.Consistency = Eventual
	}
	return p
}

// timeout picks the most specific configured timeout: the dispatch's, the route's,
// the aggregate type's, the dispatcher's.
func (d *Dispatcher) timeout(rt *route, o dispatchOptions) time.Duration {
	for _, v := range []time.Duration{o.timeout, rt.timeout, rt.typ.cfg.Timeout} {
		if v > 0 {
			return v
		}
	}
	return d.cfg.Timeout
}

// send hands the command to its instance and waits for the reply, re-acquiring the
// instance if it stopped before taking the command.
func (d *Dispatcher) send(ctx context.Context, rt *route, p *Pipeline, o dispatchOptions) (*Result, error) {
	req := &request{
		ctx:            ctx,
		route:          rt,
		pipeline:       p,
		opts:           o,
		checkDuplicate: o.commandID != "",
		reply:          make(chan reply, 1),
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, waitError(ctx, err)
		}
		in, err := d.acquire(rt.typ, p.Target)
		if err != nil {
			return nil, err
		}
		select {
		case in.mailbox <- req:
		case <-in.done:
			d.release(in)
			continue
		case <-ctx.Done():
			d.release(in)
			return nil, waitError(ctx, ctx.Err())
		}
		select {
		case r := <-req.reply:
			d.release(in)
			if errors.Is(r.err, errRetry) {
				continue
			}
			return r.res, r.err
		case <-ctx.Done():
			d.release(in)
			return nil, waitError(ctx, ctx.Err())
		}
	}
}

// waitError wraps a context error so that CodeOf classifies it: a passed deadline is
// a timeout, a cancellation means the caller (or the node) gave up.
func waitError(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// Stats returns the number of live instances.
func (d *Dispatcher) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return Stats{Live: len(d.live)}
}

// LiveStreams returns the stream ids of the live instances, in no particular order.
// The cluster uses it after a membership change to find the aggregates whose owner
// moved, and passivates those.
func (d *Dispatcher) LiveStreams() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.live))
	for id := range d.live {
		out = append(out, id)
	}
	return out
}

// Passivate stops the live instance of streamID, if any, after its in-progress
// command, and waits for it to exit or ctx to end. The cluster calls it when an
// aggregate's ownership moves to another node.
func (d *Dispatcher) Passivate(ctx context.Context, streamID string) error {
	d.mu.Lock()
	in := d.live[streamID]
	if in != nil {
		d.removeLocked(in)
	}
	d.mu.Unlock()
	if in == nil {
		return nil
	}
	select {
	case <-in.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops accepting commands, lets every instance finish its in-progress command,
// and waits for all goroutines to exit. Commands not yet taken by an instance fail
// with ErrClosed (code unavailable). Close is safe to call more than once and always
// returns nil.
func (d *Dispatcher) Close() error {
	d.closeOnce.Do(func() {
		d.mu.Lock()
		d.closed = true
		for _, in := range d.live {
			d.removeLocked(in)
		}
		d.mu.Unlock()
		close(d.quit)
	})
	d.wg.Wait()
	return nil
}

// append appends an instance's events at version expected: in a group commit when
// the store supports it, else on its own.
func (d *Dispatcher) append(ctx context.Context, streamID string, expected int64, events []eventstore.EventData) ([]eventstore.RecordedEvent, error) {
	if d.group != nil {
		return d.group.append(ctx, streamID, expected, events)
	}
	return d.cfg.Store.Append(ctx, streamID, eventstore.Exact(expected), events)
}
