package ringtest_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader"
	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/handlers"
	"github.com/ringleader-go/ringleader/ringtest"
	"github.com/ringleader-go/ringleader/transport"
)

// The domain of these tests: a counter that takes increments of at most 100.

type Increment struct {
	ID string `json:"id"`
	By int    `json:"by"`
}

// Validate makes an increment of nothing invalid.
func (c Increment) Validate() error {
	if c.By <= 0 {
		return errors.New("by must be positive")
	}
	return nil
}

type Incremented struct {
	ID    string `json:"id"`
	By    int    `json:"by"`
	Total int    `json:"total"`
}

var ErrTooMuch = errors.New("too much at once")

type Counter struct{ Total int }

func (c *Counter) Execute(command any) ([]any, error) {
	inc := command.(Increment)
	if inc.By > 100 {
		return nil, ErrTooMuch
	}
	return []any{Incremented{ID: inc.ID, By: inc.By, Total: c.Total + inc.By}}, nil
}

func (c *Counter) Apply(event any) { c.Total = event.(Incremented).Total }

func router() *aggregate.Router {
	counter := aggregate.NewType[Counter]("counter", aggregate.TypeConfig{StreamPrefix: "counter-"}, Incremented{})
	r := aggregate.NewRouter()
	aggregate.Route(r, counter, func(c Increment) string { return c.ID })
	return r
}

func TestGivenWhenThen(t *testing.T) {
	ringtest.Given(t, router(), Incremented{ID: "c", By: 5, Total: 5}).
		When(Increment{ID: "c", By: 2}).
		Then(Incremented{ID: "c", By: 2, Total: 7})
	ringtest.Given(t, router()).When(Increment{ID: "c", By: 101}).ThenRejected(ErrTooMuch)
	ringtest.Given(t, router()).When(Increment{ID: "c", By: 0}).ThenInvalid()
	ringtest.Given(t, router()).When(Increment{By: 1}).ThenInvalid() // no identity
	ringtest.Given(t, router(), Incremented{ID: "c", By: 5, Total: 5}).
		When(Increment{ID: "c", By: 3}).
		ThenState(func(state any) {
			if got := state.(*Counter).Total; got != 8 {
				t.Errorf("total %d, want 8", got)
			}
		})
}

// recorder is a testing.TB whose Errorf and Fatalf record the message (Fatalf also
// ends the goroutine, like testing.T's), so that a case's failure can be checked
// instead of failing this test.
type recorder struct {
	testing.TB
	mu       sync.Mutex
	messages []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	r.messages = append(r.messages, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

// fails runs check against a recorder and returns what it failed with.
func fails(t *testing.T, check func(tb testing.TB)) string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() { defer close(done); check(r) }()
	<-done
	return strings.Join(r.messages, "; ")
}

func TestCasesFailOnWrongExpectations(t *testing.T) {
	cases := []struct {
		name  string
		check func(tb testing.TB)
		want  string
	}{
		{"other events", func(tb testing.TB) {
			ringtest.Given(tb, router()).When(Increment{ID: "c", By: 2}).Then(Incremented{ID: "c", By: 2, Total: 3})
		}, "event 0 is"},
		{"fewer events", func(tb testing.TB) {
			ringtest.Given(tb, router()).When(Increment{ID: "c", By: 2}).Then()
		}, "want no events"},
		{"a rejection where events were expected", func(tb testing.TB) {
			ringtest.Given(tb, router()).When(Increment{ID: "c", By: 200}).Then(Incremented{ID: "c", By: 200, Total: 200})
		}, "too much at once"},
		{"success where a rejection was expected", func(tb testing.TB) {
			ringtest.Given(tb, router()).When(Increment{ID: "c", By: 1}).ThenRejected(ErrTooMuch)
		}, "want a rejection"},
		{"another rejection", func(tb testing.TB) {
			ringtest.Given(tb, router()).When(Increment{ID: "c", By: 101}).ThenRejected(errors.New("other"))
		}, "was rejected with"},
		{"valid where invalid was expected", func(tb testing.TB) {
			ringtest.Given(tb, router()).When(Increment{ID: "c", By: 1}).ThenInvalid()
		}, "want it refused as invalid"},
		{"a rejection where invalid was expected", func(tb testing.TB) {
			ringtest.Given(tb, router()).When(Increment{ID: "c", By: 101}).ThenInvalid()
		}, "failed with code rejected"},
		{"a rejection where a state was expected", func(tb testing.TB) {
			ringtest.Given(tb, router()).When(Increment{ID: "c", By: 101}).ThenState(func(any) {})
		}, "want a state to check"},
		{"an event of another type", func(tb testing.TB) {
			ringtest.Given(tb, router()).When(Increment{ID: "c", By: 2}).Then(Increment{ID: "c", By: 2})
		}, "event 0 is ringtest_test.Incremented"},
		{"a given event of no aggregate type", func(tb testing.TB) {
			ringtest.Given(tb, router(), struct{ X int }{1}).When(Increment{ID: "c", By: 1}).Then()
		}, "given events"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := fails(t, c.check); !strings.Contains(got, c.want) {
				t.Fatalf("the case failed with %q, want a failure saying %q", got, c.want)
			}
		})
	}
}

// countingApp is the counter as an application whose handler records, by Go value,
// every event it sees.
func countingApp(seen *sync.Map) ringleader.App {
	return ringleader.App{
		Name:   "counters",
		Router: router(),
		Handlers: func(ringleader.Host) ([]handlers.Registrant, error) {
			return []handlers.Registrant{handlers.Handler{
				Spec: handlers.Spec{Name: "seen", Partitions: 4},
				Handle: func(_ context.Context, e handlers.Event) error {
					inc := e.Value.(Incremented) // a registered event arrives as its Go type
					n, _ := seen.LoadOrStore(inc.ID, new(atomic.Int64))
					n.(*atomic.Int64).Add(1)
					return nil
				},
			}}, nil
		},
	}
}

func testCluster(t *testing.T, opts ringtest.Options) {
	var seen sync.Map
	c := ringtest.StartCluster(t, countingApp(&seen), opts)
	if len(c.Nodes()) != 3 {
		t.Fatalf("%d nodes, want 3", len(c.Nodes()))
	}
	ctx := context.Background()
	owners := map[string]bool{}
	for i := range 30 {
		reply, err := c.Send(ctx, Increment{ID: fmt.Sprintf("c%d", i), By: 1}, transport.WithCommandID(fmt.Sprint(i)))
		if err != nil || !reply.OK {
			t.Fatalf("Increment c%d: %+v, %v", i, reply, err)
		}
		owners[reply.Node] = true
	}
	if len(owners) < 2 {
		t.Errorf("every command ran on %v: the ring did not spread the aggregates", owners)
	}
	// Failures are replies, not errors.
	reply, err := c.Send(ctx, Increment{ID: "c0", By: 500})
	if err != nil || reply.Code() != "rejected" {
		t.Errorf("a rejected command: %+v, %v", reply, err)
	}
	reply, err = c.Send(ctx, Increment{ID: "c0", By: 0})
	if err != nil || reply.Code() != "invalid" {
		t.Errorf("an invalid command: %+v, %v", reply, err)
	}

	// Each event reaches the handler once: count until all 30 arrived, then a
	// little longer to catch a late second delivery.
	handled := func() int {
		n := 0
		seen.Range(func(id, times any) bool {
			if times := times.(*atomic.Int64).Load(); times != 1 {
				t.Fatalf("the event of %s was handled %d times", id, times)
			}
			n++
			return true
		})
		return n
	}
	deadline := time.Now().Add(15 * time.Second)
	for handled() < 30 {
		if time.Now().After(deadline) {
			t.Fatalf("the handler saw %d of 30 counters", handled())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	if n := handled(); n != 30 {
		t.Fatalf("the handler saw %d counters, want 30", n)
	}
	all, err := c.Store().ReadAll(ctx, 0, 100)
	if err != nil || len(all) != 30 {
		t.Errorf("the store holds %d events (%v), want 30", len(all), err)
	}

	// Failover: with a node stopped, the other two take every aggregate.
	stopped := c.Nodes()[0].ID()
	if err := c.Stop(0); err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		reply, err := c.Send(ctx, Increment{ID: fmt.Sprintf("c%d", i), By: 1})
		if err != nil || !reply.OK || reply.Node == stopped {
			t.Fatalf("Increment c%d after stopping %s: %+v, %v", i, stopped, reply, err)
		}
	}
}

func TestClusterInMemory(t *testing.T) { testCluster(t, ringtest.Options{}) }

func TestClusterOnPostgres(t *testing.T) { testCluster(t, ringtest.Options{Postgres: true}) }
