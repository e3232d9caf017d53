package transport_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ringleader-go/ringleader/errcode"
	"github.com/ringleader-go/ringleader/transport"
	"github.com/ringleader-go/ringleader/transport/natsembed"
	"github.com/ringleader-go/ringleader/transport/natstest"
)

func TestClientRoundTrip(t *testing.T) {
	prefix := natstest.Prefix(t)
	n := startNode(t, prefix, "n1", owns("n1"))
	n.exec.fn = func(_ context.Context, req transport.Request) transport.Reply {
		if req.CommandType == "Withdraw" {
			return transport.ErrorReply(req.CommandID, errcode.Rejected, "insufficient funds")
		}
		return transport.Reply{OK: true, AggregateID: "A-1", AggregateVersion: 3, Duplicate: true,
			Events: []transport.ReplyEvent{{Type: "MoneyDeposited", StreamVersion: 3, GlobalPosition: 912, Data: json.RawMessage(`{"amount":5}`)}}}
	}
	c := transport.NewClient(natstest.Connect(t), transport.WithPrefix(prefix))

	start := time.Now()
	r, err := c.Send(context.Background(), "Deposit", struct {
		Account string `json:"account_number"`
		Amount  int    `json:"amount"`
	}{"A-1", 5},
		transport.WithCommandID("c-1"), transport.WithConsistency(transport.ConsistencyStrong),
		transport.WithCorrelationID("corr-1"), transport.WithCausationID("cause-1"), transport.WithTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if r.CommandID != "c-1" || r.AggregateID != "A-1" || r.AggregateVersion != 3 || !r.Duplicate || r.Node != "n1" ||
		len(r.Events) != 1 || r.Events[0].GlobalPosition != 912 || string(r.Events[0].Data) != `{"amount":5}` {
		t.Fatalf("reply %+v", r)
	}
	req := n.exec.Calls()[0]
	if req.CommandType != "Deposit" || string(req.Body) != `{"account_number":"A-1","amount":5}` ||
		req.CommandID != "c-1" || req.Consistency != "strong" || req.CorrelationID != "corr-1" || req.CausationID != "cause-1" ||
		req.Forwarded {
		t.Fatalf("request %+v", req)
	}
	if req.Deadline.Before(start) || req.Deadline.After(start.Add(2*time.Second+100*time.Millisecond)) {
		t.Fatalf("deadline %s is not about 2s after %s", req.Deadline, start)
	}

	// Bytes pass through untouched.
	for _, body := range []any{json.RawMessage(`{"raw":true}`), []byte(`{"bytes":true}`)} {
		if _, err := c.Send(context.Background(), "Deposit", body); err != nil {
			t.Fatal(err)
		}
	}
	calls := n.exec.Calls()
	if string(calls[1].Body) != `{"raw":true}` || string(calls[2].Body) != `{"bytes":true}` {
		t.Fatalf("bodies %s, %s", calls[1].Body, calls[2].Body)
	}

	// A refusal is a reply, not an error.
	r, err = c.Send(context.Background(), "Withdraw", map[string]int{"amount": 1000}, transport.WithCommandID("c-2"))
	if err != nil {
		t.Fatal(err)
	}
	var rerr *transport.ReplyError
	if !errors.As(r.Err(), &rerr) || rerr.Code != errcode.Rejected || rerr.Message != "insufficient funds" || r.CommandID != "c-2" {
		t.Fatalf("reply %+v, err %v", r, r.Err())
	}

	if _, err := c.Send(context.Background(), "bad type", map[string]int{}); err == nil {
		t.Fatal("a command type with a space was sent")
	}
	if _, err := c.Send(context.Background(), "X", func() {}); err == nil {
		t.Fatal("an unmarshallable command was sent")
	}
}

func TestClientErrors(t *testing.T) {
	nc := natstest.Connect(t)

	c := transport.NewClient(nc, transport.WithPrefix(natstest.Prefix(t)))
	_, err := c.Send(context.Background(), "Open", map[string]int{})
	if !errors.Is(err, transport.ErrNoNodes) || !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("no servers: %v, want ErrNoNodes", err)
	}

	prefix := natstest.Prefix(t)
	n := startNode(t, prefix, "n1", owns("n1"))
	n.exec.fn = func(ctx context.Context, _ transport.Request) transport.Reply {
		<-ctx.Done()
		// The node's deadline counts from its receipt, a little after the client's;
		// answer well after both, so that the reply cannot beat the client's own
		// timeout when the client's timer fires late (it did, once, in CI).
		time.Sleep(300 * time.Millisecond)
		return transport.ErrorReply("", errcode.Timeout, ctx.Err().Error())
	}
	c = transport.NewClient(nc, transport.WithPrefix(prefix), transport.WithDeadlineHeader(false))
	start := time.Now()
	_, err = c.Send(context.Background(), "Open", map[string]int{}, transport.WithTimeout(150*time.Millisecond))
	if !errors.Is(err, transport.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow node: %v, want ErrTimeout", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("timed out after %s", el)
	}
	// The node got the client's deadline as its Timeout.
	waitFor(t, 5*time.Second, func() error {
		if len(n.exec.Calls()) == 0 {
			return errNotYet
		}
		return nil
	})
	if left := n.exec.Calls()[0].Deadline.Sub(start); left > 150*time.Millisecond+50*time.Millisecond {
		t.Fatalf("node deadline %s after send, want about 150ms", left)
	}

	// A context deadline works as WithTimeout does.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Send(ctx, "Open", map[string]int{}); !errors.Is(err, transport.ErrTimeout) {
		t.Fatalf("context deadline: %v", err)
	}

	// A reply that is not a reply.
	bogus := natstest.Prefix(t)
	sub, err := nc.Subscribe(bogus+".cmd.>", func(m *nats.Msg) { _ = m.Respond([]byte("not json")) })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if _, err := transport.NewClient(nc, transport.WithPrefix(bogus)).Send(context.Background(), "Open", map[string]int{}); !errors.Is(err, transport.ErrBadReply) {
		t.Fatalf("bad reply: %v", err)
	}
}

// The embedded dev server is enough to run a node and a client (as `make demo` does).
func TestEmbeddedServerCarriesCommands(t *testing.T) {
	ns, err := natsembed.Start(natsembed.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	connect := func() *nats.Conn {
		nc, err := nats.Connect(ns.URL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	exec := &fakeExec{}
	srv, err := transport.NewServer(transport.ServerConfig{
		Conn: connect(), NodeID: "n1", Executor: exec,
		Locate: func(transport.Request) (string, error) { return "n1", nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	r, err := transport.NewClient(connect()).Send(context.Background(), "Open", map[string]string{"account_number": "A-1"})
	if err != nil || !r.OK || r.Node != "n1" {
		t.Fatalf("reply %+v, err %v", r, err)
	}
}
