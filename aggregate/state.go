package aggregate

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/ringleader-go/ringleader/eventstore"
)

// State is an aggregate's state: user code, pure, no I/O, no clock.
//
// Execute decides: given a command it returns the events to record (values of types
// registered with the aggregate type, or pointers to them) or an error, which rejects
// the command. It must not change the state. Apply folds one event into the state; it
// receives event values (never pointers) decoded from their stored JSON, exactly as
// on rehydration, so live and replayed state cannot drift apart. Apply must not fail:
// an event is a fact.
//
// A State is used by one goroutine at a time. Snapshots serialise it with
// encoding/json, so its fields must be exported (or it must implement
// json.Marshaler and json.Unmarshaler).
type State interface {
	Execute(command any) ([]any, error)
	Apply(event any)
}

// Pointer is the constraint NewType puts on a state type S: *S must implement State.
type Pointer[S any] interface {
	*S
	State
}

// TypeConfig configures an aggregate type. The zero value is usable.
type TypeConfig struct {
	// StreamPrefix is put before the aggregate id to form its stream id, e.g.
	// "account-" makes account "A1" live in stream "account-A1". Default "".
	StreamPrefix string
	// Lifespan decides how long an instance stays live after each command. Nil means
	// DefaultLifespan (live until passivated by the dispatcher's LRU cap).
	Lifespan Lifespan
	// Snapshots sets when snapshots are taken. The zero value takes none.
	Snapshots SnapshotPolicy
	// Timeout is the default dispatch timeout of this type's commands; a route's or a
	// dispatch's own timeout overrides it. Zero means the dispatcher's default.
	Timeout time.Duration
}

// Type is a registered aggregate type: how to make an empty state, which events it
// records, and its policies. Create one with NewType; it is immutable afterwards and
// safe for concurrent use.
type Type struct {
	name      string
	cfg       TypeConfig
	newState  func() State
	stateType reflect.Type
	events    *eventRegistry
	problems  []error
}

// NewType registers an aggregate type named name (used in logs and snapshots) whose
// state is S; *S must implement State. events are example values, one per event type
// the aggregate records (e.g. MoneyDeposited{}); each is named by its Go type name or
// by its EventType() string method. Problems (duplicate names, a nil example) are
// reported by Router.Validate.
//
//	account := aggregate.NewType[Account]("account", aggregate.TypeConfig{StreamPrefix: "account-"},
//		AccountOpened{}, MoneyDeposited{}, MoneyWithdrawn{}, AccountClosed{})
func NewType[S any, P Pointer[S]](name string, cfg TypeConfig, events ...any) *Type {
	t := &Type{
		name:      name,
		cfg:       cfg,
		newState:  func() State { return P(new(S)) },
		stateType: reflect.TypeFor[S](),
		events:    newEventRegistry(name),
	}
	if name == "" {
		t.problems = append(t.problems, fmt.Errorf("aggregate type of state %s has no name", t.stateType))
	}
	if err := cfg.Snapshots.validate(); err != nil {
		t.problems = append(t.problems, fmt.Errorf("aggregate type %s: %w", name, err))
	}
	for _, e := range events {
		if err := t.events.register(e); err != nil {
			t.problems = append(t.problems, err)
		}
	}
	return t
}

// Name returns the aggregate type's name.
func (t *Type) Name() string { return t.name }

// StreamID returns the stream id of the aggregate with id aggregateID.
func (t *Type) StreamID(aggregateID string) string { return t.cfg.StreamPrefix + aggregateID }

// EventTypes returns the names of the event types the aggregate records, sorted.
func (t *Type) EventTypes() []string { return t.events.names() }

// DecodeEvent decodes an event of type name from its stored JSON into the registered
// Go type (a value, not a pointer).
func (t *Type) DecodeEvent(name string, data json.RawMessage) (any, error) {
	return t.events.decode(name, data)
}

// lifespan returns the configured lifespan or the default.
func (t *Type) lifespan() Lifespan {
	if t.cfg.Lifespan == nil {
		return DefaultLifespan{}
	}
	return t.cfg.Lifespan
}

// cloneState returns a deep copy of s made through its JSON form, for callers that
// asked for the resulting state: the live state belongs to the instance goroutine.
func (t *Type) cloneState(s State) (any, error) {
	data, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("aggregate: copy state of %s: %w", t.name, err)
	}
	c := t.newState()
	if err := json.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("aggregate: copy state of %s: %w", t.name, err)
	}
	return c, nil
}

// EncodeEvent encodes event, a value (or pointer) of one of the type's registered
// event types, as the store keeps it: its registered name and its JSON. Tests use it
// to write an aggregate's history (ringtest.Given); the dispatcher encodes the
// events Execute returns the same way.
func (t *Type) EncodeEvent(event any) (eventstore.EventData, error) {
	out, err := t.events.encode([]any{event}, nil)
	if err != nil {
		return eventstore.EventData{}, err
	}
	return out[0], nil
}
