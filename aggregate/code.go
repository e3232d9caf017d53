package aggregate

import (
	"context"
	"errors"

	"github.com/ringleader-go/ringleader/errcode"
	"github.com/ringleader-go/ringleader/eventstore"
)

// CodeOf maps err to its wire code (package errcode): "" for nil,
// errcode.Unavailable for an error it does not recognise (an I/O failure is the
// likely cause; a retry may succeed).
func CodeOf(err error) string {
	if err == nil {
		return ""
	}
	if c, ok := knownCode(err); ok {
		return c
	}
	return errcode.Unavailable
}

// knownCode classifies err, reporting false when nothing in its chain is recognised.
// The order matters: a typed error is checked before the context errors it may wrap.
func knownCode(err error) (string, bool) {
	switch {
	case errors.Is(err, ErrUnknownCommand):
		return errcode.UnknownCommand, true
	case errors.Is(err, ErrInvalid), errors.Is(err, eventstore.ErrInvalid), errors.Is(err, eventstore.ErrEventTooLarge):
		return errcode.Invalid, true
	case errors.Is(err, ErrRejected):
		return errcode.Rejected, true
	case errors.Is(err, ErrConflict), errors.Is(err, eventstore.ErrWrongVersion):
		return errcode.Conflict, true
	case errors.Is(err, ErrConsistencyTimeout):
		return errcode.ConsistencyTimeout, true
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return errcode.Timeout, true
	case errors.Is(err, ErrUnavailable), errors.Is(err, eventstore.ErrClosed), errors.Is(err, context.Canceled):
		return errcode.Unavailable, true
	}
	return "", false
}
