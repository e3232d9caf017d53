package transport_test

import (
	"context"
	"testing"

	"github.com/ringleader-go/ringleader/transport"
	"github.com/ringleader-go/ringleader/transport/natstest"
)

// A ring-aware client reaches the owner on its node subject (no forward, Locate not
// consulted), keeps every header, and falls back to the ingress subject when the
// named node is not there.
func TestClientWithRouter(t *testing.T) {
	prefix := natstest.Prefix(t)
	n1 := startNode(t, prefix, "n1", owns("n2"))
	n2 := startNode(t, prefix, "n2", owns("n2"))
	route := "n2"
	c := transport.NewClient(natstest.Connect(t), transport.WithPrefix(prefix),
		transport.WithRouter(func(commandType string, body []byte) string {
			if commandType != "Deposit" || string(body) != `{"account_number":"A-1"}` {
				t.Errorf("router asked about %s %s", commandType, body)
			}
			return route
		}))
	send := func() transport.Reply {
		t.Helper()
		r, err := c.Send(context.Background(), "Deposit", []byte(`{"account_number":"A-1"}`),
			transport.WithCommandID("c-1"), transport.WithCorrelationID("corr"))
		if err != nil || !r.OK {
			t.Fatalf("reply %+v, err %v", r, err)
		}
		return r
	}
	if r := send(); r.Node != "n2" {
		t.Fatalf("answered by %s, want the owner n2", r.Node)
	}
	if n1.locates.Load()+n2.locates.Load() != 0 {
		t.Fatal("a direct command went through Locate")
	}
	if _, fw := n1.obs.snapshot(); len(fw) != 0 {
		t.Fatalf("n1 forwarded %v", fw)
	}
	calls := n2.exec.Calls()
	if len(calls) != 1 || calls[0].CommandType != "Deposit" || calls[0].CommandID != "c-1" || calls[0].CorrelationID != "corr" || !calls[0].Forwarded {
		t.Fatalf("n2 executed %+v", calls)
	}

	route = "n9" // not a member: the ingress subject routes it
	if r := send(); r.Node != "n2" {
		t.Fatalf("fallback answered by %s, want the owner n2", r.Node)
	}
	if n1.locates.Load()+n2.locates.Load() != 1 {
		t.Fatalf("the fallback did not go through the ingress (locates %d, %d)", n1.locates.Load(), n2.locates.Load())
	}
}
