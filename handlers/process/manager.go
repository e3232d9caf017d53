package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ringleader-go/ringleader/errcode"
	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/scheduler"
)

// Config defines a process manager over state type S. The functions are pure: no
// I/O, no clock, no blocking; they get the state by value and return the new one.
type Config[S any] struct {
	// Name identifies the manager: its records' key and the prefix of its command
	// ids. Required; it must not contain ':'.
	Name string
	// Decode, if set, turns a recorded event into the Go value the functions see as
	// Event.Value, replacing the value the handlers runner decoded (the application
	// router's registered event types, in a node). Nil keeps the runner's value. An
	// error fails the event (the handler's OnError decides).
	Decode func(e eventstore.RecordedEvent) (any, error)
	// DecodeCommand turns a journaled command back into its Go value (Sent.Value)
	// before the Outcome function sees it: a node's router's Decode. Nil leaves
	// Sent.Value nil (Sent.Decode still reads Body).
	DecodeCommand func(commandType string, body []byte) (any, error)
	// Interested says what the event means to which process. Required.
	Interested func(e Event) Interest
	// Handle returns the commands an event calls for, given the state before the
	// event. Nil dispatches nothing. An error fails the event before anything is
	// saved.
	Handle func(state S, e Event) ([]Command, error)
	// Apply folds the event into the state, after Handle. Nil keeps the state.
	Apply func(state S, e Event) S
	// Outcome folds the definite answer to a dispatched command into the state and
	// returns the commands it calls for; they are dispatched after the new state is
	// saved. Nil treats every refusal as an error (*RejectedError) and ignores
	// successes. An error fails the event with a *RejectedError; nothing is saved.
	Outcome func(state S, c Sent, o Outcome) (S, []Command, error)

	// States keeps the process records. Required.
	States StateStore
	// Dispatcher sends the commands. Required.
	Dispatcher Dispatcher
	// Correlation returns the correlation id of the commands caused by event e of
	// process processID. Nil means the process id.
	Correlation func(processID string, e eventstore.RecordedEvent) string
	// Now stamps records' UpdatedAt. Nil means time.Now.
	Now func() time.Time
	// Scheduler keeps the commands a process schedules (ScheduleAt,
	// CancelSchedule). Nil is fine for a process that schedules nothing; a
	// scheduling request then fails its event with ErrInvalid.
	Scheduler Scheduler
}

// Validate returns every problem with c, joined; nil if it is usable.
func (c Config[S]) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, fmt.Errorf("%w: Name is required", ErrInvalid))
	}
	for _, r := range c.Name {
		if r == ':' {
			errs = append(errs, fmt.Errorf("%w: Name %q contains ':'", ErrInvalid, c.Name))
			break
		}
	}
	if c.Interested == nil {
		errs = append(errs, fmt.Errorf("%w: Interested is required", ErrInvalid))
	}
	if c.States == nil {
		errs = append(errs, fmt.Errorf("%w: States is required", ErrInvalid))
	}
	if c.Dispatcher == nil {
		errs = append(errs, fmt.Errorf("%w: Dispatcher is required", ErrInvalid))
	}
	return errors.Join(errs...)
}

// Manager runs one process manager definition. Create it with New.
type Manager[S any] struct {
	cfg Config[S]
}

// New validates cfg and returns its manager.
func New[S any](cfg Config[S]) (*Manager[S], error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Manager[S]{cfg: cfg}, nil
}

// Name returns the manager's name.
func (m *Manager[S]) Name() string { return m.cfg.Name }

// run is one Handle call's view of a process record.
type run[S any] struct {
	m     *Manager[S]
	rec   Record
	state S
}

// Handle handles one event: the handler function of the manager's event handler. It
// returns nil once the event is applied and every command it (and the answers to
// those commands) called for has a definite answer; otherwise an error, after which
// handling the same event again resumes where this call stopped.
func (m *Manager[S]) Handle(ctx context.Context, ev Event) error {
	re := ev.RecordedEvent
	if m.cfg.Decode != nil {
		v, err := m.cfg.Decode(re)
		if err != nil {
			return fmt.Errorf("process %s: decode %s at %d: %w", m.cfg.Name, re.Type, re.GlobalPosition, err)
		}
		ev.Value = v
	}
	in := m.cfg.Interested(ev)
	if in.Kind == Ignore {
		return nil
	}
	if in.ProcessID == "" {
		return fmt.Errorf("%w: process %s: empty process id for %s at %d", ErrInvalid, m.cfg.Name, re.Type, re.GlobalPosition)
	}
	rec, found, err := m.cfg.States.Load(ctx, m.cfg.Name, in.ProcessID)
	if err != nil {
		return fmt.Errorf("process %s/%s: load: %w", m.cfg.Name, in.ProcessID, err)
	}
	if !found {
		if in.Kind != KindStart {
			return nil // continue/stop of a process that never started
		}
		rec = Record{Manager: m.cfg.Name, ProcessID: in.ProcessID, Status: Running}
	}
	if rec.Status == Done {
		return nil // tombstone
	}
	r := &run[S]{m: m, rec: rec}
	if len(rec.State) > 0 {
		if err := json.Unmarshal(rec.State, &r.state); err != nil {
			return fmt.Errorf("process %s/%s: decode state: %w", m.cfg.Name, in.ProcessID, err)
		}
	}
	// Finish what an earlier, interrupted handling journaled before anything new.
	if err := r.drain(ctx); err != nil {
		return err
	}
	if r.rec.Status == Running && re.GlobalPosition > r.rec.LastPosition {
		if err := r.accept(ctx, ev, in); err != nil {
			return err
		}
		if err := r.drain(ctx); err != nil {
			return err
		}
	}
	if r.rec.Status == Stopping {
		r.rec.Status = Done
		return r.save(ctx)
	}
	return nil
}

// accept applies a new event and journals its commands, in one save.
func (r *run[S]) accept(ctx context.Context, ev Event, in Interest) error {
	var cmds []Command
	if r.m.cfg.Handle != nil {
		var err error
		if cmds, err = r.m.cfg.Handle(r.state, ev); err != nil {
			return fmt.Errorf("process %s/%s: handle %s at %d: %w", r.m.cfg.Name, r.rec.ProcessID, ev.Type, ev.GlobalPosition, err)
		}
	}
	if r.m.cfg.Apply != nil {
		r.state = r.m.cfg.Apply(r.state, ev)
	}
	corr := r.rec.ProcessID
	if r.m.cfg.Correlation != nil {
		if c := r.m.cfg.Correlation(r.rec.ProcessID, ev.RecordedEvent); c != "" {
			corr = c
		}
	}
	r.rec.Seq = 0
	base := DispatchOptions{CorrelationID: corr, CausationID: ev.ID.String()}
	if err := r.journal(cmds, base); err != nil {
		return err
	}
	r.rec.LastPosition = ev.GlobalPosition
	if in.Kind == KindStop {
		r.rec.Status = Stopping
	}
	return r.save(ctx)
}

// journal appends cmds to the journal with ids following base's causation.
func (r *run[S]) journal(cmds []Command, base DispatchOptions) error {
	for _, c := range cmds {
		if c.Schedule != "" {
			if err := r.journalSchedule(c, base); err != nil {
				return err
			}
			continue
		}
		typ := c.Type
		if typ == "" {
			typ = commandType(c.Value)
		}
		if typ == "" {
			return fmt.Errorf("%w: process %s/%s: command %T has no type", ErrInvalid, r.m.cfg.Name, r.rec.ProcessID, c.Value)
		}
		body, err := json.Marshal(c.Value)
		if err != nil {
			return fmt.Errorf("%w: process %s/%s: encode %s: %v", ErrInvalid, r.m.cfg.Name, r.rec.ProcessID, typ, err)
		}
		opts := base
		opts.CommandID = r.m.cfg.Name + ":" + r.rec.ProcessID + ":" + base.CausationID + ":" + strconv.Itoa(r.rec.Seq)
		r.rec.Seq++
		r.rec.Pending = append(r.rec.Pending, Sent{Type: typ, Tag: c.Tag, Body: body, Options: opts})
	}
	return nil
}

// journalSchedule appends a scheduling request to the journal. It takes no
// sequence number, so the ids of the commands around it do not depend on it.
func (r *run[S]) journalSchedule(c Command, base DispatchOptions) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: process %s/%s: schedule %q: "+format, append([]any{ErrInvalid, r.m.cfg.Name, r.rec.ProcessID, c.Schedule}, args...)...)
	}
	if r.m.cfg.Scheduler == nil {
		return fail("the manager has no Scheduler")
	}
	sent := Sent{Tag: c.Tag, Options: base, ScheduleID: r.m.cfg.Name + ":" + r.rec.ProcessID + ":" + c.Schedule}
	sent.Options.CommandID = sent.ScheduleID
	if c.Cancel {
		sent.Op = OpCancel
		r.rec.Pending = append(r.rec.Pending, sent)
		return nil
	}
	sent.Op, sent.DueAt, sent.Type = OpSchedule, c.DueAt, c.Type
	if sent.Type == "" {
		sent.Type = commandType(c.Value)
	}
	if sent.Type == "" {
		return fail("command %T has no type", c.Value)
	}
	if c.DueAt.IsZero() {
		return fail("no due time")
	}
	body, err := json.Marshal(c.Value)
	if err != nil {
		return fail("encode %s: %v", sent.Type, err)
	}
	sent.Body = body
	r.rec.Pending = append(r.rec.Pending, sent)
	return nil
}

// schedule carries out a journaled scheduling request. A request the Scheduler
// refuses for good (invalid, or the id taken by other content) is a
// *RejectedError with code invalid; any other failure a *DispatchError.
func (r *run[S]) schedule(ctx context.Context, c Sent) error {
	var err error
	if c.Op == OpCancel {
		if _, err = r.m.cfg.Scheduler.Cancel(ctx, c.ScheduleID); errors.Is(err, scheduler.ErrNotFound) {
			err = nil
		}
	} else {
		_, err = r.m.cfg.Scheduler.ScheduleOnce(ctx, scheduler.Request{
			ID: c.ScheduleID, CommandType: c.Type, Command: c.Body, DueAt: c.DueAt,
			CorrelationID: c.Options.CorrelationID, CausationID: c.Options.CausationID,
		})
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, scheduler.ErrInvalid), errors.Is(err, scheduler.ErrConflict):
		return &RejectedError{Manager: r.m.cfg.Name, ProcessID: r.rec.ProcessID, Command: c,
			Outcome: Outcome{Code: errcode.Invalid, Message: err.Error()}, Err: err}
	default:
		return &DispatchError{Manager: r.m.cfg.Name, ProcessID: r.rec.ProcessID, Command: c, Err: err}
	}
}

// drain dispatches the journal in order, saving after each answer.
func (r *run[S]) drain(ctx context.Context) error {
	for len(r.rec.Pending) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		c := r.rec.Pending[0]
		if c.Op != "" {
			if r.m.cfg.Scheduler == nil {
				return fmt.Errorf("%w: process %s/%s: a journaled %s of %s needs a Scheduler", ErrInvalid, r.m.cfg.Name, r.rec.ProcessID, c.Op, c.ScheduleID)
			}
			if err := r.schedule(ctx, c); err != nil {
				return err
			}
			r.rec.Pending = append([]Sent(nil), r.rec.Pending[1:]...)
			if err := r.save(ctx); err != nil {
				return err
			}
			continue
		}
		out, err := r.m.cfg.Dispatcher.Dispatch(ctx, c.Type, c.Body, c.Options)
		if err != nil {
			return &DispatchError{Manager: r.m.cfg.Name, ProcessID: r.rec.ProcessID, Command: c, Err: err}
		}
		if out.Transient() {
			return &DispatchError{Manager: r.m.cfg.Name, ProcessID: r.rec.ProcessID, Command: c, Outcome: out}
		}
		var more []Command
		if r.m.cfg.Outcome != nil {
			if r.m.cfg.DecodeCommand != nil {
				if c.Value, err = r.m.cfg.DecodeCommand(c.Type, c.Body); err != nil {
					return fmt.Errorf("%w: process %s/%s: decode the journaled %s: %v", ErrInvalid, r.m.cfg.Name, r.rec.ProcessID, c.Type, err)
				}
			}
			state, cmds, err := r.m.cfg.Outcome(r.state, c, out)
			if err != nil {
				return &RejectedError{Manager: r.m.cfg.Name, ProcessID: r.rec.ProcessID, Command: c, Outcome: out, Err: err}
			}
			r.state, more = state, cmds
		} else if !out.OK() {
			return &RejectedError{Manager: r.m.cfg.Name, ProcessID: r.rec.ProcessID, Command: c, Outcome: out}
		}
		r.rec.Pending = append([]Sent(nil), r.rec.Pending[1:]...)
		if err := r.journal(more, c.Options); err != nil {
			return err
		}
		if err := r.save(ctx); err != nil {
			return err
		}
	}
	return nil
}

// save stores the record with the current state.
func (r *run[S]) save(ctx context.Context) error {
	state, err := json.Marshal(r.state)
	if err != nil {
		return fmt.Errorf("%w: process %s/%s: encode state: %v", ErrInvalid, r.m.cfg.Name, r.rec.ProcessID, err)
	}
	r.rec.State = state
	r.rec.UpdatedAt = r.m.cfg.Now()
	saved, err := r.m.cfg.States.Save(ctx, r.rec)
	if err != nil {
		return fmt.Errorf("process %s/%s: save: %w", r.m.cfg.Name, r.rec.ProcessID, err)
	}
	r.rec = saved
	return nil
}
