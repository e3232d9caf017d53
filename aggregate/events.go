package aggregate

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"

	"github.com/ringleader-go/ringleader/eventstore"
)

// EventTyper lets an event (or command) type choose its wire name instead of its Go
// type name. Implement it on the value type.
type EventTyper interface {
	EventType() string
}

// eventRegistry maps event type names to Go types and back for one aggregate type.
// It is filled by NewType and read-only afterwards.
type eventRegistry struct {
	aggregate string
	byName    map[string]reflect.Type
	byType    map[reflect.Type]string
}

func newEventRegistry(aggregate string) *eventRegistry {
	return &eventRegistry{aggregate: aggregate, byName: map[string]reflect.Type{}, byType: map[reflect.Type]string{}}
}

// register adds the type of example (dereferenced if a pointer).
func (r *eventRegistry) register(example any) error {
	if example == nil {
		return fmt.Errorf("aggregate type %s: nil event example", r.aggregate)
	}
	rt := reflect.TypeOf(example)
	if rt.Kind() == reflect.Pointer {
		rt = rt.Elem()
	}
	name := typeName(reflect.New(rt).Elem().Interface(), rt)
	if name == "" {
		return fmt.Errorf("aggregate type %s: event type %s has no name", r.aggregate, rt)
	}
	if _, ok := r.byType[rt]; ok {
		return fmt.Errorf("aggregate type %s: event type %s registered twice", r.aggregate, rt)
	}
	if prev, ok := r.byName[name]; ok {
		return fmt.Errorf("aggregate type %s: event name %q registered for both %s and %s", r.aggregate, name, prev, rt)
	}
	r.byName[name] = rt
	r.byType[rt] = name
	return nil
}

// typeName is v's EventType() if it has one, else the Go type's name.
func typeName(v any, rt reflect.Type) string {
	if n, ok := v.(EventTyper); ok {
		return n.EventType()
	}
	return rt.Name()
}

func (r *eventRegistry) names() []string { return slices.Sorted(maps.Keys(r.byName)) }

// encode serialises events returned by Execute, adding metadata to each.
func (r *eventRegistry) encode(events []any, metadata map[string]string) ([]eventstore.EventData, error) {
	out := make([]eventstore.EventData, len(events))
	for i, e := range events {
		rv := reflect.ValueOf(e)
		if rv.Kind() == reflect.Pointer && !rv.IsNil() {
			rv = rv.Elem()
		}
		if !rv.IsValid() {
			return nil, &UnknownEventError{AggregateType: r.aggregate, EventType: "<nil>"}
		}
		name, ok := r.byType[rv.Type()]
		if !ok {
			return nil, &UnknownEventError{AggregateType: r.aggregate, EventType: rv.Type().String()}
		}
		data, err := json.Marshal(rv.Interface())
		if err != nil {
			return nil, fmt.Errorf("aggregate: encode event %s: %w", name, err)
		}
		out[i] = eventstore.EventData{Type: name, Data: data, Metadata: metadata}
	}
	return out, nil
}

// decode turns stored JSON into a value of the registered type.
func (r *eventRegistry) decode(name string, data json.RawMessage) (any, error) {
	rt, ok := r.byName[name]
	if !ok {
		return nil, &UnknownEventError{AggregateType: r.aggregate, EventType: name}
	}
	p := reflect.New(rt)
	if err := json.Unmarshal(data, p.Interface()); err != nil {
		return nil, fmt.Errorf("aggregate: decode event %s of aggregate type %s: %w", name, r.aggregate, err)
	}
	return p.Elem().Interface(), nil
}

// has reports whether name is a registered event type.
func (r *eventRegistry) has(name string) bool {
	_, ok := r.byName[name]
	return ok
}
