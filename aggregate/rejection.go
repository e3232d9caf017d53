package aggregate

import (
	"errors"
	"fmt"
	"regexp"
)

// Rejection is a domain error with a stable, machine-readable reason: what an
// aggregate returns from Execute to refuse a command in a way a program can act on.
// The reason travels on the wire (error.reason, docs/wire-contract.md), is recorded
// with the command's outcome, so a retry of the same Command-Id gets the same reason,
// and reaches process managers in process.Outcome.Reason.
//
//	var ErrInsufficientFunds = aggregate.Reject("insufficient_funds", "insufficient funds")
//
// errors.Is matches two rejections with the same reason, so
// errors.Is(err, ErrInsufficientFunds) holds for a Rejectf with that reason and for
// the recorded rejection a duplicate command gets.
type Rejection struct {
	// Reason is the machine-readable reason (see ValidReason).
	Reason string
	// Message is for people.
	Message string
}

// Error returns the message.
func (r *Rejection) Error() string { return r.Message }

// RejectionReason implements Reasoner.
func (r *Rejection) RejectionReason() string { return r.Reason }

// Is reports whether target is a *Rejection with the same reason.
func (r *Rejection) Is(target error) bool {
	t, ok := target.(*Rejection)
	return ok && t.Reason == r.Reason
}

// Reject returns a *Rejection. It panics if reason is not valid (see ValidReason): a
// reason is a constant of the domain, so a bad one is a programming error, found
// when the package's variables are initialised.
func Reject(reason, message string) *Rejection {
	if !ValidReason(reason) {
		panic(fmt.Sprintf("aggregate: rejection reason %q must match %s", reason, reasonPattern))
	}
	return &Rejection{Reason: reason, Message: message}
}

// Rejectf is Reject with a formatted message.
func Rejectf(reason, format string, args ...any) *Rejection {
	return Reject(reason, fmt.Sprintf(format, args...))
}

// Reasoner is implemented by domain errors that carry a rejection reason. Any error
// type may implement it; *Rejection does.
type Reasoner interface {
	RejectionReason() string
}

// reasonPattern is what a reason may look like: short, lower-case snake case, so that
// clients in any language can switch on it.
const reasonPattern = `^[a-z][a-z0-9_]{0,63}$`

var reasonRE = regexp.MustCompile(reasonPattern)

// ValidReason reports whether reason can be a rejection reason: 1 to 64 characters
// of lower-case letters, digits and underscores, starting with a letter.
func ValidReason(reason string) bool { return reasonRE.MatchString(reason) }

// ReasonOf returns the rejection reason in err's chain (a Reasoner's, when valid),
// or "".
func ReasonOf(err error) string {
	var r Reasoner
	if errors.As(err, &r) {
		if reason := r.RejectionReason(); ValidReason(reason) {
			return reason
		}
	}
	return ""
}

// FieldError is a validation error about one field of a command. A command's
// Validate method returns one to make the invalid answer name the field
// (error.field on the wire):
//
//	if c.Amount <= 0 {
//		return aggregate.InvalidField("amount", "must be positive, got %d", c.Amount)
//	}
type FieldError struct {
	// Field is the field's JSON name (a dotted path for a nested one).
	Field string
	// Problem says what is wrong with it.
	Problem string
}

// Error returns `field "<Field>": <Problem>`.
func (e *FieldError) Error() string { return fmt.Sprintf("field %q: %s", e.Field, e.Problem) }

// InvalidField returns a *FieldError with a formatted problem.
func InvalidField(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}
