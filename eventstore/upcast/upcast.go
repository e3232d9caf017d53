package upcast

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/transform"
)

// MetaVersion is the metadata key holding an event's payload version ("1", "2", …).
// An event without it is version 1.
const MetaVersion = eventstore.MetaEventVersion

// Func turns the payload of version n into the payload of version n+1.
type Func func(data json.RawMessage) (json.RawMessage, error)

// Errors.
var (
	// ErrGap: no upcaster from some version of an event type to the next.
	ErrGap = errors.New("upcast: missing upcaster")
	// ErrTooNew: an event's version is above what this code knows.
	ErrTooNew = errors.New("upcast: event version newer than the code")
	// ErrBadVersion: an event's MetaVersion is not a positive whole number.
	ErrBadVersion = errors.New("upcast: bad event version")
)

// GapError says which step of which event type's chain is missing. It matches ErrGap.
type GapError struct {
	// EventType is the event type whose chain has the gap.
	EventType string
	// From is the version no upcaster starts from.
	From int
	// Current is the version the chain should reach.
	Current int
}

// Error says which step is missing.
func (e *GapError) Error() string {
	return fmt.Sprintf("upcast: event type %s: no upcaster from version %d to %d (current version %d)", e.EventType, e.From, e.From+1, e.Current)
}

// Unwrap makes errors.Is(err, ErrGap) hold.
func (e *GapError) Unwrap() error { return ErrGap }

// TooNewError is an event whose version is above the type's current version. It
// matches ErrTooNew.
type TooNewError struct {
	// EventType is the event's type.
	EventType string
	// Version is the event's stored version.
	Version int
	// Current is the highest version this code knows (1 for an unregistered type).
	Current int
}

// Error says which version was met and which the code knows.
func (e *TooNewError) Error() string {
	return fmt.Sprintf("upcast: event type %s: stored version %d is newer than this code's version %d (deploy newer code to read it)", e.EventType, e.Version, e.Current)
}

// Unwrap makes errors.Is(err, ErrTooNew) hold.
func (e *TooNewError) Unwrap() error { return ErrTooNew }

// typeInfo is one event type's versioning.
type typeInfo struct {
	current  int
	steps    map[int]Func // from version → upcaster to from+1
	curValue string       // strconv.Itoa(current)
}

// Registry holds event types' current versions and upcasters. Create it with New.
type Registry struct {
	types    map[string]*typeInfo
	problems []error
}

var _ transform.Transform = (*Registry)(nil)

// New returns an empty registry.
func New() *Registry { return &Registry{types: map[string]*typeInfo{}} }

func (r *Registry) info(eventType string) *typeInfo {
	t := r.types[eventType]
	if t == nil {
		t = &typeInfo{current: 1, curValue: "1", steps: map[int]Func{}}
		r.types[eventType] = t
	}
	return t
}

// Current sets the version of eventType that the code writes now (at least 1).
func (r *Registry) Current(eventType string, version int) *Registry {
	if version < 1 {
		r.problems = append(r.problems, fmt.Errorf("upcast: event type %s: current version %d must be at least 1", eventType, version))
		return r
	}
	t := r.info(eventType)
	t.current, t.curValue = version, strconv.Itoa(version)
	return r
}

// Add registers the upcaster of eventType from version from to from+1.
func (r *Registry) Add(eventType string, from int, f Func) *Registry {
	switch {
	case from < 1:
		r.problems = append(r.problems, fmt.Errorf("upcast: event type %s: upcaster from version %d: versions start at 1", eventType, from))
	case f == nil:
		r.problems = append(r.problems, fmt.Errorf("upcast: event type %s: nil upcaster from version %d", eventType, from))
	default:
		t := r.info(eventType)
		if _, dup := t.steps[from]; dup {
			r.problems = append(r.problems, fmt.Errorf("upcast: event type %s: two upcasters from version %d", eventType, from))
		}
		t.steps[from] = f
	}
	return r
}

// Validate reports every registration problem at once: bad versions, duplicate
// upcasters, a gap in a chain, an upcaster at or past the current version.
func (r *Registry) Validate() error {
	errs := slices.Clone(r.problems)
	for _, name := range slices.Sorted(maps.Keys(r.types)) {
		t := r.types[name]
		for v := 1; v < t.current; v++ {
			if t.steps[v] == nil {
				errs = append(errs, &GapError{EventType: name, From: v, Current: t.current})
			}
		}
		for _, from := range slices.Sorted(maps.Keys(t.steps)) {
			if from >= t.current {
				errs = append(errs, fmt.Errorf("upcast: event type %s: upcaster from version %d but the current version is %d", name, from, t.current))
			}
		}
	}
	return errors.Join(errs...)
}

// Version returns the current version of eventType (1 if it is not registered).
func (r *Registry) Version(eventType string) int {
	if t := r.types[eventType]; t != nil {
		return t.current
	}
	return 1
}

// Upcast turns data of eventType at version from into the current shape.
func (r *Registry) Upcast(eventType string, from int, data json.RawMessage) (json.RawMessage, error) {
	t := r.types[eventType]
	if t == nil {
		if from > 1 {
			return nil, &TooNewError{EventType: eventType, Version: from, Current: 1}
		}
		return data, nil
	}
	return t.upcast(eventType, from, data)
}

func (t *typeInfo) upcast(eventType string, from int, data json.RawMessage) (_ json.RawMessage, err error) {
	if from > t.current {
		return nil, &TooNewError{EventType: eventType, Version: from, Current: t.current}
	}
	for v := from; v < t.current; v++ {
		f := t.steps[v]
		if f == nil {
			return nil, &GapError{EventType: eventType, From: v, Current: t.current}
		}
		if data, err = call(f, data); err != nil {
			return nil, fmt.Errorf("upcast: event type %s from version %d to %d: %w", eventType, v, v+1, err)
		}
		if !json.Valid(data) {
			return nil, fmt.Errorf("upcast: event type %s from version %d to %d: upcaster returned invalid JSON", eventType, v, v+1)
		}
	}
	return data, nil
}

// call runs an upcaster, turning a panic into an error.
func call(f Func, data json.RawMessage) (out json.RawMessage, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("upcaster panicked: %v", p)
		}
	}()
	return f(data)
}

// EncodeEvent implements transform.Transform: it stamps events of registered types
// with their current version.
func (r *Registry) EncodeEvent(_ context.Context, _ string, e *eventstore.EventData) error {
	t := r.types[e.Type]
	if t == nil {
		return nil
	}
	md := make(map[string]string, len(e.Metadata)+1)
	maps.Copy(md, e.Metadata)
	md[MetaVersion] = t.curValue
	e.Metadata = md
	return nil
}

// DecodeEvent implements transform.Transform: it upcasts events of older versions
// to the current one.
func (r *Registry) DecodeEvent(_ context.Context, e *eventstore.RecordedEvent) error {
	t := r.types[e.Type]
	stamp, stamped := e.Metadata[MetaVersion]
	if t == nil {
		if stamped && stamp != "1" {
			// Written by code that versions this type; this code does not know it.
			v, err := parseVersion(e.Type, stamp)
			if err != nil {
				return err
			}
			return &TooNewError{EventType: e.Type, Version: v, Current: 1}
		}
		return nil
	}
	if stamp == t.curValue || (!stamped && t.current == 1) {
		return nil
	}
	from := 1
	if stamped {
		v, err := parseVersion(e.Type, stamp)
		if err != nil {
			return err
		}
		from = v
	}
	data, err := t.upcast(e.Type, from, e.Data)
	if err != nil {
		return err
	}
	md := make(map[string]string, len(e.Metadata)+1)
	maps.Copy(md, e.Metadata)
	md[MetaVersion] = t.curValue
	e.Data, e.Metadata = data, md
	return nil
}

func parseVersion(eventType, s string) (int, error) {
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		return 0, fmt.Errorf("%w: event type %s: %s %q is not a version number", ErrBadVersion, eventType, MetaVersion, s)
	}
	return v, nil
}
