package eventstore

import (
	"context"
	"errors"
	"slices"
	"time"
)

// ErrCommandDecided: the command already has an outcome in the stream — events it
// appended, or a CommandOutcome recorded for it — so nothing was written. Append
// returns it for events whose command (MetaCommandID) has a recorded outcome, and
// RecordOutcome for a command whose events are stored.
var ErrCommandDecided = errors.New("eventstore: the command already has an outcome")

// CommandOutcome is the answer given to a command that appended nothing to its
// stream: a rejection, or a success without events. Recording it makes the answer
// final for the command's id, as stored events make a success final: a retry, or a
// copy of the command delivered late, gets this answer instead of being decided again
// on a newer state.
type CommandOutcome struct {
	// StreamID is the stream of the aggregate that decided.
	StreamID string
	// CommandID is the command's id (scoped to the stream).
	CommandID string
	// StreamVersion is the version of the state the command was decided on.
	StreamVersion int64
	// Code is the wire error code of the answer ("rejected"), or "" for a success
	// without events.
	Code string
	// Message is the error's message, as the client was shown it ("" for a success).
	Message string
	// Reason is the rejection's machine-readable reason (aggregate.Rejection), "" when
	// it had none.
	Reason string
	// CreatedAt is when the store recorded the outcome (set by the store).
	CreatedAt time.Time
}

// OutcomeStore records the outcomes of commands that appended nothing, so that every
// command id gets exactly one outcome: its events, or a recorded outcome, never both.
type OutcomeStore interface {
	// RecordOutcome stores o if, at one instant, stream o.StreamID is at version
	// o.StreamVersion and neither events of o.CommandID nor an outcome of it are stored
	// in the stream; it then returns nil, nil. Otherwise it stores nothing and reports
	// why, in this order: ErrCommandDecided if the command's events are stored; the
	// earlier outcome, with a nil error, if one is recorded; a *WrongVersionError if
	// the stream is at another version (the decision was made on a stale state).
	//
	// Appends of the command's events (with ids derived from the command id, see
	// KeyedCommandIDs) are refused with ErrCommandDecided once its outcome is
	// recorded; one that races with RecordOutcome either commits first, and the
	// outcome is refused, or is refused itself.
	RecordOutcome(ctx context.Context, o CommandOutcome) (*CommandOutcome, error)
	// ReadOutcome returns the outcome recorded for commandID in streamID, or nil.
	ReadOutcome(ctx context.Context, streamID, commandID string) (*CommandOutcome, error)
	// PruneOutcomes deletes the outcomes recorded before before (CreatedAt) and says
	// how many it deleted: a retention window. A command whose outcome is deleted has
	// none any more, so a retry or a late copy of it is decided again, on the state of
	// that time; events are never deleted, so a command that appended keeps its
	// outcome for good.
	PruneOutcomes(ctx context.Context, before time.Time) (int64, error)
}

// ValidateOutcome checks an outcome before it is recorded.
func ValidateOutcome(o CommandOutcome) error {
	if err := ValidateStreamID(o.StreamID); err != nil {
		return err
	}
	if o.CommandID == "" {
		return invalidf("an outcome needs a command id")
	}
	if !validText(o.CommandID) || !validText(o.Code) || !validText(o.Message) || !validText(o.Reason) {
		return invalidf("an outcome's command id, code, message and reason must be valid UTF-8 without NUL")
	}
	if o.StreamVersion < 0 {
		return invalidf("an outcome's stream version must not be negative, got %d", o.StreamVersion)
	}
	return nil
}

// KeyedCommandIDs returns the command ids of an append's idempotent commands: those
// whose events carry the id (MetaCommandID) and have ids derived from it
// (CommandEventID(streamID, id, k) for the command's k-th event in the append), in
// order of first appearance. These are the appends a recorded outcome of the command
// refuses; events whose ids do not derive from their command id (the runtime's
// commands sent without a Command-Id) are not checked.
func KeyedCommandIDs(streamID string, events []EventData) []string {
	var keyed, seen []string
	for _, e := range events {
		id := e.Metadata[MetaCommandID]
		if id == "" || slices.Contains(seen, id) {
			continue // a command is keyed by its first event's id
		}
		seen = append(seen, id)
		if e.ID == CommandEventID(streamID, id, 0) {
			keyed = append(keyed, id)
		}
	}
	return keyed
}
