package transport_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/ringleader-go/ringleader/errcode"
	"github.com/ringleader-go/ringleader/transport"
	"github.com/ringleader-go/ringleader/transport/natstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Two servers, n2 owns everything: whichever node the queue group picks, n2
// executes, and what n1 forwarded reaches n2 with every header.
func TestForwardToOwner(t *testing.T) {
	prefix := natstest.Prefix(t)
	n1 := startNode(t, prefix, "n1", owns("n2"))
	n2 := startNode(t, prefix, "n2", owns("n2"))
	c := transport.NewClient(natstest.Connect(t), transport.WithPrefix(prefix))

	const sends = 40
	for i := range sends {
		id := fmt.Sprintf("c-%d", i)
		r, err := c.Send(context.Background(), "bank.Deposit", map[string]any{"account_number": "A-1", "amount": i},
			transport.WithCommandID(id), transport.WithConsistency("strong"),
			transport.WithCorrelationID("corr-"+id), transport.WithCausationID("cause-"+id),
			transport.WithTimeout(3*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK || r.Node != "n2" || r.CommandID != id {
			t.Fatalf("reply %+v, want ok from n2 for %s", r, id)
		}
	}
	if calls := n1.exec.Calls(); len(calls) != 0 {
		t.Fatalf("n1 executed %d commands; it owns none", len(calls))
	}
	calls := n2.exec.Calls()
	if len(calls) != sends {
		t.Fatalf("n2 executed %d commands, want %d", len(calls), sends)
	}
	forwarded := 0
	for _, req := range calls {
		if req.CommandType != "bank.Deposit" || !strings.HasPrefix(string(req.Body), `{"account_number":"A-1"`) {
			t.Fatalf("request %+v lost its type or body", req)
		}
		if req.Consistency != transport.ConsistencyStrong || req.CorrelationID != "corr-"+req.CommandID ||
			req.CausationID != "cause-"+req.CommandID {
			t.Fatalf("request %+v lost headers", req)
		}
		if left := time.Until(req.Deadline); left <= 0 || left > 3*time.Second {
			t.Fatalf("deadline %s from now, want within the 3s timeout", left)
		}
		if req.Forwarded {
			forwarded++
			if req.ForwardedBy != "n1" {
				t.Fatalf("forwarded by %q, want n1", req.ForwardedBy)
			}
		}
	}
	// The queue group picks a member at random: 40 sends all landing on n2 has
	// probability 2^-40.
	if forwarded == 0 {
		t.Fatal("no command went through n1")
	}
	_, fw := n1.obs.snapshot()
	if len(fw) != forwarded {
		t.Fatalf("n1 observed %d forwards, n2 received %d", len(fw), forwarded)
	}
	n1done, _ := n1.obs.snapshot()
	for _, d := range n1done {
		if d != "bank.Deposit/ok/true" {
			t.Fatalf("n1 observer got %q", d)
		}
	}
}

// A request on a node subject is executed there even when that node's Locate names
// another owner: one hop at most.
func TestForwardedIsNeverForwardedAgain(t *testing.T) {
	prefix := natstest.Prefix(t)
	n1 := startNode(t, prefix, "n1", owns("n2"))
	n2 := startNode(t, prefix, "n2", owns("n1")) // they disagree

	nc := natstest.Connect(t)
	hdr := nats.Header{}
	hdr.Set(transport.HeaderCommandType, "Open")
	hdr.Set(transport.HeaderForwardedBy, "n1")
	hdr.Set(transport.HeaderCommandID, "direct")
	r := rawRequest(t, nc, transport.NodeSubject(prefix, "n2"), hdr, []byte(`{}`))
	if !r.OK || r.Node != "n2" {
		t.Fatalf("reply %+v, want ok from n2", r)
	}
	if n2.locates.Load() != 0 {
		t.Fatal("n2 consulted Locate for a forwarded request")
	}

	// Through the ingress: each node forwards to the other, which executes.
	c := transport.NewClient(nc, transport.WithPrefix(prefix))
	for i := range 20 {
		r, err := c.Send(context.Background(), "Open", map[string]int{"i": i})
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK {
			t.Fatalf("reply %+v", r)
		}
	}
	total := 0
	for _, n := range []*node{n1, n2} {
		for _, req := range n.exec.Calls() {
			total++
			if !req.Forwarded {
				t.Fatalf("%+v executed without being forwarded", req)
			}
		}
	}
	if total != 21 {
		t.Fatalf("%d executions, want 21 (each command exactly once)", total)
	}
}

func TestInvalidRequests(t *testing.T) {
	prefix := natstest.Prefix(t)
	n := startNode(t, prefix, "n1", owns("n1"), func(c *transport.ServerConfig) { c.MaxBodyBytes = 64 })
	nc := natstest.Connect(t)
	subject := prefix + ".cmd.Open"
	h := func(kv ...string) nats.Header {
		hdr := nats.Header{}
		for i := 0; i < len(kv); i += 2 {
			hdr.Set(kv[i], kv[i+1])
		}
		return hdr
	}
	cases := []struct {
		name, subject string
		hdr           nats.Header
		body          string
		want          string
	}{
		{"malformed JSON", subject, nil, `{"a":`, "malformed JSON"},
		{"trailing garbage", subject, nil, `{"a":1} x`, "malformed JSON"},
		{"array", subject, nil, `[1,2]`, "an array"},
		{"string", subject, nil, `"x"`, "a string"},
		{"null", subject, nil, `null`, "null"},
		{"empty", subject, nil, ``, "empty"},
		{"blank", subject, nil, "  \n", "empty"},
		{"oversized", subject, nil, `{"pad":"` + strings.Repeat("x", 100) + `"}`, "exceeds the limit of 64"},
		{"bad timeout", subject, h(transport.HeaderTimeout, "soon"), `{}`, "not a duration"},
		{"negative timeout", subject, h(transport.HeaderTimeout, "-1s"), `{}`, "must be positive"},
		{"huge timeout", subject, h(transport.HeaderTimeout, "1h"), `{}`, "exceeds the maximum"},
		{"bad consistency", subject, h(transport.HeaderConsistency, "sometimes"), `{}`, "sometimes"},
		{"bad deadline", subject, h(transport.HeaderDeadline, "tomorrow"), `{}`, "RFC 3339"},
		{"node subject without type", transport.NodeSubject(prefix, "n1"), nil, `{}`, "missing command type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdr := tc.hdr
			if hdr == nil {
				hdr = nats.Header{}
			}
			hdr.Set(transport.HeaderCommandID, "bad-1")
			r := rawRequest(t, nc, tc.subject, hdr, []byte(tc.body))
			wantCode(t, r, errcode.Invalid)
			if !strings.Contains(r.Error.Message, tc.want) {
				t.Fatalf("message %q does not mention %q", r.Error.Message, tc.want)
			}
			if r.CommandID != "bad-1" || r.Node != "n1" {
				t.Fatalf("reply %+v lacks command id or node", r)
			}
		})
	}
	if n.locates.Load() != 0 || len(n.exec.Calls()) != 0 {
		t.Fatalf("invalid requests reached Locate (%d) or the Executor (%d)", n.locates.Load(), len(n.exec.Calls()))
	}
	// And the node still serves.
	if r := rawRequest(t, nc, subject, nil, []byte(`{}`)); !r.OK {
		t.Fatalf("valid request after invalid ones: %+v", r)
	}
}

func TestLocateErrorCodes(t *testing.T) {
	prefix := natstest.Prefix(t)
	startNode(t, prefix, "n1", func(req transport.Request) (string, error) {
		switch req.CommandType {
		case "Unknown":
			return "", transport.WithCode(errcode.UnknownCommand, errors.New("no route for Unknown"))
		case "Wrapped":
			return "", fmt.Errorf("router: %w", transport.WithCode(errcode.Unavailable, errors.New("ring empty")))
		case "Bogus":
			return "", transport.WithCode("teapot", errors.New("not a wire code"))
		default:
			return "", errors.New("missing account_number")
		}
	})
	nc := natstest.Connect(t)
	for typ, want := range map[string]string{
		"Unknown": errcode.UnknownCommand,
		"Wrapped": errcode.Unavailable,
		"Bogus":   errcode.Invalid,
		"Plain":   errcode.Invalid,
	} {
		r := rawRequest(t, nc, prefix+".cmd."+typ, nil, []byte(`{}`))
		wantCode(t, r, want)
	}
}

func TestExpiredDeadlineIsDropped(t *testing.T) {
	t.Run("Deadline header already passed", func(t *testing.T) {
		prefix := natstest.Prefix(t)
		n := startNode(t, prefix, "n1", owns("n1"))
		hdr := nats.Header{}
		hdr.Set(transport.HeaderDeadline, time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano))
		r := rawRequest(t, natstest.Connect(t), prefix+".cmd.Open", hdr, []byte(`{}`))
		wantCode(t, r, errcode.Timeout)
		if len(n.exec.Calls()) != 0 || n.locates.Load() != 0 {
			t.Fatal("a late request was executed")
		}
	})
	t.Run("clock passes the deadline before pickup", func(t *testing.T) {
		prefix := natstest.Prefix(t)
		t0 := time.Now()
		var ticks atomic.Int64
		n := startNode(t, prefix, "n1", owns("n1"), func(c *transport.ServerConfig) {
			// The receive time is the first reading; every later one is an hour on.
			c.Now = func() time.Time {
				if ticks.Add(1) == 1 {
					return t0
				}
				return t0.Add(time.Hour)
			}
		})
		r := rawRequest(t, natstest.Connect(t), prefix+".cmd.Open", nil, []byte(`{}`))
		wantCode(t, r, errcode.Timeout)
		if len(n.exec.Calls()) != 0 {
			t.Fatal("a late request was executed")
		}
	})
}

// The owner left before membership noticed: nobody listens on its subject, so the
// receiver executes the command itself.
func TestNoRespondersExecutesLocally(t *testing.T) {
	prefix := natstest.Prefix(t)
	n1 := startNode(t, prefix, "n1", owns("ghost"))
	r := rawRequest(t, natstest.Connect(t), prefix+".cmd.Open", nil, []byte(`{}`))
	if !r.OK || r.Node != "n1" {
		t.Fatalf("reply %+v, want ok from n1", r)
	}
	if calls := n1.exec.Calls(); len(calls) != 1 || calls[0].Forwarded {
		t.Fatalf("calls %+v, want one local execution", calls)
	}
	_, fw := n1.obs.snapshot()
	if len(fw) != 1 || fw[0] != "ghost" {
		t.Fatalf("forwards observed %v", fw)
	}
}

// The owner is subscribed but never answers: the forward times out and the client
// hears timeout from the receiver.
func TestForwardTimeout(t *testing.T) {
	prefix := natstest.Prefix(t)
	startNode(t, prefix, "n1", owns("n2"))
	mute := natstest.Connect(t)
	got := make(chan nats.Header, 1)
	sub, err := mute.Subscribe(transport.NodeSubject(prefix, "n2"), func(m *nats.Msg) { got <- m.Header })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := mute.Flush(); err != nil {
		t.Fatal(err)
	}
	hdr := nats.Header{}
	hdr.Set(transport.HeaderTimeout, "300ms")
	hdr.Set(transport.HeaderCommandID, "slow")
	start := time.Now()
	r := rawRequest(t, natstest.Connect(t), prefix+".cmd.Open", hdr, []byte(`{}`))
	wantCode(t, r, errcode.Timeout)
	if r.Node != "n1" || r.CommandID != "slow" {
		t.Fatalf("reply %+v", r)
	}
	if el := time.Since(start); el < 250*time.Millisecond || el > 3*time.Second {
		t.Fatalf("timeout reply after %s, want about 300ms", el)
	}
	fh := <-got
	d, err := time.ParseDuration(fh.Get(transport.HeaderTimeout))
	if err != nil || d <= 0 || d > 300*time.Millisecond {
		t.Fatalf("forwarded Timeout %q, want the remaining time (<= 300ms)", fh.Get(transport.HeaderTimeout))
	}
	if fh.Get(transport.HeaderDeadline) == "" || fh.Get(transport.HeaderForwardedBy) != "n1" ||
		fh.Get(transport.HeaderCommandType) != "Open" || fh.Get(transport.HeaderCommandID) != "slow" {
		t.Fatalf("forwarded headers %v", fh)
	}
}

func TestExecutorPanicIsContained(t *testing.T) {
	prefix := natstest.Prefix(t)
	n := startNode(t, prefix, "n1", owns("n1"))
	n.exec.fn = func(_ context.Context, req transport.Request) transport.Reply {
		if req.CommandType == "Boom" {
			panic("kaboom")
		}
		return transport.Reply{OK: true}
	}
	nc := natstest.Connect(t)
	for range 3 {
		r := rawRequest(t, nc, prefix+".cmd.Boom", nil, []byte(`{}`))
		wantCode(t, r, errcode.Unavailable)
		if !strings.Contains(r.Error.Message, "kaboom") {
			t.Fatalf("message %q", r.Error.Message)
		}
		if r := rawRequest(t, nc, prefix+".cmd.Fine", nil, []byte(`{}`)); !r.OK {
			t.Fatalf("after a panic: %+v", r)
		}
	}
}

func TestExecutorBadFailureIsUnavailable(t *testing.T) {
	prefix := natstest.Prefix(t)
	n := startNode(t, prefix, "n1", owns("n1"))
	n.exec.fn = func(context.Context, transport.Request) transport.Reply {
		return transport.Reply{Error: &transport.ReplyError{Code: "oops"}}
	}
	r := rawRequest(t, natstest.Connect(t), prefix+".cmd.X", nil, []byte(`{}`))
	wantCode(t, r, errcode.Unavailable)
}

func TestOverloadAnswersUnavailable(t *testing.T) {
	prefix := natstest.Prefix(t)
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	n := startNode(t, prefix, "n1", owns("n1"), func(c *transport.ServerConfig) { c.MaxInFlight = 1 })
	n.exec.fn = func(context.Context, transport.Request) transport.Reply {
		started <- struct{}{}
		<-release
		return transport.Reply{OK: true}
	}
	c := transport.NewClient(natstest.Connect(t), transport.WithPrefix(prefix))
	first := make(chan transport.Reply, 1)
	go func() {
		r, _ := c.Send(context.Background(), "Slow", map[string]int{})
		first <- r
	}()
	<-started
	r, err := c.Send(context.Background(), "Slow", map[string]int{})
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, r, errcode.Unavailable)
	close(release)
	if r := <-first; !r.OK {
		t.Fatalf("first: %+v", r)
	}
}

func TestRequestWithoutReplySubjectIsIgnored(t *testing.T) {
	prefix := natstest.Prefix(t)
	n := startNode(t, prefix, "n1", owns("n1"))
	nc := natstest.Connect(t)
	if err := nc.Publish(prefix+".cmd.Unanswerable", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	// Deliveries on one subscription are in order: once this is answered, the
	// publish has been delivered to the server's callback, and admitted if it
	// was going to be.
	if r := rawRequest(t, nc, prefix+".cmd.Open", nil, []byte(`{}`)); !r.OK {
		t.Fatalf("%+v", r)
	}
	// Admitted requests run on worker goroutines; Shutdown returns only once
	// every admitted request has finished, so whatever was admitted has run.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, c := range n.exec.Calls() {
		types = append(types, c.CommandType)
	}
	if !slices.Equal(types, []string{"Open"}) {
		t.Fatalf("executed %v, want only the request with a reply subject (Open)", types)
	}
}

func TestShutdownWaitsForInFlight(t *testing.T) {
	prefix := natstest.Prefix(t)
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	n := startNode(t, prefix, "n1", owns("n1"))
	n.exec.fn = func(_ context.Context, req transport.Request) transport.Reply {
		if req.CommandType == "Slow" {
			started <- struct{}{}
			<-release
		}
		return transport.Reply{OK: true}
	}
	c := transport.NewClient(natstest.Connect(t), transport.WithPrefix(prefix))
	inflight := make(chan transport.Reply, 1)
	go func() {
		r, err := c.Send(context.Background(), "Slow", map[string]int{})
		if err != nil {
			t.Error(err)
		}
		inflight <- r
	}()
	<-started

	shutdown := make(chan error, 1)
	go func() { shutdown <- n.srv.Shutdown(context.Background()) }()

	// New requests find no node (or an unavailable one) while the old one runs.
	waitFor(t, 5*time.Second, func() error {
		r, err := c.Send(context.Background(), "Later", map[string]int{}, transport.WithTimeout(time.Second))
		if errors.Is(err, transport.ErrNoNodes) || (err == nil && r.Code() == errcode.Unavailable) {
			return nil
		}
		return fmt.Errorf("request during shutdown: %+v, %v", r, err)
	})
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	default:
	}
	close(release)
	if r := <-inflight; !r.OK {
		t.Fatalf("in-flight request: %+v", r)
	}
	if err := <-shutdown; err != nil {
		t.Fatal(err)
	}
	if err := n.srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if err := n.srv.Start(); !errors.Is(err, transport.ErrServerClosed) {
		t.Fatalf("Start after Shutdown: %v", err)
	}
	// (A "Later" request racing the start of Shutdown may still have been executed:
	// draining handles what was already delivered.)
}

func TestShutdownContextCancelsInFlight(t *testing.T) {
	prefix := natstest.Prefix(t)
	started := make(chan struct{}, 1)
	n := startNode(t, prefix, "n1", owns("n1"))
	n.exec.fn = func(ctx context.Context, _ transport.Request) transport.Reply {
		started <- struct{}{}
		<-ctx.Done()
		return transport.ErrorReply("", errcode.Unavailable, ctx.Err().Error())
	}
	c := transport.NewClient(natstest.Connect(t), transport.WithPrefix(prefix))
	inflight := make(chan transport.Reply, 1)
	go func() {
		r, _ := c.Send(context.Background(), "Stuck", map[string]int{}, transport.WithTimeout(time.Minute))
		inflight <- r
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := n.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want deadline exceeded", err)
	}
	r := <-inflight
	wantCode(t, r, errcode.Unavailable)
	if !strings.Contains(r.Error.Message, "canceled") {
		t.Fatalf("message %q", r.Error.Message)
	}
}

func TestObserverCodes(t *testing.T) {
	prefix := natstest.Prefix(t)
	n := startNode(t, prefix, "n1", owns("n1"))
	n.exec.fn = func(_ context.Context, req transport.Request) transport.Reply {
		if req.CommandType == "Withdraw" {
			return transport.ErrorReply(req.CommandID, errcode.Rejected, "insufficient funds")
		}
		return transport.Reply{OK: true}
	}
	nc := natstest.Connect(t)
	rawRequest(t, nc, prefix+".cmd.Deposit", nil, []byte(`{}`))
	rawRequest(t, nc, prefix+".cmd.Withdraw", nil, []byte(`{}`))
	rawRequest(t, nc, prefix+".cmd.Deposit", nil, []byte(`[]`))
	// The server observes a request just after answering it: wait for the last one.
	want := []string{"Deposit/ok/false", "Withdraw/rejected/false", "Deposit/invalid/false"}
	waitFor(t, 5*time.Second, func() error {
		if done, _ := n.obs.snapshot(); fmt.Sprint(done) != fmt.Sprint(want) {
			return fmt.Errorf("observed %v, want %v", done, want)
		}
		return nil
	})
}

func TestNewServerReportsEveryProblem(t *testing.T) {
	_, err := transport.NewServer(transport.ServerConfig{Prefix: "a..b", NodeID: "n.1", MaxInFlight: -1})
	if err == nil {
		t.Fatal("accepted an empty config")
	}
	for _, want := range []string{"Conn", "Prefix", "NodeID", "MaxInFlight", "Locate", "Executor"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

// TestAnswerAtTheDeadlineArrives: an Executor that works until its context ends (a
// strong-consistency wait that runs out) still gets its answer to the caller
// through a forward: work stops a margin before the deadline, so neither the
// forwarding node nor a client waiting exactly as long as its Timeout gives up
// first and reports the outcome as unknown.
func TestAnswerAtTheDeadlineArrives(t *testing.T) {
	prefix := natstest.Prefix(t)
	startNode(t, prefix, "n1", owns("n2"))
	owner := startNode(t, prefix, "n2", owns("n2"))
	owner.exec.fn = func(ctx context.Context, req transport.Request) transport.Reply {
		<-ctx.Done()
		return transport.ErrorReply(req.CommandID, errcode.ConsistencyTimeout, "stored; the handlers were late")
	}
	client := transport.NewClient(natstest.Connect(t), transport.WithPrefix(prefix))
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
		r, err := client.Send(ctx, "Open", json.RawMessage(`{}`))
		cancel()
		if err != nil {
			t.Fatalf("the client gave up before the answer: %v", err)
		}
		wantCode(t, r, errcode.ConsistencyTimeout)
	}
}
