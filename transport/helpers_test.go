package transport_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ringleader-go/ringleader/internal/testwait"
	"github.com/ringleader-go/ringleader/transport"
	"github.com/ringleader-go/ringleader/transport/natstest"
)

// fakeExec records the requests it executes and answers ok (or what fn says).
type fakeExec struct {
	node  string
	fn    func(ctx context.Context, req transport.Request) transport.Reply
	mu    sync.Mutex
	calls []transport.Request
}

var _ transport.Executor = (*fakeExec)(nil)

func (f *fakeExec) Execute(ctx context.Context, req transport.Request) transport.Reply {
	f.mu.Lock()
	f.calls = append(f.calls, req)
	f.mu.Unlock()
	if f.fn != nil {
		return f.fn(ctx, req)
	}
	return transport.Reply{OK: true, AggregateID: "A-1", AggregateVersion: 1,
		Events: []transport.ReplyEvent{{Type: "Done", StreamVersion: 1, GlobalPosition: 7, Data: json.RawMessage(`{}`)}}}
}

func (f *fakeExec) Calls() []transport.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]transport.Request(nil), f.calls...)
}

// recObserver records Observer calls.
type recObserver struct {
	mu        sync.Mutex
	done      []string // "type/code/forwarded"
	forwarded []string
}

func (o *recObserver) CommandDone(_ context.Context, commandType, code string, forwarded bool, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.done = append(o.done, fmt.Sprintf("%s/%s/%v", commandType, code, forwarded))
}

func (o *recObserver) Forwarded(toNode string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.forwarded = append(o.forwarded, toNode)
}

func (o *recObserver) snapshot() (done, forwarded []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.done...), append([]string(nil), o.forwarded...)
}

// node is a started Server with its fakes.
type node struct {
	srv     *transport.Server
	exec    *fakeExec
	obs     *recObserver
	locates atomic.Int64
}

// startNode starts a Server on its own connection, owner telling Locate's answer,
// and shuts it down when the test ends. edit may change the config.
func startNode(t *testing.T, prefix, id string, owner func(transport.Request) (string, error), edit ...func(*transport.ServerConfig)) *node {
	t.Helper()
	n := &node{exec: &fakeExec{node: id}, obs: &recObserver{}}
	cfg := transport.ServerConfig{
		Conn:   natstest.Connect(t),
		Prefix: prefix,
		NodeID: id,
		Locate: func(req transport.Request) (string, error) {
			n.locates.Add(1)
			return owner(req)
		},
		Executor: n.exec,
		Observer: n.obs,
	}
	for _, e := range edit {
		e(&cfg)
	}
	srv, err := transport.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	n.srv = srv
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown %s: %v", id, err)
		}
	})
	return n
}

func owns(id string) func(transport.Request) (string, error) {
	return func(transport.Request) (string, error) { return id, nil }
}

// rawRequest sends body with headers to subject and decodes the reply.
func rawRequest(t *testing.T, nc *nats.Conn, subject string, hdr nats.Header, body []byte) transport.Reply {
	t.Helper()
	msg := nats.NewMsg(subject)
	for k, v := range hdr {
		msg.Header[k] = v
	}
	msg.Data = body
	resp, err := nc.RequestMsg(msg, 10*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	var r transport.Reply
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		t.Fatalf("reply is not JSON: %v: %q", err, resp.Data)
	}
	return r
}

// waitFor polls cond until it returns nil, failing t after total.
func waitFor(t *testing.T, total time.Duration, cond func() error) {
	t.Helper()
	testwait.For(t, total, cond)
}

func wantCode(t *testing.T, r transport.Reply, code string) {
	t.Helper()
	if r.OK || r.Error == nil || r.Error.Code != code {
		t.Fatalf("want code %q, got %+v (error %+v)", code, r, r.Error)
	}
}

var errNotYet = errors.New("not yet")
