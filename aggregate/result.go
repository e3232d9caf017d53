package aggregate

import (
	"context"
	"encoding/json"

	"github.com/google/uuid"
)

// Result is the outcome of a successful dispatch: what the wire reply carries.
type Result struct {
	// CommandID is the command's id (the caller's, or the generated one).
	CommandID string
	// CommandType, AggregateType, AggregateID and StreamID say where it ran.
	CommandType   string
	AggregateType string
	AggregateID   string
	StreamID      string
	// AggregateVersion is the aggregate's version after the command: the version of
	// its last event, or, when it recorded none, the version it ran against. For a
	// duplicate it is the version of the original's last event.
	AggregateVersion int64
	// Events are the events the command recorded (for a duplicate: the original's),
	// in stream order. Empty when the command recorded none.
	Events []Event
	// Duplicate is set when the command id had already been applied; nothing was
	// executed or appended this time.
	Duplicate bool
	// Consistency is the consistency the dispatch waited for.
	Consistency Consistency
	// State is a copy of the aggregate's state after the command, only with
	// ReturnState (nil for a duplicate: the state after the original is gone).
	State any
}

// Event is one recorded event in a Result.
type Event struct {
	// Type is the event's registered name.
	Type string
	// StreamVersion is its version in the aggregate's stream.
	StreamVersion int64
	// GlobalPosition is its place in the store's global order.
	GlobalPosition int64
	// ID is the event's unique id.
	ID uuid.UUID
	// Data is its JSON body as stored.
	Data json.RawMessage
	// Metadata is what was stored beside it.
	Metadata map[string]string
	// Value is the event decoded into its registered Go type.
	Value any
}

// ConsistencyWaiter is the hook the handlers package implements for Strong
// consistency: it blocks until every strongly consistent handler has processed the
// result's events, or ctx ends.
type ConsistencyWaiter interface {
	WaitFor(ctx context.Context, res *Result) error
}
