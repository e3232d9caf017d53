package eventstore

import (
	"errors"
	"fmt"
	"strconv"
)

// Sentinel errors. Implementations wrap them so callers test with errors.Is.
var (
	// ErrWrongVersion: the stream's version did not satisfy the append's expectation.
	// The error is a *WrongVersionError carrying the actual version.
	ErrWrongVersion = errors.New("eventstore: wrong expected version")
	// ErrInvalid: an argument was malformed (empty stream id, no events, bad JSON…).
	ErrInvalid = errors.New("eventstore: invalid argument")
	// ErrDuplicateEventID: an event id of the append is already stored (or repeated
	// within it); nothing was appended. It also matches ErrInvalid. With event ids
	// derived from a command id (CommandEventID), it is how a store refuses a
	// command's events a second time.
	ErrDuplicateEventID = fmt.Errorf("%w: an event id is already stored", ErrInvalid)
	// ErrEventTooLarge: an event's data and metadata exceed the store's size limit.
	ErrEventTooLarge = errors.New("eventstore: event too large")
	// ErrNotFound: no such snapshot (or not with the requested schema version).
	ErrNotFound = errors.New("eventstore: not found")
	// ErrCheckpointConflict: a conditional checkpoint store found another value.
	// The error is a *CheckpointConflictError carrying the current value.
	ErrCheckpointConflict = errors.New("eventstore: checkpoint conflict")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("eventstore: closed")
)

// WrongVersionError reports an append whose expected version did not hold.
type WrongVersionError struct {
	StreamID      string
	Expected      ExpectedVersion
	ActualVersion int64
}

// Error says which stream, what was expected and where the stream is.
func (e *WrongVersionError) Error() string {
	return fmt.Sprintf("eventstore: wrong expected version for stream %q: expected %s, stream is at version %d",
		e.StreamID, e.Expected, e.ActualVersion)
}

// Is makes errors.Is(err, ErrWrongVersion) true.
func (e *WrongVersionError) Is(target error) bool { return target == ErrWrongVersion }

// CheckpointConflictError reports a conditional checkpoint store that lost.
type CheckpointConflictError struct {
	Name     string
	Expected int64
	Actual   int64
}

// Error says which checkpoint and its actual and expected values.
func (e *CheckpointConflictError) Error() string {
	return fmt.Sprintf("eventstore: checkpoint %q is at %d, not the expected %d", e.Name, e.Actual, e.Expected)
}

// Is makes errors.Is(err, ErrCheckpointConflict) true.
func (e *CheckpointConflictError) Is(target error) bool { return target == ErrCheckpointConflict }

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
