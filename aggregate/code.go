package aggregate

import (
	"context"
	"errors"

	"github.com/ringleader-go/ringleader/eventstore"
)

// Code classifies a dispatch error for the wire reply (DESIGN.md, "Wire contract").
type Code string

// The wire error codes.
const (
	// CodeInvalid: malformed JSON, missing identity, failed validation, over a size limit.
	CodeInvalid Code = "invalid"
	// CodeUnknownCommand: no route for the command type.
	CodeUnknownCommand Code = "unknown_command"
	// CodeRejected: the aggregate (or a middleware) refused the command, or user code
	// panicked.
	CodeRejected Code = "rejected"
	// CodeConflict: concurrency retries exhausted, or the expected version did not hold.
	CodeConflict Code = "conflict"
	// CodeTimeout: the deadline passed; the command may or may not have been applied.
	CodeTimeout Code = "timeout"
	// CodeUnavailable: dispatcher closed, store unreachable, or any unclassified error.
	CodeUnavailable Code = "unavailable"
)

// CodeOf maps err to its wire code: "" for nil, CodeUnavailable for an error it does
// not recognise (an I/O failure is the likely cause; a retry may succeed).
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	if c, ok := knownCode(err); ok {
		return c
	}
	return CodeUnavailable
}

// knownCode classifies err, reporting false when nothing in its chain is recognised.
// The order matters: a typed error is checked before the context errors it may wrap.
func knownCode(err error) (Code, bool) {
	switch {
	case errors.Is(err, ErrUnknownCommand):
		return CodeUnknownCommand, true
	case errors.Is(err, ErrInvalid), errors.Is(err, eventstore.ErrInvalid), errors.Is(err, eventstore.ErrEventTooLarge):
		return CodeInvalid, true
	case errors.Is(err, ErrRejected):
		return CodeRejected, true
	case errors.Is(err, ErrConflict), errors.Is(err, eventstore.ErrWrongVersion):
		return CodeConflict, true
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return CodeTimeout, true
	case errors.Is(err, ErrUnavailable), errors.Is(err, eventstore.ErrClosed), errors.Is(err, context.Canceled):
		return CodeUnavailable, true
	}
	return "", false
}
