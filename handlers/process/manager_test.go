package process_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/ringleader-go/ringleader/errcode"
	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/handlers/process"
)

// The test domain: an order process reserves stock, then charges; a refused charge
// releases the reservation.

type Reserve struct {
	Order string `json:"order"`
}
type Charge struct {
	Order string `json:"order"`
}
type Release struct {
	Order string `json:"order"`
}
type Notify struct {
	Order string `json:"order"`
	Text  string `json:"text"`
}

type orderState struct {
	Order    string   `json:"order"`
	Steps    []string `json:"steps"`
	Released bool     `json:"released"`
}

func orderConfig(states process.StateStore, d process.Dispatcher) process.Config[orderState] {
	return process.Config[orderState]{
		Name: "orders",
		Decode: func(e eventstore.RecordedEvent) (any, error) {
			var v struct {
				Order string `json:"order"`
			}
			err := json.Unmarshal(e.Data, &v)
			return v.Order, err
		},
		Interested: func(e process.Event) process.Interest {
			id := e.Value.(string)
			switch e.Type {
			case "OrderPlaced":
				return process.Start(id)
			case "OrderNoted":
				return process.Continue(id)
			case "OrderClosed":
				return process.Stop(id)
			}
			return process.Interest{}
		},
		Handle: func(s orderState, e process.Event) ([]process.Command, error) {
			if e.Type == "OrderPlaced" {
				id := e.Value.(string)
				return []process.Command{process.Tagged("reserve", Reserve{id}), process.Tagged("charge", Charge{id})}, nil
			}
			return nil, nil
		},
		Apply: func(s orderState, e process.Event) orderState {
			s.Order = e.Value.(string)
			s.Steps = append(s.Steps, "event:"+e.Type)
			return s
		},
		Outcome: func(s orderState, c process.Sent, o process.Outcome) (orderState, []process.Command, error) {
			s.Steps = append(s.Steps, c.Tag+":"+map[bool]string{true: "ok", false: "refused"}[o.OK()])
			switch {
			case c.Tag == "charge" && !o.OK():
				return s, []process.Command{process.Tagged("release", Release{s.Order})}, nil
			case c.Tag == "release":
				s.Released = true
				return s, []process.Command{process.Cmd(Notify{s.Order, "released"})}, nil
			case c.Tag == "reserve" && !o.OK():
				return s, nil, errors.New("cannot reserve")
			}
			return s, nil, nil
		},
		States:     states,
		Dispatcher: d,
	}
}

// fakeDispatcher plays a set of aggregates that deduplicate by command id: a command
// id that took effect is answered as a duplicate, a refused one is executed again.
type fakeDispatcher struct {
	mu      sync.Mutex
	effects map[string]string // command id → type, for ids that took effect
	calls   []call
	// refuse says whether a command is refused (when it is executed).
	refuse func(typ string) bool
	// loseReply lists command types whose next execution takes effect but whose
	// reply is lost (the Dispatcher reports an error): a crash after the effect.
	loseReply map[string]int
	// down makes every call fail before reaching the aggregate.
	down bool
	// outcome, if set, replaces the answer (e.g. a transient code).
	outcome *process.Outcome
}

type call struct {
	Type string
	Body string
	Opts process.DispatchOptions
}

func newFake() *fakeDispatcher {
	return &fakeDispatcher{effects: map[string]string{}, loseReply: map[string]int{}}
}

func (f *fakeDispatcher) Dispatch(ctx context.Context, typ string, cmd any, o process.DispatchOptions) (process.Outcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, ok := cmd.(json.RawMessage)
	if !ok {
		return process.Outcome{}, fmt.Errorf("command is %T, want json.RawMessage", cmd)
	}
	f.calls = append(f.calls, call{typ, string(body), o})
	if f.down {
		return process.Outcome{}, errors.New("no nodes")
	}
	if f.outcome != nil {
		return *f.outcome, nil
	}
	if _, dup := f.effects[o.CommandID]; dup {
		return process.Outcome{Duplicate: true}, nil
	}
	if f.refuse != nil && f.refuse(typ) {
		return process.Outcome{Code: errcode.Rejected, Message: typ + " refused"}, nil
	}
	f.effects[o.CommandID] = typ
	if f.loseReply[typ] > 0 {
		f.loseReply[typ]--
		return process.Outcome{}, errors.New("reply lost")
	}
	return process.Outcome{}, nil
}

// effectCount counts the effects of commands of type typ.
func (f *fakeDispatcher) effectCount(typ string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, t := range f.effects {
		if t == typ {
			n++
		}
	}
	return n
}

func (f *fakeDispatcher) callTypes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		out = append(out, c.Type)
	}
	return out
}

// flakyStore fails the save whose 1-based number is failAt (counting all saves).
type flakyStore struct {
	process.StateStore
	mu     sync.Mutex
	saves  int
	failAt int
}

func (s *flakyStore) Save(ctx context.Context, r process.Record) (process.Record, error) {
	s.mu.Lock()
	s.saves++
	fail := s.saves == s.failAt
	s.mu.Unlock()
	if fail {
		return process.Record{}, errors.New("crash before save")
	}
	return s.StateStore.Save(ctx, r)
}

// event is an undecoded event (Value nil, as the runner delivers an event type it
// does not know): the managers under test decode it with their Config.Decode.
func event(typ, order string, position int64) process.Event {
	return process.Event{RecordedEvent: eventstore.RecordedEvent{
		GlobalPosition: position, StreamID: "order-" + order, ID: uuid.New(), Type: typ,
		Data: json.RawMessage(fmt.Sprintf(`{"order":%q}`, order)), Metadata: map[string]string{},
	}}
}

func newManager(t *testing.T, states process.StateStore, d process.Dispatcher) *process.Manager[orderState] {
	t.Helper()
	m, err := process.New(orderConfig(states, d))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func load(t *testing.T, s process.StateStore, id string) (process.Record, orderState) {
	t.Helper()
	r, ok, err := s.Load(context.Background(), "orders", id)
	if err != nil || !ok {
		t.Fatalf("Load(%s) = %v, %v", id, ok, err)
	}
	var st orderState
	if err := json.Unmarshal(r.State, &st); err != nil {
		t.Fatal(err)
	}
	return r, st
}

func TestDispatchesWithDeterministicIDs(t *testing.T) {
	ctx := context.Background()
	d, states := newFake(), process.NewMemStore()
	m := newManager(t, states, d)
	e := event("OrderPlaced", "o1", 10)
	if err := m.Handle(ctx, e); err != nil {
		t.Fatal(err)
	}
	if len(d.calls) != 2 {
		t.Fatalf("calls = %+v", d.calls)
	}
	for i, want := range []string{"Reserve", "Charge"} {
		c := d.calls[i]
		wantID := fmt.Sprintf("orders:o1:%s:%d", e.ID, i)
		if c.Type != want || c.Opts.CommandID != wantID || c.Opts.CorrelationID != "o1" || c.Opts.CausationID != e.ID.String() {
			t.Errorf("call %d = %+v, want %s id %s", i, c, want, wantID)
		}
		if c.Body != `{"order":"o1"}` {
			t.Errorf("call %d body %s", i, c.Body)
		}
	}
	r, st := load(t, states, "o1")
	if r.Status != process.Running || r.LastPosition != 10 || len(r.Pending) != 0 {
		t.Errorf("record = %+v", r)
	}
	if got := strings.Join(st.Steps, ","); got != "event:OrderPlaced,reserve:ok,charge:ok" {
		t.Errorf("steps = %s", got)
	}
}

func TestRedeliveredEventDoesNotDispatchAgain(t *testing.T) {
	ctx := context.Background()
	d, states := newFake(), process.NewMemStore()
	m := newManager(t, states, d)
	e := event("OrderPlaced", "o1", 10)
	for range 3 {
		if err := m.Handle(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	// An older event (below the last position) is not applied either.
	if err := m.Handle(ctx, event("OrderNoted", "o1", 5)); err != nil {
		t.Fatal(err)
	}
	if got := d.callTypes(); len(got) != 2 {
		t.Fatalf("calls = %v, want 2", got)
	}
	_, st := load(t, states, "o1")
	if len(st.Steps) != 3 {
		t.Errorf("steps = %v", st.Steps)
	}
	// A newer event for the process is applied.
	if err := m.Handle(ctx, event("OrderNoted", "o1", 11)); err != nil {
		t.Fatal(err)
	}
	r, st := load(t, states, "o1")
	if r.LastPosition != 11 || st.Steps[len(st.Steps)-1] != "event:OrderNoted" {
		t.Errorf("record %+v steps %v", r, st.Steps)
	}
}

func TestRejectionIsHandledByTheProcess(t *testing.T) {
	ctx := context.Background()
	d, states := newFake(), process.NewMemStore()
	d.refuse = func(typ string) bool { return typ == "Charge" }
	m := newManager(t, states, d)
	e := event("OrderPlaced", "o1", 10)
	if err := m.Handle(ctx, e); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(d.callTypes(), ","); got != "Reserve,Charge,Release,Notify" {
		t.Fatalf("calls = %s", got)
	}
	// Commands caused by answers continue the numbering of the event's commands.
	for i, c := range d.calls {
		if want := fmt.Sprintf("orders:o1:%s:%d", e.ID, i); c.Opts.CommandID != want || c.Opts.CausationID != e.ID.String() {
			t.Errorf("call %d opts %+v, want id %s", i, c.Opts, want)
		}
	}
	_, st := load(t, states, "o1")
	if !st.Released || strings.Join(st.Steps, ",") != "event:OrderPlaced,reserve:ok,charge:refused,release:ok,:ok" {
		t.Errorf("state = %+v", st)
	}
}

func TestRefusalWithoutHandlingFailsTheEvent(t *testing.T) {
	ctx := context.Background()
	d, states := newFake(), process.NewMemStore()
	d.refuse = func(typ string) bool { return typ == "Reserve" }
	m := newManager(t, states, d)
	err := m.Handle(ctx, event("OrderPlaced", "o1", 10))
	var rej *process.RejectedError
	if !errors.As(err, &rej) || !errors.Is(err, process.ErrRejected) || rej.Outcome.Code != errcode.Rejected || rej.Command.Tag != "reserve" {
		t.Fatalf("err = %v", err)
	}

	cfg := orderConfig(process.NewMemStore(), d)
	cfg.Outcome = nil
	m2, err := process.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Handle(ctx, event("OrderPlaced", "o2", 10)); !errors.Is(err, process.ErrRejected) {
		t.Fatalf("without Outcome: err = %v", err)
	}
}

func TestTransientFailuresAreErrorsAndRetrySafely(t *testing.T) {
	ctx := context.Background()
	d, states := newFake(), process.NewMemStore()
	m := newManager(t, states, d)
	e := event("OrderPlaced", "o1", 10)

	d.down = true
	err := m.Handle(ctx, e)
	var de *process.DispatchError
	if !errors.As(err, &de) || !errors.Is(err, process.ErrDispatch) || de.Command.Type != "Reserve" {
		t.Fatalf("down: err = %v", err)
	}
	d.down = false
	d.outcome = &process.Outcome{Code: errcode.Timeout, Message: "slow"}
	if err := m.Handle(ctx, e); !errors.As(err, &de) || de.Outcome.Code != errcode.Timeout {
		t.Fatalf("timeout outcome: err = %v", err)
	}
	d.outcome = nil
	if err := m.Handle(ctx, e); err != nil {
		t.Fatal(err)
	}
	// Every attempt of a command carried the same id.
	ids := map[string]map[string]bool{}
	for _, c := range d.calls {
		if ids[c.Type] == nil {
			ids[c.Type] = map[string]bool{}
		}
		ids[c.Type][c.Opts.CommandID] = true
	}
	if len(ids["Reserve"]) != 1 || len(ids["Charge"]) != 1 {
		t.Errorf("ids per type = %v", ids)
	}
	if d.effectCount("Reserve") != 1 || d.effectCount("Charge") != 1 {
		t.Errorf("effects = %v", d.effects)
	}
}

// A crash after a command took effect but before its answer was saved: the event is
// delivered again, the same command id is sent again and answered as a duplicate.
func TestCrashBetweenStepsResumesWithoutDoubleEffects(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		setup func(d *fakeDispatcher, s *flakyStore)
	}{
		{"reply lost after effect", func(d *fakeDispatcher, s *flakyStore) { d.loseReply["Charge"] = 1 }},
		// Saves: 1 accepts the event, 2 records Reserve's answer, 3 records Charge's.
		{"crash before saving an answer", func(d *fakeDispatcher, s *flakyStore) { s.failAt = 3 }},
		{"crash before saving the event", func(d *fakeDispatcher, s *flakyStore) { s.failAt = 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newFake()
			states := &flakyStore{StateStore: process.NewMemStore()}
			tc.setup(d, states)
			m := newManager(t, states, d)
			e := event("OrderPlaced", "o1", 10)
			if err := m.Handle(ctx, e); err == nil {
				t.Fatal("first delivery succeeded despite the crash")
			}
			if err := m.Handle(ctx, e); err != nil {
				t.Fatal(err)
			}
			if err := m.Handle(ctx, e); err != nil {
				t.Fatal(err)
			}
			if d.effectCount("Reserve") != 1 || d.effectCount("Charge") != 1 {
				t.Errorf("effects = %v", d.effects)
			}
			_, st := load(t, states, "o1")
			if got := strings.Join(st.Steps, ","); got != "event:OrderPlaced,reserve:ok,charge:ok" {
				t.Errorf("steps = %s", got)
			}
		})
	}
}

// A refusal is saved before the compensation is sent; after a crash the refused
// command is not sent again, even though it would now succeed — otherwise the effect
// and its compensation would both happen.
func TestSavedRefusalIsNotRetried(t *testing.T) {
	ctx := context.Background()
	d, states := newFake(), process.NewMemStore()
	d.refuse = func(typ string) bool { return typ == "Charge" }
	d.loseReply["Release"] = 1 // crash right after the compensation took effect
	m := newManager(t, states, d)
	e := event("OrderPlaced", "o1", 10)
	if err := m.Handle(ctx, e); !errors.Is(err, process.ErrDispatch) {
		t.Fatalf("err = %v", err)
	}
	d.refuse = nil // a Charge would now succeed
	if err := m.Handle(ctx, e); err != nil {
		t.Fatal(err)
	}
	if n := d.effectCount("Charge"); n != 0 {
		t.Errorf("Charge took effect %d times after its refusal was compensated", n)
	}
	if d.effectCount("Release") != 1 || d.effectCount("Notify") != 1 {
		t.Errorf("effects = %v", d.effects)
	}
	if got := strings.Join(d.callTypes(), ","); got != "Reserve,Charge,Release,Release,Notify" {
		t.Errorf("calls = %s", got)
	}
}

func TestStopLeavesATombstone(t *testing.T) {
	ctx := context.Background()
	d, states := newFake(), process.NewMemStore()
	m := newManager(t, states, d)
	start := event("OrderPlaced", "o1", 10)
	for _, e := range []process.Event{start, event("OrderClosed", "o1", 20)} {
		if err := m.Handle(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	r, st := load(t, states, "o1")
	if r.Status != process.Done || r.LastPosition != 20 {
		t.Fatalf("record = %+v", r)
	}
	calls := len(d.calls)
	// The start event re-delivered, or a new start with a later position: ignored.
	for _, e := range []process.Event{start, event("OrderPlaced", "o1", 30), event("OrderNoted", "o1", 31)} {
		if err := m.Handle(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	r2, st2 := load(t, states, "o1")
	if len(d.calls) != calls || r2.Version != r.Version || len(st2.Steps) != len(st.Steps) {
		t.Errorf("the stopped process ran again: calls %d→%d, record %+v", calls, len(d.calls), r2)
	}
}

func TestStopWaitsForTheJournal(t *testing.T) {
	ctx := context.Background()
	d, states := newFake(), process.NewMemStore()
	m := newManager(t, states, d)
	if err := m.Handle(ctx, event("OrderPlaced", "o1", 10)); err != nil {
		t.Fatal(err)
	}
	// A stop event that causes commands: a crash leaves them journaled, status stopping.
	cfg := orderConfig(states, d)
	cfg.Handle = func(s orderState, e process.Event) ([]process.Command, error) {
		return []process.Command{process.Cmd(Notify{s.Order, "closed"})}, nil
	}
	m2, err := process.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.down = true
	stop := event("OrderClosed", "o1", 20)
	if err := m2.Handle(ctx, stop); err == nil {
		t.Fatal("no error while down")
	}
	if r, _ := load(t, states, "o1"); r.Status != process.Stopping || len(r.Pending) != 1 {
		t.Fatalf("record = %+v", r)
	}
	d.down = false
	if err := m2.Handle(ctx, stop); err != nil {
		t.Fatal(err)
	}
	if r, _ := load(t, states, "o1"); r.Status != process.Done || len(r.Pending) != 0 || d.effectCount("Notify") != 1 {
		t.Fatalf("record = %+v, effects %v", r, d.effects)
	}
}

func TestContinueOrStopOfUnknownProcessIsIgnored(t *testing.T) {
	ctx := context.Background()
	d, states := newFake(), process.NewMemStore()
	m := newManager(t, states, d)
	for _, e := range []process.Event{event("OrderNoted", "o9", 1), event("OrderClosed", "o9", 2), event("Unrelated", "o9", 3)} {
		if err := m.Handle(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, _ := states.Load(ctx, "orders", "o9"); ok || len(d.calls) != 0 {
		t.Errorf("record created or commands sent: %v", d.calls)
	}
}

func TestConcurrentHandlingOfOneProcessConflicts(t *testing.T) {
	ctx := context.Background()
	states := process.NewMemStore()
	r, err := states.Save(ctx, process.Record{Manager: "m", ProcessID: "p", Status: process.Running})
	if err != nil || r.Version != 1 {
		t.Fatalf("save = %+v, %v", r, err)
	}
	stale := r
	if _, err := states.Save(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := states.Save(ctx, stale); !errors.Is(err, process.ErrConflict) {
		t.Fatalf("stale save: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	_, err := process.New(process.Config[orderState]{Name: "a:b"})
	for _, want := range []string{"':'", "Interested", "States", "Dispatcher"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want mention of %s", err, want)
		}
	}
	if !errors.Is(err, process.ErrInvalid) {
		t.Errorf("err = %v", err)
	}
}

// TestOutcomeSeesTypedCommandsAndRunnerValues: without Config.Decode the functions
// see the value the handlers runner decoded (Event.Value), and with DecodeCommand
// the Outcome function sees each command it sent as its Go value, also after the
// journal was reloaded from the store.
func TestOutcomeSeesTypedCommandsAndRunnerValues(t *testing.T) {
	type placed struct{ Order string }
	var seen []any
	cfg := process.Config[orderState]{
		Name: "typed",
		Interested: func(e process.Event) process.Interest {
			if p, ok := e.Value.(placed); ok {
				return process.Start(p.Order)
			}
			return process.Interest{}
		},
		Handle: func(s orderState, e process.Event) ([]process.Command, error) {
			p := e.Value.(placed)
			return []process.Command{process.Cmd(Reserve{p.Order}), process.Cmd(Charge{p.Order})}, nil
		},
		Outcome: func(s orderState, c process.Sent, o process.Outcome) (orderState, []process.Command, error) {
			seen = append(seen, c.Value)
			return s, nil, nil
		},
		DecodeCommand: func(typ string, body []byte) (any, error) {
			var v any
			switch typ {
			case "Reserve":
				v = &Reserve{}
			case "Charge":
				v = &Charge{}
			default:
				return nil, fmt.Errorf("unknown command %s", typ)
			}
			err := json.Unmarshal(body, v)
			return v, err
		},
		States: process.NewMemStore(), Dispatcher: newFake(),
	}
	m, err := process.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := event("OrderPlaced", "o1", 10)
	e.Value = placed{Order: "o1"} // as the runner's decoder would
	if err := m.Handle(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || *seen[0].(*Reserve) != (Reserve{"o1"}) || *seen[1].(*Charge) != (Charge{"o1"}) {
		t.Fatalf("Outcome saw %#v, want the Reserve and Charge sent", seen)
	}
}
