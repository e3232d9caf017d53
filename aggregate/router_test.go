package aggregate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/errcode"
	"github.com/ringleader-go/ringleader/eventstore"
)

type Named struct {
	Key string `json:"key"`
}

func (Named) CommandType() string { return "custom.Named" }

type Checked struct {
	ID string `json:"id"`
	N  int    `json:"n"`
}

func (c Checked) Validate() error {
	if c.N > 10 {
		return aggregate.InvalidField("n", "must be at most 10, got %d", c.N)
	}
	if c.N < 0 {
		return errors.New("n is negative")
	}
	return nil
}

func decodeRouter() *aggregate.Router {
	t := counterType(aggregate.TypeConfig{})
	r := aggregate.NewRouter()
	aggregate.Route(r, t, func(c Add) string { return c.ID })
	aggregate.Route(r, t, func(c Named) string { return c.Key })
	aggregate.Route(r, t, func(c Checked) string { return c.ID })
	return r
}

func TestDecode(t *testing.T) {
	r := decodeRouter()
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	cmd, err := r.Decode("Add", []byte(` {"id":"A1","n":10} `))
	if err != nil || cmd != (Add{ID: "A1", N: 10}) {
		t.Fatalf("Decode = %#v, %v", cmd, err)
	}
	if cmd, err := r.Decode("custom.Named", []byte(`{"key":"k"}`)); err != nil || cmd != (Named{Key: "k"}) {
		t.Fatalf("named: %#v, %v", cmd, err)
	}
	tgt, err := r.Identify(&Named{Key: "k"})
	if err != nil || tgt != (aggregate.Target{CommandType: "custom.Named", AggregateType: "counter", AggregateID: "k", StreamID: "counter-k"}) {
		t.Fatalf("Identify = %+v, %v", tgt, err)
	}

	// The message a client author reads: the field, and the problem in JSON's words.
	cases := []struct {
		name, typ, body string
		want            error
		field, message  string
	}{
		{"unknown type", "Nope", `{}`, aggregate.ErrUnknownCommand, "", ""},
		{"not JSON", "Add", `{"id":`, aggregate.ErrInvalid, "", "malformed JSON: the object is not complete"},
		{"bad syntax", "Add", `{"id" "a"}`, aggregate.ErrInvalid, "", "malformed JSON at byte 7: invalid character '\"' after object key"},
		{"not an object", "Add", `[1]`, aggregate.ErrInvalid, "", "the command must be a JSON object"},
		{"empty body", "Add", ``, aggregate.ErrInvalid, "", "the command must be a JSON object"},
		{"wrong field type", "Add", `{"id":"a","n":"x"}`, aggregate.ErrInvalid, "n", `field "n": expected an integer, got a string`},
		{"fraction for an integer", "Add", `{"id":"a","n":1.5}`, aggregate.ErrInvalid, "n", `field "n": expected an integer, got the number 1.5, which is not a whole number`},
		{"unknown field", "Add", `{"id":"a","amount":1}`, aggregate.ErrInvalid, "amount", `field "amount": unknown field: the command has no field of that name`},
		{"trailing data", "Add", `{"id":"a"} {}`, aggregate.ErrInvalid, "", "malformed JSON: data after the command's JSON object"},
		{"missing identity", "Add", `{"n":1}`, aggregate.ErrInvalid, "id", `field "id": required, and must not be empty: it identifies the aggregate`},
		{"field validation", "Checked", `{"id":"a","n":11}`, aggregate.ErrInvalid, "n", `field "n": must be at most 10, got 11`},
		{"plain validation", "Checked", `{"id":"a","n":-1}`, aggregate.ErrInvalid, "", "n is negative"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := r.Decode(c.typ, []byte(c.body))
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			var ie *aggregate.InvalidError
			if c.message != "" && (!errors.As(err, &ie) || ie.Message() != c.message || ie.Field != c.field || ie.CommandType != c.typ) {
				t.Fatalf("err = %#v, want field %q and message %q", err, c.field, c.message)
			}
			if ie != nil && strings.Contains(err.Error(), "Go struct") {
				t.Fatalf("message names Go types: %v", err)
			}
			wantCode := errcode.Invalid
			if c.want == aggregate.ErrUnknownCommand {
				wantCode = errcode.UnknownCommand
			}
			if got := aggregate.CodeOf(err); got != wantCode {
				t.Fatalf("code = %s, want %s", got, wantCode)
			}
		})
	}
}

func TestRouterValidateReportsEveryProblem(t *testing.T) {
	t1 := aggregate.NewType[Counter]("counter", aggregate.TypeConfig{Snapshots: aggregate.SnapshotPolicy{Every: -1}}, Added{}, Added{})
	r := aggregate.NewRouter()
	aggregate.Route(r, t1, func(c Add) string { return c.ID })
	aggregate.Route(r, t1, func(c Add) string { return c.ID })      // twice
	aggregate.Route[Reject](r, t1, nil)                             // no identity
	aggregate.Route(r, t1, func(c *Nothing) string { return c.ID }) // pointer
	other := aggregate.NewRouter()
	aggregate.Route(other, counterType(aggregate.TypeConfig{}), func(c Add) string { return c.ID })
	r.Include(other)
	r.Use(aggregate.Middleware{Name: "empty"})
	err := r.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"routed twice", "nil identity", "not a pointer", "registered twice", "Every must not be negative", `middleware 0 ("empty")`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if err := aggregate.NewRouter().Validate(); err == nil {
		t.Error("empty router validated")
	}
	if _, err := aggregate.New(aggregate.Config{Router: r}); err == nil || !strings.Contains(err.Error(), "Store is required") || !strings.Contains(err.Error(), "routed twice") {
		t.Errorf("New accepted a bad config: %v", err)
	}
}

func TestIncludeAndMiddleware(t *testing.T) {
	leakCheck(t)
	var log []string
	record := func(name string) aggregate.Middleware {
		return aggregate.Middleware{
			Name: name,
			Before: func(_ context.Context, p *aggregate.Pipeline) error {
				log = append(log, name+".before:"+p.Target.CommandType)
				p.Metadata[name] = "yes"
				if a, ok := p.Command.(Add); ok && a.N == 13 {
					return errors.New("unlucky")
				}
				return nil
			},
			After: func(_ context.Context, p *aggregate.Pipeline, res *aggregate.Result) {
				log = append(log, name+".after")
			},
			OnFailure: func(_ context.Context, p *aggregate.Pipeline, err error) {
				log = append(log, name+".failure:"+aggregate.CodeOf(err))
			},
		}
	}
	inner := counterRouter(aggregate.TypeConfig{})
	inner.Use(record("inner"))
	top := aggregate.NewRouter()
	top.Use(record("outer"))
	top.Include(inner)
	if !slices.Contains(top.CommandTypes(), "Add") || len(top.Types()) != 1 {
		t.Fatalf("included: %v", top.CommandTypes())
	}
	d := newDispatcher(t, aggregate.Config{Store: storeKinds()[0].open(t), Router: top})

	res := mustDispatch(t, d, Add{ID: "m", N: 1})
	if res.Events[0].Metadata["outer"] != "yes" || res.Events[0].Metadata["inner"] != "yes" {
		t.Fatalf("metadata not enriched: %v", res.Events[0].Metadata)
	}
	want := []string{"outer.before:Add", "inner.before:Add", "inner.after", "outer.after"}
	if !slices.Equal(log, want) {
		t.Fatalf("log = %v, want %v", log, want)
	}

	log = nil
	_, err := d.Dispatch(context.Background(), Add{ID: "m", N: 13})
	if aggregate.CodeOf(err) != errcode.Rejected || err.Error() != "unlucky" {
		t.Fatalf("err = %v", err)
	}
	// outer's Before stopped the dispatch; every OnFailure still runs.
	want = []string{"outer.before:Add", "inner.failure:rejected", "outer.failure:rejected"}
	if !slices.Equal(log, want) {
		t.Fatalf("log = %v, want %v", log, want)
	}

	log = nil
	_, err = d.Dispatch(context.Background(), Add{ID: "m", N: -1})
	want = []string{"outer.before:Add", "inner.before:Add", "inner.failure:rejected", "outer.failure:rejected"}
	if !errors.Is(err, errNegative) || !slices.Equal(log, want) {
		t.Fatalf("err = %v log = %v", err, log)
	}
}

func TestMiddlewareMayReplaceCommand(t *testing.T) {
	leakCheck(t)
	r := counterRouter(aggregate.TypeConfig{})
	r.Use(aggregate.Middleware{Name: "double", Before: func(_ context.Context, p *aggregate.Pipeline) error {
		if a, ok := p.Command.(Add); ok {
			a.N *= 2
			p.Command = a
		}
		if _, ok := p.Command.(Nothing); ok {
			p.Command = Add{ID: "x"} // another type: refused
		}
		return nil
	}})
	d := newDispatcher(t, aggregate.Config{Store: storeKinds()[0].open(t), Router: r})
	if res := mustDispatch(t, d, Add{ID: "x", N: 2}); res.Events[0].Value != (Added{N: 4}) {
		t.Fatalf("event %+v", res.Events[0])
	}
	if _, err := d.Dispatch(context.Background(), Nothing{ID: "x"}); aggregate.CodeOf(err) != errcode.Invalid {
		t.Fatalf("type change: %v", err)
	}
}

func TestCodeOf(t *testing.T) {
	cases := map[string]error{
		"":                         nil,
		errcode.UnknownCommand:     aggregate.ErrUnknownCommand,
		errcode.Invalid:            &aggregate.InvalidError{Problem: "x"},
		errcode.Rejected:           &aggregate.RejectedError{Err: errors.New("no")},
		errcode.Conflict:           &aggregate.ExpectedVersionError{},
		errcode.Timeout:            context.DeadlineExceeded,
		errcode.ConsistencyTimeout: fmt.Errorf("%w: %w", aggregate.ErrConsistencyTimeout, context.DeadlineExceeded),
		errcode.Unavailable:        errors.New("connection refused"),
	}
	for want, err := range cases {
		if got := aggregate.CodeOf(err); got != want {
			t.Errorf("CodeOf(%v) = %q, want %q", err, got, want)
		}
	}
	if got := aggregate.CodeOf(aggregate.ErrClosed); got != errcode.Unavailable {
		t.Errorf("closed: %s", got)
	}
	if got := aggregate.CodeOf(&aggregate.PanicError{}); got != errcode.Rejected {
		t.Errorf("panic: %s", got)
	}
}

// Subtracted is recorded by the second aggregate type of TestDecodeEvent, whose
// stream prefix ("counter-x-") extends the first's.
type Subtracted struct {
	N int `json:"n"`
}

func TestDecodeEvent(t *testing.T) {
	counters := counterType(aggregate.TypeConfig{})
	special := aggregate.NewType[Counter]("special", aggregate.TypeConfig{StreamPrefix: "counter-x-"}, Added{}, Subtracted{})
	r := aggregate.NewRouter()
	aggregate.Route(r, counters, func(c Add) string { return c.ID })
	aggregate.Route(r, special, func(c Take) string { return c.ID })
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	event := func(stream, typ, data string) eventstore.RecordedEvent {
		return eventstore.RecordedEvent{StreamID: stream, Type: typ, Data: json.RawMessage(data)}
	}
	cases := []struct {
		name    string
		e       eventstore.RecordedEvent
		want    any
		wantErr bool
	}{
		{"registered", event("counter-1", "Added", `{"n":3}`), Added{N: 3}, false},
		{"longest prefix first", event("counter-x-1", "Subtracted", `{"n":2}`), Subtracted{N: 2}, false},
		{"type of another aggregate's stream", event("counter-1", "Subtracted", `{"n":2}`), nil, false},
		{"unregistered type", event("counter-1", "Renamed", `{}`), nil, false},
		{"stream of no aggregate type", event("other-1", "Added", `{"n":1}`), nil, false},
		{"registered type, bad data", event("counter-1", "Added", `{"n":"three"}`), nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := r.DecodeEvent(c.e)
			if (err != nil) != c.wantErr {
				t.Fatalf("error %v, want error: %v", err, c.wantErr)
			}
			if got != c.want {
				t.Fatalf("decoded %#v, want %#v", got, c.want)
			}
		})
	}
}
