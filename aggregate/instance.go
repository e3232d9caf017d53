package aggregate

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"time"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/tracing"
)

// errRetry is an instance's answer to a command it took after it was asked to stop:
// the sender acquires the aggregate's new instance and sends again.
var errRetry = errors.New("aggregate: instance stopping, retry")

// request is one command on its way to an instance.
type request struct {
	ctx            context.Context
	route          *route
	pipeline       *Pipeline
	opts           dispatchOptions
	checkDuplicate bool
	reply          chan reply // buffered: the instance never blocks answering
}

type reply struct {
	res *Result
	err error
}

// instance is one live aggregate: a goroutine that takes commands from its mailbox
// one at a time. Fields under "guarded by d.mu" belong to the dispatcher's registry;
// the rest belong to the goroutine.
type instance struct {
	d       *Dispatcher
	typ     *Type
	target  Target
	mailbox chan *request // unbuffered: a command is either taken or still the sender's
	stop    chan struct{} // closed by removeLocked
	done    chan struct{} // closed when the goroutine exits

	// guarded by d.mu
	elem     *list.Element
	removed  bool
	busy     int
	deadline time.Time

	// owned by the goroutine
	loaded       bool
	state        State
	version      int64
	lastSnapshot int64
	cmds         *commandLog
}

func newInstance(d *Dispatcher, t *Type, target Target) *instance {
	return &instance{
		d:       d,
		typ:     t,
		target:  target,
		mailbox: make(chan *request),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// run is the instance goroutine.
func (in *instance) run() {
	defer in.d.wg.Done()
	defer close(in.done)
	for {
		select {
		case <-in.stop:
			return
		case req := <-in.mailbox:
			if in.stopping() {
				req.reply <- reply{err: errRetry}
				continue
			}
			res, events, err := in.handle(req)
			// Idle time counts from the command's end, read before the reply so that
			// a caller who moves the clock after the reply cannot race the deadline.
			done := in.d.cfg.Now()
			req.reply <- reply{res: res, err: err}
			in.maybeSnapshot()
			if in.afterCommand(req, events, err, done) {
				in.d.remove(in)
				return
			}
		}
	}
}

func (in *instance) stopping() bool {
	select {
	case <-in.stop:
		return true
	default:
		return false
	}
}

// afterCommand applies the lifespan decision, measured from now; it reports whether
// to stop now.
func (in *instance) afterCommand(req *request, events []any, err error, now time.Time) bool {
	k, perr := decideLifespan(in.typ.lifespan(), req.pipeline.Command, events, err)
	if perr != nil {
		in.d.log.Error().Err(perr).Str("stream", in.target.StreamID).Msg("lifespan failed; stopping instance")
	}
	stop, at := k.Deadline(now)
	if stop {
		return true
	}
	in.d.setDeadline(in, at)
	return false
}

// handle executes one command: rehydrate if needed, check for a duplicate and the
// expected version, execute, append, and on a version conflict catch up and retry.
// It returns the recorded events' values for the lifespan decision.
func (in *instance) handle(req *request) (*Result, []any, error) {
	ctx, p := req.ctx, req.pipeline
	if err := ctx.Err(); err != nil {
		return nil, nil, waitError(ctx, err)
	}
	if !in.loaded {
		lctx, span := tracing.Tracer().Start(ctx, "rehydrate")
		err := in.load(lctx)
		if span.IsRecording() {
			span.SetAttributes(tracing.AttrStream.String(in.target.StreamID), tracing.AttrVersion.Int64(in.version),
				tracing.AttrFromSnapshot.Int64(in.lastSnapshot))
		}
		span.End()
		if err != nil {
			return nil, nil, err
		}
	}
	for attempt := 1; ; attempt++ {
		// A command id the instance's memory knows is a repeat: answer it with the
		// original outcome. One its memory cannot prove new (see commandLog) is not
		// asked of the store yet: its events carry ids derived from the command id, so
		// the store refuses them if they are stored already. Only an answer that
		// appends nothing must ask (below).
		unsure := false
		if req.checkDuplicate {
			if in.cmds.seen(p.CommandID) {
				res, err := in.storedOutcome(ctx, req)
				if err != nil || res != nil {
					return res, nil, err
				}
			} else {
				unsure = !in.cmds.complete()
			}
		}
		var events []any
		var err error
		if req.opts.hasExpected && in.version != req.opts.expectedVersion {
			err = &ExpectedVersionError{StreamID: in.target.StreamID, Expected: req.opts.expectedVersion, Actual: in.version}
		} else if req.opts.expectExists && in.version == 0 {
			err = &ExpectedVersionError{StreamID: in.target.StreamID, Expected: ExpectedExisting, Actual: 0}
		} else {
			_, span := tracing.Tracer().Start(ctx, "execute")
			events, err = in.execute(p.Command)
			span.End()
		}
		if err != nil || len(events) == 0 {
			if req.checkDuplicate && isDecision(err) {
				// The answer becomes final for the command id (or an earlier one is).
				res, again, serr := in.settle(ctx, req, err, attempt)
				if again {
					continue
				}
				return res, nil, serr
			}
			if unsure {
				// Appending nothing, it cannot meet its stored events: ask.
				res, serr := in.storedOutcome(ctx, req)
				if serr != nil || res != nil {
					return res, nil, serr
				}
			}
			// An answer that appends nothing is never checked by the store's version
			// check. If another node appended meanwhile (a split, a handover), the
			// answer came from stale state: catch up and decide again.
			if again, serr := in.staleAnswer(ctx, err, attempt); serr != nil {
				return nil, nil, serr
			} else if again {
				continue
			}
			if err != nil {
				return nil, nil, err
			}
			res, err := in.result(req, nil, nil)
			return res, nil, err
		}
		data, err := in.typ.events.encode(events, in.metadata(ctx, p))
		if err != nil {
			return nil, nil, &RejectedError{Err: err, StreamVersion: in.version}
		}
		if req.checkDuplicate {
			// An idempotent command: ids derived from its id make the store refuse a
			// repeat's events (and mark them as an idempotent command's, see
			// eventstore.KeyedCommandIDs). A generated id is never repeated.
			for i := range data {
				data[i].ID = eventstore.CommandEventID(in.target.StreamID, p.CommandID, i)
			}
		}
		if k := in.d.cfg.Knobs; k != nil && k.BeforeAppend != nil {
			k.BeforeAppend(in.target.StreamID, in.version, attempt)
		}
		actx, span := tracing.Tracer().Start(ctx, "append")
		recorded, err := in.d.append(actx, in.target.StreamID, in.version, data)
		span.End()
		if errors.Is(err, eventstore.ErrWrongVersion) {
			in.d.log.Debug().Str("stream", in.target.StreamID).Int("attempt", attempt).Msg("version conflict; catching up")
			if cerr := in.catchUp(ctx); cerr != nil {
				return nil, nil, cerr
			}
			if !shouldRetry(attempt, in.d.cfg.MaxRetries) {
				return nil, nil, &ConflictError{StreamID: in.target.StreamID, Attempts: attempt, Err: err}
			}
			continue
		}
		if (errors.Is(err, eventstore.ErrDuplicateEventID) || errors.Is(err, eventstore.ErrCommandDecided)) && req.checkDuplicate {
			// The command's events are stored already, or its outcome is recorded: it
			// is a repeat.
			res, serr := in.storedOutcome(ctx, req)
			if serr != nil || res != nil {
				return res, nil, serr
			}
		}
		if err != nil {
			// The append may or may not have committed; the state still matches
			// in.version, and if it did commit the next append conflicts and catches up.
			return nil, nil, storeError(ctx, "append", err)
		}
		values, err := in.applyRecorded(recorded)
		if err != nil {
			// The events are stored: the command succeeded. The state is not to be
			// trusted, so it is dropped and rebuilt by the next command.
			in.d.log.Error().Err(err).Str("stream", in.target.StreamID).Msg("apply failed after append; discarding state")
			in.discard()
		}
		res, err := in.result(req, recorded, values)
		return res, values, err
	}
}

// staleAnswer reports whether an answer that appends nothing (a rejection, a
// failed expected version, a command with no events) must be decided again because
// the stream moved past this instance's state; it catches up if so. Panics are not
// decided again (the state was dropped), and retries stay bounded by MaxRetries.
// It costs one version read, only on such answers.
func (in *instance) staleAnswer(ctx context.Context, answer error, attempt int) (bool, error) {
	var panicked *PanicError
	if errors.As(answer, &panicked) || !shouldRetry(attempt, in.d.cfg.MaxRetries) {
		return false, nil
	}
	current, err := in.d.cfg.Store.StreamVersion(ctx, in.target.StreamID)
	if err != nil {
		return false, storeError(ctx, "read stream version", err)
	}
	if current == in.version {
		return false, nil
	}
	if err := in.catchUpStale(ctx, current); err != nil {
		return false, err
	}
	return true, nil
}

// catchUpStale catches up an instance whose answer came from a state older than the
// stream's version stored (another node appended meanwhile), before it decides again.
func (in *instance) catchUpStale(ctx context.Context, stored int64) error {
	in.d.log.Debug().Str("stream", in.target.StreamID).Int64("local", in.version).Int64("stored", stored).
		Msg("answer from stale state; catching up")
	return in.catchUp(ctx)
}

// isDecision reports whether answer (nil: success) is the aggregate's own decision
// on its state, which settle records: a success or a rejection by Execute. Panics and
// failed expected versions are not decisions of the command and are not recorded.
func isDecision(answer error) bool {
	var rejected *RejectedError
	return answer == nil || errors.As(answer, &rejected)
}

// settle makes answer, decided on the instance's state without appending anything,
// the final outcome of the command's id: it records it (eventstore.OutcomeStore)
// unless the id already has an outcome, which is then the answer. A copy of the
// command that arrives late, or a retry, cannot be decided again on a newer state.
// again reports that the answer came from a stale state (the stream moved on: another
// node appended during a split or a handover); the instance has caught up and decides
// again. One store round trip.
func (in *instance) settle(ctx context.Context, req *request, answer error, attempt int) (res *Result, again bool, err error) {
	o := eventstore.CommandOutcome{StreamID: in.target.StreamID, CommandID: req.pipeline.CommandID, StreamVersion: in.version}
	if answer != nil {
		o.Code, o.Message, o.Reason = CodeOf(answer), answer.Error(), ReasonOf(answer)
	}
	prior, err := in.d.cfg.Store.RecordOutcome(ctx, o)
	var stale *eventstore.WrongVersionError
	switch {
	case errors.Is(err, eventstore.ErrCommandDecided):
		// Its events are stored: it succeeded before.
		res, err := in.storedOutcome(ctx, req)
		if err == nil && res == nil {
			err = fmt.Errorf("%w: command %q has events in stream %q that cannot be read back", ErrUnavailable, o.CommandID, o.StreamID)
		}
		return res, false, err
	case errors.As(err, &stale):
		if cerr := in.catchUpStale(ctx, stale.ActualVersion); cerr != nil {
			return nil, false, cerr
		}
		if !shouldRetry(attempt, in.d.cfg.MaxRetries) {
			return nil, false, &ConflictError{StreamID: in.target.StreamID, Attempts: attempt, Err: err}
		}
		return nil, true, nil
	case err != nil:
		return nil, false, storeError(ctx, "record outcome", err)
	case prior != nil:
		res, err := in.priorOutcome(req, prior)
		return res, false, err
	case answer != nil:
		return nil, false, answer
	}
	res, err = in.result(req, nil, nil)
	return res, false, err
}

// priorOutcome answers a command with the outcome recorded for its id: the original
// rejection (its message; the domain error's Go type is not stored), or a success
// without events marked Duplicate.
func (in *instance) priorOutcome(req *request, o *eventstore.CommandOutcome) (*Result, error) {
	if o.Code != "" {
		return nil, &RejectedError{StreamVersion: o.StreamVersion,
			Err: &PriorRejectionError{Message: o.Message, Reason: o.Reason, StreamVersion: o.StreamVersion, At: o.CreatedAt}}
	}
	res := in.baseResult(req)
	res.Duplicate = true
	res.AggregateVersion = o.StreamVersion
	return res, nil
}

// execute runs the user's Execute, turning a panic into a *PanicError (and dropping
// the state) and a domain error into a *RejectedError.
func (in *instance) execute(cmd any) (events []any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{StreamID: in.target.StreamID, Where: "execute", Value: r, Stack: debug.Stack()}
			in.d.log.Error().Err(err).Str("stream", in.target.StreamID).Msg("execute panicked; discarding state")
			in.discard()
		}
	}()
	events, err = in.state.Execute(cmd)
	if err != nil {
		return nil, &RejectedError{Err: err, StreamVersion: in.version}
	}
	return events, nil
}

// discard drops the state; the next command rehydrates.
func (in *instance) discard() {
	in.loaded, in.state, in.cmds = false, nil, nil
}

// metadata is what every event of the command carries: with tracing, the trace
// context of its dispatch too, so that handlers continue the command's trace.
func (in *instance) metadata(ctx context.Context, p *Pipeline) map[string]string {
	m := make(map[string]string, len(p.Metadata)+3)
	maps.Copy(m, p.Metadata)
	m[eventstore.MetaCommandID] = p.CommandID
	m[eventstore.MetaCausationID] = p.CausationID
	m[eventstore.MetaCorrelationID] = p.CorrelationID
	tracing.InjectMetadata(ctx, m)
	return m
}

// storedOutcome answers a command whose id already has an outcome with that
// outcome, read from the store: its events, or else its recorded outcome (see
// settle). It returns nil, nil when the store holds neither.
func (in *instance) storedOutcome(ctx context.Context, req *request) (*Result, error) {
	recorded, err := in.d.cfg.Store.ReadCommandEvents(ctx, in.target.StreamID, req.pipeline.CommandID)
	if err != nil {
		return nil, storeError(ctx, "read command events", err)
	}
	if len(recorded) == 0 {
		o, err := in.d.cfg.Store.ReadOutcome(ctx, in.target.StreamID, req.pipeline.CommandID)
		if err != nil {
			return nil, storeError(ctx, "read command outcome", err)
		}
		if o == nil {
			return nil, nil
		}
		return in.priorOutcome(req, o)
	}
	values := make([]any, len(recorded))
	for i, e := range recorded {
		if values[i], err = in.typ.events.decode(e.Type, e.Data); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	res := in.baseResult(req)
	res.Duplicate = true
	res.AggregateVersion = recorded[len(recorded)-1].StreamVersion
	res.Events = resultEvents(recorded, values)
	return res, nil
}

func (in *instance) baseResult(req *request) *Result {
	p := req.pipeline
	return &Result{
		CommandID:     p.CommandID,
		CommandType:   p.Target.CommandType,
		AggregateType: p.Target.AggregateType,
		AggregateID:   p.Target.AggregateID,
		StreamID:      p.Target.StreamID,
		Consistency:   p.Consistency,
	}
}

// result builds the outcome of an executed command.
func (in *instance) result(req *request, recorded []eventstore.RecordedEvent, values []any) (*Result, error) {
	res := in.baseResult(req)
	res.AggregateVersion = in.version
	if len(recorded) > 0 {
		res.AggregateVersion = recorded[len(recorded)-1].StreamVersion
	}
	res.Events = resultEvents(recorded, values)
	if req.opts.returnState && in.loaded {
		s, err := in.typ.cloneState(in.state)
		if err != nil {
			in.d.log.Error().Err(err).Str("stream", in.target.StreamID).Msg("cannot copy state for the result")
		}
		res.State = s
	}
	return res, nil
}

func resultEvents(recorded []eventstore.RecordedEvent, values []any) []Event {
	if len(recorded) == 0 {
		return nil
	}
	out := make([]Event, len(recorded))
	for i, e := range recorded {
		out[i] = Event{
			Type:           e.Type,
			StreamVersion:  e.StreamVersion,
			GlobalPosition: e.GlobalPosition,
			ID:             e.ID,
			Data:           e.Data,
			Metadata:       e.Metadata,
		}
		if i < len(values) {
			out[i].Value = values[i]
		}
	}
	return out
}

// storeError classifies a store failure: the caller's deadline, or unavailable.
func storeError(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return waitError(ctx, fmt.Errorf("aggregate: %s: %w", op, err))
	}
	if _, known := knownCode(err); known {
		return fmt.Errorf("aggregate: %s: %w", op, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}
