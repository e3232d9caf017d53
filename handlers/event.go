package handlers

import (
	"fmt"

	"github.com/ringleader-go/ringleader/eventstore"
)

// Event is an event as handlers, projections and process managers receive it: the
// recorded event (stream, version, position, metadata, raw data) and its Go value.
//
// Value is the event decoded into the type its aggregate type registered (a value,
// not a pointer), so a handler reads events with a type switch:
//
//	switch v := e.Value.(type) {
//	case shop.OrderPlaced:
//		…
//	}
//
// It is nil for an event type no aggregate type of the application registered
// (another application's events, or a type kept only for upcasting); read Type and
// Data then. Values are decoded for each handler separately, so a handler may keep
// them; it must still not modify the RecordedEvent's Data or Metadata, which are
// shared.
type Event struct {
	eventstore.RecordedEvent
	// Value is the decoded event, or nil for an unregistered event type.
	Value any
}

// decode wraps e for handlers, decoding its value with RunnerConfig.Decode.
func (r *Runner) decode(e eventstore.RecordedEvent) (Event, error) {
	if r.cfg.Decode == nil {
		return Event{RecordedEvent: e}, nil
	}
	v, err := r.cfg.Decode(e)
	if err != nil {
		return Event{RecordedEvent: e}, fmt.Errorf("handlers: decode %s at %d: %w", e.Type, e.GlobalPosition, err)
	}
	return Event{RecordedEvent: e, Value: v}, nil
}
