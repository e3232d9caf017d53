package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/ringleader-go/ringleader/errcode"
	"github.com/ringleader-go/ringleader/handlers"
	"github.com/ringleader-go/ringleader/scheduler"
)

// Sentinel errors. Test with errors.Is.
var (
	// ErrInvalid: a Config is unusable, or a command could not be encoded.
	ErrInvalid = errors.New("process: invalid")
	// ErrConflict: the process's record changed since it was loaded (another
	// partition or node handled the same process). Retrying reloads it.
	ErrConflict = errors.New("process: state conflict")
	// ErrRejected: a dispatched command was refused and the process has no Outcome
	// function, or its Outcome function failed. The error is a *RejectedError.
	ErrRejected = errors.New("process: command rejected")
	// ErrDispatch: a command's fate is unknown or a retry may succeed (no reply,
	// timeout, unavailable, conflict). The error is a *DispatchError.
	ErrDispatch = errors.New("process: dispatch failed")
)

// Dispatcher sends a command through the node's normal command path (the NATS
// client in a cluster, the aggregate dispatcher in a single process).
//
// command is the command's JSON body (a json.RawMessage), exactly as journaled.
// Dispatch returns an Outcome when the command got a definite answer: success, or a
// refusal with its wire code. It returns an error when the command's fate is unknown
// or a retry may succeed (no node, no reply, a context error); an Outcome whose code
// is timeout, unavailable or conflict is treated the same way.
type Dispatcher interface {
	Dispatch(ctx context.Context, commandType string, command any, opts DispatchOptions) (Outcome, error)
}

// DispatchOptions are the headers a process sends with a command.
type DispatchOptions struct {
	// CommandID is the deterministic idempotency key, "<manager>:<process id>:<event id>:<n>".
	CommandID string `json:"command_id"`
	// CorrelationID is the process id (or what Config.Correlation chose).
	CorrelationID string `json:"correlation_id"`
	// CausationID is the id of the event that caused the command.
	CausationID string `json:"causation_id"`
}

// Outcome is a definite answer to a dispatched command.
type Outcome struct {
	// Code is "" for success, otherwise a wire error code (errcode.Rejected, …).
	Code string `json:"code,omitempty"`
	// Message explains a refusal, for people: the domain error's text for
	// errcode.Rejected.
	Message string `json:"message,omitempty"`
	// Reason is the domain's machine-readable reason of a rejection
	// (aggregate.Rejection), "" when it gave none. A process decides on it, not on
	// Message.
	Reason string `json:"reason,omitempty"`
	// Duplicate is set when the command id had already been applied: this is the
	// original outcome.
	Duplicate bool `json:"duplicate,omitempty"`
}

// OK reports a successful command.
func (o Outcome) OK() bool { return o.Code == "" }

// Transient reports a code that says nothing definite about the command: it may or
// may not have been applied (timeout), or a retry may succeed (unavailable,
// conflict). The Manager treats such an outcome like a Dispatcher error.
func (o Outcome) Transient() bool { return errcode.Transient(o.Code) }

// Command is a command a process wants dispatched.
type Command struct {
	// Type is the command's wire type (the last token of its NATS subject). Empty
	// means the Go type name of Value, or its CommandType() method's answer.
	Type string
	// Value is the command; it is encoded as JSON when journaled.
	Value any
	// Tag is an optional label the process chooses ("withdraw", "refund"), handed back
	// with the command's outcome.
	Tag string
	// Schedule, when not empty, makes this a request to the Config's Scheduler
	// instead of a command to dispatch now: Value is scheduled to be dispatched at
	// DueAt (or, with Cancel, the schedule is cancelled and Value is ignored). It
	// names the schedule within the process: the schedule id, which is also the
	// fired command's Command-Id, is "<manager>:<process id>:<Schedule>". Build such
	// requests with ScheduleAt and CancelSchedule.
	Schedule string
	// DueAt is when a scheduled command is due.
	DueAt time.Time
	// Cancel cancels schedule Schedule instead of creating it.
	Cancel bool
}

// ScheduleAt returns a request to dispatch command v at dueAt, under the schedule
// name, unique within the process. Compute dueAt from the event (its CreatedAt plus
// a delay), not from a clock, so that the process stays a pure function.
//
// Scheduling is journaled and idempotent by schedule id like commands are, so a
// redelivered event or a crash cannot schedule twice. Once a schedule id was used,
// scheduling it again with other content fails the event (scheduler.ErrConflict);
// its Outcome function is not called for scheduling requests.
func ScheduleAt(name string, dueAt time.Time, v any) Command {
	return Command{Value: v, Schedule: name, DueAt: dueAt}
}

// CancelSchedule returns a request to cancel the process's schedule name. Cancelling
// a schedule that already fired, failed or was cancelled, or that does not exist, is
// not an error.
func CancelSchedule(name string) Command { return Command{Schedule: name, Cancel: true} }

// Scheduler stores commands to be dispatched later; *scheduler.Store satisfies it.
// It is needed by processes that use ScheduleAt or CancelSchedule.
type Scheduler interface {
	ScheduleOnce(ctx context.Context, r scheduler.Request) (scheduler.Schedule, error)
	Cancel(ctx context.Context, id string) (bool, error)
}

var _ Scheduler = (*scheduler.Store)(nil)

// Journal operations of a Sent (its Op).
const (
	// OpSchedule: schedule the command (Sent.ScheduleID, Sent.DueAt).
	OpSchedule = "schedule"
	// OpCancel: cancel schedule Sent.ScheduleID.
	OpCancel = "cancel"
)

// Cmd returns the command v, named after its type.
func Cmd(v any) Command { return Command{Value: v} }

// Tagged returns the command v, named after its type, labelled tag.
func Tagged(tag string, v any) Command { return Command{Value: v, Tag: tag} }

// Sent is a journaled command: what was (or will be) dispatched, as the Outcome
// function sees it.
type Sent struct {
	Type    string          `json:"type"`
	Tag     string          `json:"tag,omitempty"`
	Body    json.RawMessage `json:"body"`
	Options DispatchOptions `json:"options"`
	// Op is "" for a command to dispatch now, OpSchedule or OpCancel for a request
	// to the Scheduler.
	Op string `json:"op,omitempty"`
	// Value is the command decoded into its Go type (Config.DecodeCommand), as the
	// Outcome function sees it; nil without a decoder. It is not journaled: Body is.
	Value any `json:"-"`
	// ScheduleID is the schedule a scheduling request is about.
	ScheduleID string `json:"schedule_id,omitempty"`
	// DueAt is when a scheduled command is due.
	DueAt time.Time `json:"due_at,omitzero"`
}

// Decode decodes the command's body into v (a pointer).
func (s Sent) Decode(v any) error { return json.Unmarshal(s.Body, v) }

// Kind says what an event means to a process.
type Kind int

// Kinds of interest. The zero Kind ignores the event.
const (
	Ignore Kind = iota
	// KindStart starts the process (or continues it if it runs already).
	KindStart
	// KindContinue continues a running process; ignored if there is none.
	KindContinue
	// KindStop handles the event, then stops the process, leaving a tombstone.
	KindStop
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case Ignore:
		return "ignore"
	case KindStart:
		return "start"
	case KindContinue:
		return "continue"
	case KindStop:
		return "stop"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Interest is Interested's answer: what the event means, to which process.
type Interest struct {
	Kind      Kind
	ProcessID string
}

// Start starts (or continues) process id.
func Start(id string) Interest { return Interest{Kind: KindStart, ProcessID: id} }

// Continue continues process id, if it runs.
func Continue(id string) Interest { return Interest{Kind: KindContinue, ProcessID: id} }

// Stop handles the event in process id, then stops it.
func Stop(id string) Interest { return Interest{Kind: KindStop, ProcessID: id} }

// Event is an event as a process manager's functions see it: the recorded event and
// its Go value (handlers.Event; Config.Decode, when set, decodes Value instead).
type Event = handlers.Event

// Status is where a process stands.
type Status string

// Statuses of a process record.
const (
	// Running: started, not stopped.
	Running Status = "running"
	// Stopping: its stop event was applied; commands remain in its journal.
	Stopping Status = "stopping"
	// Done: stopped. The record is a tombstone; every later event is ignored.
	Done Status = "done"
)

// Record is the persisted state of one process.
type Record struct {
	Manager   string
	ProcessID string
	// State is the process state S, JSON-encoded.
	State json.RawMessage
	// Pending is the journal: commands accepted but not yet answered, in order.
	Pending []Sent
	// Seq is the index n the next journaled command gets in its id.
	Seq int
	// LastPosition is the global position of the last event applied.
	LastPosition int64
	Status       Status
	// Version counts saves; a save expects the version it loaded (0: no record).
	Version   int64
	UpdatedAt time.Time
}

// StateStore keeps process records.
type StateStore interface {
	// Load returns the record of the process, and false if there is none.
	Load(ctx context.Context, manager, processID string) (Record, bool, error)
	// Save stores r if the stored record's version is r.Version (0: none stored), and
	// returns it with its new version. Otherwise it stores nothing and returns an
	// error wrapping ErrConflict.
	Save(ctx context.Context, r Record) (Record, error)
}

// DispatchError reports a command that got no definite answer.
type DispatchError struct {
	Manager   string
	ProcessID string
	Command   Sent
	// Outcome is the transient outcome, when the Dispatcher returned one.
	Outcome Outcome
	// Err is the Dispatcher's error, nil for a transient Outcome.
	Err error
}

func (e *DispatchError) Error() string {
	why := ""
	if e.Err != nil {
		why = e.Err.Error()
	} else {
		why = e.Outcome.Code + ": " + e.Outcome.Message
	}
	return fmt.Sprintf("process %s/%s: dispatch %s (%s): %s", e.Manager, e.ProcessID, e.Command.Type, e.Command.Options.CommandID, why)
}

// Is makes errors.Is(err, ErrDispatch) true.
func (e *DispatchError) Is(target error) bool { return target == ErrDispatch }

// Unwrap returns the Dispatcher's error.
func (e *DispatchError) Unwrap() error { return e.Err }

// RejectedError reports a refused command the process did not handle.
type RejectedError struct {
	Manager   string
	ProcessID string
	Command   Sent
	Outcome   Outcome
	// Err is the Outcome function's error, nil if there was none.
	Err error
}

func (e *RejectedError) Error() string {
	msg := fmt.Sprintf("process %s/%s: %s (%s) refused: %s: %s", e.Manager, e.ProcessID, e.Command.Type, e.Command.Options.CommandID, e.Outcome.Code, e.Outcome.Message)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is makes errors.Is(err, ErrRejected) true.
func (e *RejectedError) Is(target error) bool { return target == ErrRejected }

// Unwrap returns the Outcome function's error.
func (e *RejectedError) Unwrap() error { return e.Err }

// commandType names a command value the way the aggregate router does: by its
// CommandType() method or its Go type name.
func commandType(v any) string {
	if t, ok := v.(interface{ CommandType() string }); ok {
		return t.CommandType()
	}
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return ""
	}
	return t.Name()
}
