package aggregate

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ringleader-go/ringleader/eventstore"
)

// CommandTyper lets a command type choose its wire name (the last token of its NATS
// subject) instead of its Go type name. Implement it on the value type.
type CommandTyper interface {
	CommandType() string
}

// Router maps command types to aggregate types and identities, and holds the
// middleware run around their dispatch. Build it at start-up (NewRouter, Route, Use,
// Include), then call Validate; after that it is read-only and safe for concurrent use.
type Router struct {
	routes     map[string]*route
	byType     map[reflect.Type]*route
	middleware []Middleware
	problems   []error

	// byPrefix is Types, longest stream prefix first, for DecodeEvent; computed on
	// its first call (the router is read-only by then).
	prefixOnce sync.Once
	byPrefix   []*Type
}

// route is one command type's registration.
type route struct {
	name     string
	goType   reflect.Type
	typ      *Type
	identity func(any) string
	// identityField is the JSON name of the string field identity returns, when
	// probing found one (see identityFieldOf); it names the field in the answer to a
	// command without identity.
	identityField string
	timeout       time.Duration
	// inherited is the middleware of the routers this route was included from,
	// outermost first; it runs after the including router's own middleware.
	inherited []Middleware
}

// RouteOptions are a route's optional settings.
type RouteOptions struct {
	// Timeout is the default dispatch timeout of this command type; zero means the
	// aggregate type's, then the dispatcher's default.
	Timeout time.Duration
}

// NewRouter returns an empty router.
func NewRouter() *Router {
	return &Router{routes: map[string]*route{}, byType: map[reflect.Type]*route{}}
}

// Route registers command type C: it is executed by aggregate type t, on the instance
// whose id identity returns (the stream id is t's prefix plus that id). C is named by
// its Go type name or its CommandType() method. At most one opts is used. Problems
// (a name registered twice, a nil identity) are reported by Validate.
//
//	aggregate.Route(r, account, func(c DepositMoney) string { return c.AccountNumber })
func Route[C any](r *Router, t *Type, identity func(C) string, opts ...RouteOptions) {
	rt := reflect.TypeFor[C]()
	var zero C
	name := commandName(zero, rt)
	var o RouteOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	switch {
	case rt.Kind() == reflect.Pointer || rt.Kind() == reflect.Interface:
		r.problems = append(r.problems, fmt.Errorf("command type %s: register the value type, not a pointer or interface", rt))
		return
	case name == "":
		r.problems = append(r.problems, fmt.Errorf("command type %s has no name", rt))
		return
	case t == nil:
		r.problems = append(r.problems, fmt.Errorf("command %s: nil aggregate type", name))
		return
	case identity == nil:
		r.problems = append(r.problems, fmt.Errorf("command %s: nil identity function", name))
		return
	}
	r.add(&route{
		name:          name,
		goType:        rt,
		typ:           t,
		identity:      func(c any) string { return identity(c.(C)) },
		identityField: identityFieldOf(identity),
		timeout:       o.Timeout,
	})
}

func commandName(v any, rt reflect.Type) string {
	if n, ok := v.(CommandTyper); ok {
		return n.CommandType()
	}
	return rt.Name()
}

func (r *Router) add(rt *route) {
	if prev, ok := r.routes[rt.name]; ok {
		r.problems = append(r.problems, fmt.Errorf("command name %q routed twice (%s to %s, %s to %s)",
			rt.name, prev.goType, prev.typ.name, rt.goType, rt.typ.name))
		return
	}
	if prev, ok := r.byType[rt.goType]; ok {
		r.problems = append(r.problems, fmt.Errorf("command type %s routed twice (as %q and %q)", rt.goType, prev.name, rt.name))
		return
	}
	r.routes[rt.name] = rt
	r.byType[rt.goType] = rt
}

// Use appends middleware run around every dispatch through this router, in order
// for Before and in reverse order for After and OnFailure.
func (r *Router) Use(mw ...Middleware) {
	r.middleware = append(r.middleware, mw...)
}

// Include adds the routes of others to r (composing routers, as Commanded's
// composite router does). Each included route keeps the middleware of the router it
// came from, as it is at the time of the call; it runs after r's own middleware.
// Problems found in others, and commands routed by both, are reported by Validate.
func (r *Router) Include(others ...*Router) {
	for _, o := range others {
		if o == nil || o == r {
			continue
		}
		r.problems = append(r.problems, o.problems...)
		for _, name := range slices.Sorted(maps.Keys(o.routes)) {
			rt := *o.routes[name]
			rt.inherited = append(slices.Clone(o.middleware), rt.inherited...)
			r.add(&rt)
		}
	}
}

// Validate returns every problem found while building the router (and in its
// aggregate types), joined; nil if it is ready to dispatch.
func (r *Router) Validate() error {
	errs := slices.Clone(r.problems)
	seen := map[*Type]bool{}
	names := map[string]*Type{}
	for _, name := range slices.Sorted(maps.Keys(r.routes)) {
		t := r.routes[name].typ
		if seen[t] {
			continue
		}
		seen[t] = true
		errs = append(errs, t.problems...)
		if other, ok := names[t.name]; ok && other != t {
			errs = append(errs, fmt.Errorf("two aggregate types are named %q", t.name))
		}
		names[t.name] = t
	}
	for i, mw := range r.middleware {
		if mw.Before == nil && mw.After == nil && mw.OnFailure == nil {
			errs = append(errs, fmt.Errorf("middleware %d (%q) has no function", i, mw.Name))
		}
	}
	if len(r.routes) == 0 {
		errs = append(errs, errors.New("router has no routes"))
	}
	return errors.Join(errs...)
}

// CommandTypes returns the names of the routed command types, sorted.
func (r *Router) CommandTypes() []string { return slices.Sorted(maps.Keys(r.routes)) }

// Types returns the routed aggregate types, ordered by name.
func (r *Router) Types() []*Type {
	seen := map[*Type]bool{}
	var out []*Type
	for _, rt := range r.routes {
		if !seen[rt.typ] {
			seen[rt.typ] = true
			out = append(out, rt.typ)
		}
	}
	slices.SortFunc(out, func(a, b *Type) int {
		switch {
		case a.name < b.name:
			return -1
		case a.name > b.name:
			return 1
		}
		return 0
	})
	return out
}

// lookup finds the route of a command value (or pointer to one), returning the value.
func (r *Router) lookup(command any) (*route, any, error) {
	if command == nil {
		return nil, nil, invalid("", "nil command", nil)
	}
	rv := reflect.ValueOf(command)
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return nil, nil, invalid("", "nil command", nil)
		}
		rv = rv.Elem()
		command = rv.Interface()
	}
	rt, ok := r.byType[rv.Type()]
	if !ok {
		return nil, nil, fmt.Errorf("%w: Go type %s", ErrUnknownCommand, rv.Type())
	}
	return rt, command, nil
}

// DecodeEvent decodes a recorded event into the Go type that its aggregate type
// registered (a value, not a pointer): the type whose stream prefix the event's
// stream starts with (the longest such prefix first) and which registered the event's
// type name. It returns nil and no error for an event no routed aggregate type
// registered, so that readers can fall back to the raw event; an error means a
// registered type whose data does not decode. A node gives it to its handlers
// (handlers.RunnerConfig.Decode), so that handlers read events by their Go types.
func (r *Router) DecodeEvent(e eventstore.RecordedEvent) (any, error) {
	r.prefixOnce.Do(func() {
		r.byPrefix = r.Types()
		slices.SortStableFunc(r.byPrefix, func(a, b *Type) int { return len(b.cfg.StreamPrefix) - len(a.cfg.StreamPrefix) })
	})
	for _, t := range r.byPrefix {
		if strings.HasPrefix(e.StreamID, t.cfg.StreamPrefix) && t.events.has(e.Type) {
			return t.events.decode(e.Type, e.Data)
		}
	}
	return nil, nil
}
