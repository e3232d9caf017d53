package ringtest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/errcode"
	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/memstore"
)

// Case is one given/when/then test of an aggregate. Build it with Given.
type Case struct {
	t       testing.TB
	router  *aggregate.Router
	given   []any
	command any
	opts    []aggregate.Option
}

// Given starts a case: the aggregate that the command passed to When addresses has
// already recorded events (values of its registered event types), in this order.
func Given(t testing.TB, router *aggregate.Router, events ...any) *Case {
	t.Helper()
	if err := router.Validate(); err != nil {
		t.Fatalf("ringtest: the router is not valid: %v", err)
	}
	return &Case{t: t, router: router, given: events}
}

// When sets the command the case dispatches, with dispatch options.
func (c *Case) When(command any, opts ...aggregate.Option) *Case {
	c.command, c.opts = command, opts
	return c
}

// Then dispatches the command and fails the test unless it succeeded and recorded
// exactly events, in order: values (not pointers) compared with reflect.DeepEqual
// against the recorded events decoded from their stored JSON.
func (c *Case) Then(events ...any) {
	c.t.Helper()
	res, err := c.dispatch()
	if errors.Is(err, errStopped) {
		return
	}
	if err != nil {
		c.t.Fatalf("ringtest: %T failed (%s): %v; want events %s", c.command, aggregate.CodeOf(err), err, describe(events))
		return
	}
	got := eventValues(res)
	if len(got) != len(events) {
		c.t.Fatalf("ringtest: %T recorded %s, want %s", c.command, describe(got), describe(events))
		return
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], events[i]) {
			c.t.Fatalf("ringtest: %T: event %d is %T %+v, want %T %+v", c.command, i, got[i], got[i], events[i], events[i])
			return
		}
	}
}

// ThenState dispatches the command and fails the test unless it succeeded; check
// then receives a copy of the aggregate's state after it (a pointer to the state
// type, e.g. *Account), to assert on with the test's own t.
func (c *Case) ThenState(check func(state any)) {
	c.t.Helper()
	res, err := c.dispatch(aggregate.ReturnState())
	if errors.Is(err, errStopped) {
		return
	}
	if err != nil {
		c.t.Fatalf("ringtest: %T failed (%s): %v; want a state to check", c.command, aggregate.CodeOf(err), err)
		return
	}
	check(res.State)
}

// ThenRejected dispatches the command and fails the test unless the aggregate
// refused it with an error that errors.Is want.
func (c *Case) ThenRejected(want error) {
	c.t.Helper()
	res, err := c.dispatch()
	switch {
	case errors.Is(err, errStopped):
	case err == nil:
		c.t.Fatalf("ringtest: %T succeeded with %s; want a rejection (%v)", c.command, describe(eventValues(res)), want)
	case aggregate.CodeOf(err) != errcode.Rejected:
		c.t.Fatalf("ringtest: %T failed with code %s (%v); want a rejection (%v)", c.command, aggregate.CodeOf(err), err, want)
	case !errors.Is(err, want):
		c.t.Fatalf("ringtest: %T was rejected with %v; want %v", c.command, err, want)
	}
}

// ThenInvalid dispatches the command and fails the test unless it was refused as
// invalid (a failed Validate method, a missing identity).
func (c *Case) ThenInvalid() {
	c.t.Helper()
	res, err := c.dispatch()
	switch {
	case errors.Is(err, errStopped):
	case err == nil:
		c.t.Fatalf("ringtest: %T succeeded with %s; want it refused as invalid", c.command, describe(eventValues(res)))
	case aggregate.CodeOf(err) != errcode.Invalid:
		c.t.Fatalf("ringtest: %T failed with code %s (%v); want %s", c.command, aggregate.CodeOf(err), err, errcode.Invalid)
	}
}

// errStopped is what dispatch returns after failing the test itself, for a
// testing.TB whose Fatalf returns.
var errStopped = errors.New("ringtest: the case already failed")

// dispatch writes the given history into a fresh in-memory store and dispatches the
// command there, with the case's options and extra.
func (c *Case) dispatch(extra ...aggregate.Option) (*aggregate.Result, error) {
	c.t.Helper()
	if c.command == nil {
		c.t.Fatalf("ringtest: no command: call When before Then")
		return nil, errStopped
	}
	store := memstore.New()
	defer store.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if len(c.given) > 0 {
		target, err := c.router.Identify(c.command)
		if err != nil {
			return nil, err // an invalid or unrouted command: the dispatch would say the same
		}
		history, err := c.encode(target)
		if err != nil {
			c.t.Fatalf("ringtest: given events: %v", err)
			return nil, errStopped
		}
		if _, err := store.Append(ctx, target.StreamID, eventstore.NoStream, history); err != nil {
			c.t.Fatalf("ringtest: write the given events: %v", err)
			return nil, errStopped
		}
	}
	d, err := aggregate.New(aggregate.Config{Store: store, Router: c.router})
	if err != nil {
		c.t.Fatalf("ringtest: %v", err)
		return nil, errStopped
	}
	defer d.Close()
	return d.Dispatch(ctx, c.command, append(slices.Clone(c.opts), extra...)...)
}

// encode encodes the given events as the aggregate type of target records them.
func (c *Case) encode(target aggregate.Target) ([]eventstore.EventData, error) {
	var typ *aggregate.Type
	for _, t := range c.router.Types() {
		if t.Name() == target.AggregateType {
			typ = t
		}
	}
	if typ == nil {
		return nil, fmt.Errorf("the router has no aggregate type %s", target.AggregateType)
	}
	out := make([]eventstore.EventData, len(c.given))
	for i, e := range c.given {
		data, err := typ.EncodeEvent(e)
		if err != nil {
			return nil, fmt.Errorf("event %d (%T) is not one aggregate type %s records: %w", i, e, target.AggregateType, err)
		}
		out[i] = data
	}
	return out, nil
}

func eventValues(res *aggregate.Result) []any {
	if res == nil {
		return nil
	}
	out := make([]any, len(res.Events))
	for i, e := range res.Events {
		out[i] = e.Value
	}
	return out
}

// describe lists events for a failure message.
func describe(events []any) string {
	if len(events) == 0 {
		return "no events"
	}
	return fmt.Sprintf("%#v", events)
}
