package aggregate

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Dispatch wraps them (often in one of the typed errors below), so
// callers test with errors.Is; CodeOf maps any of them to a wire error code.
var (
	// ErrUnknownCommand: no route is registered for the command's type.
	ErrUnknownCommand = errors.New("aggregate: unknown command")
	// ErrInvalid: the command is malformed (bad JSON, missing identity, failed
	// validation). The error is usually an *InvalidError.
	ErrInvalid = errors.New("aggregate: invalid command")
	// ErrRejected: the aggregate (or a middleware) refused the command. The error is a
	// *RejectedError wrapping the domain error, or a *PanicError.
	ErrRejected = errors.New("aggregate: command rejected")
	// ErrConflict: optimistic-concurrency retries were exhausted (*ConflictError) or
	// the aggregate was not at the version the caller expected (*ExpectedVersionError).
	ErrConflict = errors.New("aggregate: conflict")
	// ErrTimeout: the command's deadline passed before it completed. A timed-out
	// command may still have been applied; retry it with the same command id.
	ErrTimeout = errors.New("aggregate: timeout")
	// ErrConsistencyTimeout: the command succeeded and its events are stored, but the
	// strongly consistent handlers had not processed them by the deadline. Dispatch
	// returns the Result beside it. A retry with the same command id appends nothing
	// and waits again.
	ErrConsistencyTimeout = errors.New("aggregate: stored, but strong consistency not reached in time")
	// ErrUnavailable: the dispatcher is closed or the aggregate could not be loaded or
	// stored (event store down, unknown event type in its stream).
	ErrUnavailable = errors.New("aggregate: unavailable")
	// ErrClosed: the dispatcher was closed. It is an ErrUnavailable.
	ErrClosed = fmt.Errorf("%w: dispatcher closed", ErrUnavailable)
)

// InvalidError reports a malformed command. Its message is written for the author of
// a client in any language: it names the field and says what is wrong without Go type
// names (the cause, in Err, may have them).
type InvalidError struct {
	// CommandType is the command's registered type name, if known.
	CommandType string
	// Field is the JSON name (a dotted path for a nested one) of the field at fault,
	// "" when the problem is not about one field.
	Field string
	// Problem says what is wrong, for people.
	Problem string
	// Err is the underlying cause (a JSON error, a Validate error), if any.
	Err error
}

// Error returns "aggregate: invalid command <type>: <Message>".
func (e *InvalidError) Error() string {
	msg := "aggregate: invalid command"
	if e.CommandType != "" {
		msg += " " + e.CommandType
	}
	return msg + ": " + e.Message()
}

// Message is what the wire reply's error.message says: `field "<Field>": <Problem>`,
// or the Problem alone.
func (e *InvalidError) Message() string {
	if e.Field != "" {
		return fmt.Sprintf("field %q: %s", e.Field, e.Problem)
	}
	return e.Problem
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// Unwrap returns the cause.
func (e *InvalidError) Unwrap() error { return e.Err }

// RejectedError wraps the error an aggregate's Execute (or a middleware's Before)
// returned. Its message is the domain error's message, unchanged, because that is
// what the caller is shown.
type RejectedError struct {
	Err error
	// StreamVersion is the aggregate's version the command was rejected at (0 when a
	// middleware rejected it before the aggregate was asked).
	StreamVersion int64
}

func (e *RejectedError) Error() string { return e.Err.Error() }

// Is makes errors.Is(err, ErrRejected) true.
func (e *RejectedError) Is(target error) bool { return target == ErrRejected }

// Unwrap returns the domain error, so errors.Is(err, bank.ErrInsufficientFunds) works.
func (e *RejectedError) Unwrap() error { return e.Err }

// PriorRejectionError is the rejection recorded for a command id that was rejected
// before: a retry of the command, or a copy delivered late, gets it (wrapped in a
// *RejectedError) instead of being decided again. Its message and reason are the
// original rejection's; the original domain error's Go type is not stored, but
// errors.Is matches it against a *Rejection with the same reason.
type PriorRejectionError struct {
	// Message is the original rejection's message.
	Message string
	// Reason is the original rejection's reason ("" if it had none).
	Reason string
	// StreamVersion is the version of the state the command was rejected on.
	StreamVersion int64
	// At is when the rejection was recorded.
	At time.Time
}

func (e *PriorRejectionError) Error() string { return e.Message }

// RejectionReason implements Reasoner.
func (e *PriorRejectionError) RejectionReason() string { return e.Reason }

// Is reports whether target is a *Rejection with the recorded reason.
func (e *PriorRejectionError) Is(target error) bool {
	t, ok := target.(*Rejection)
	return ok && e.Reason != "" && t.Reason == e.Reason
}

// PanicError reports a panic in user code (Execute, Apply, a snapshot codec). The
// command fails, the instance's state is discarded, and the next command rehydrates
// it from the store. It counts as rejected: retrying will usually panic again.
type PanicError struct {
	// StreamID is the aggregate's stream.
	StreamID string
	// Where names the user code that panicked: "execute", "apply".
	Where string
	// Value is what was passed to panic.
	Value any
	// Stack is the goroutine's stack at the panic.
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("aggregate: %s panicked on stream %q: %v", e.Where, e.StreamID, e.Value)
}

// Is makes errors.Is(err, ErrRejected) true.
func (e *PanicError) Is(target error) bool { return target == ErrRejected }

// ConflictError reports that a command still met a newer stream version after the
// allowed number of reload-and-retry rounds.
type ConflictError struct {
	StreamID string
	// Attempts is how many times the command was executed.
	Attempts int
	// Err is the store's last *eventstore.WrongVersionError.
	Err error
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("aggregate: conflict on stream %q after %d attempts: %v", e.StreamID, e.Attempts, e.Err)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Unwrap returns the store's error.
func (e *ConflictError) Unwrap() error { return e.Err }

// ExpectedVersionError reports a dispatch with ExpectVersion(n) that found the
// aggregate at another version. Nothing was executed.
type ExpectedVersionError struct {
	StreamID string
	// Expected is the version the caller expected, or ExpectedExisting.
	Expected int64
	// Actual is the version the aggregate was at.
	Actual int64
}

// ExpectedExisting is ExpectedVersionError.Expected for ExpectExists.
const ExpectedExisting int64 = -1

func (e *ExpectedVersionError) Error() string {
	if e.Expected == ExpectedExisting {
		return fmt.Sprintf("aggregate: stream %q has no events; the command expected it to exist", e.StreamID)
	}
	return fmt.Sprintf("aggregate: stream %q is at version %d, not the expected %d", e.StreamID, e.Actual, e.Expected)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ExpectedVersionError) Is(target error) bool { return target == ErrConflict }

// UnknownEventError reports an event type that the aggregate type has not registered:
// returned by Execute (a programming error, code rejected) or found in the stream
// while rehydrating (the deployment lacks a type, code unavailable).
type UnknownEventError struct {
	AggregateType string
	EventType     string
}

func (e *UnknownEventError) Error() string {
	return fmt.Sprintf("aggregate: event type %s is not registered with aggregate type %s", e.EventType, e.AggregateType)
}

func invalid(commandType, problem string, err error) error {
	return &InvalidError{CommandType: commandType, Problem: problem, Err: err}
}
