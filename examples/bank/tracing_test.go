package bank_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ringleader-go/ringleader/examples/bank"
	"github.com/ringleader-go/ringleader/internal/testwait"
	"github.com/ringleader-go/ringleader/ringtest"
	"github.com/ringleader-go/ringleader/tracing"
	"github.com/ringleader-go/ringleader/transport"
)

// TestTransferIsOneTrace: a transfer sent with a trace, run by a 3-node cluster whose
// transfer and accounts have three different owners, leaves one trace: the client's
// send, each node's command and dispatch spans with their rehydrate, execute and
// append, the process manager's handling of each event it reacts to, and the
// commands it sends on, each span's parent in the trace.
func TestTransferIsOneTrace(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	previous := otel.GetTracerProvider()
	otel.SetTracerProvider(provider)
	t.Cleanup(func() { otel.SetTracerProvider(previous) })

	c := ringtest.StartCluster(t, bank.App(), ringtest.Options{Nodes: 3, Postgres: true})
	ring := c.Nodes()[0].Ring()
	owner := func(stream string) string { m, _ := ring.Owner(stream); return m.ID }
	transferOwner := owner(bank.TransferStreamPrefix + "T1")
	from, to := distinctOwners(owner, transferOwner)

	ctx := context.Background()
	for _, open := range []bank.OpenAccount{{AccountNumber: from, InitialBalance: 100}, {AccountNumber: to}} {
		if r, err := c.Send(ctx, open); err != nil || !r.OK {
			t.Fatalf("open %s: %+v %v", open.AccountNumber, r, err)
		}
	}
	tctx, root := provider.Tracer("test").Start(ctx, "test transfer")
	r, err := c.Send(tctx, bank.TransferMoney{TransferID: "T1", FromAccount: from, ToAccount: to, Amount: 30}, transport.WithCommandID("t-1"))
	root.End()
	if err != nil || !r.OK {
		t.Fatalf("transfer: %+v %v", r, err)
	}
	traceID := root.SpanContext().TraceID()
	inTrace := func() []tracetest.SpanStub {
		var out []tracetest.SpanStub
		for _, s := range spans.GetSpans() {
			if s.SpanContext.TraceID() == traceID {
				out = append(out, s)
			}
		}
		return out
	}
	testwait.For(t, 30*time.Second, func() error {
		if named(inTrace(), "dispatch MarkTransferCompleted") == nil {
			return fmt.Errorf("the transfer's last command is not in its trace yet (%d spans)", len(inTrace()))
		}
		return nil
	})
	_ = provider.ForceFlush(ctx)
	got := inTrace()

	byID := map[trace.SpanID]tracetest.SpanStub{}
	for _, s := range got {
		byID[s.SpanContext.SpanID()] = s
	}
	for _, s := range got {
		if p := s.Parent; p.IsValid() && p.TraceID() == traceID {
			if _, ok := byID[p.SpanID()]; !ok && p.SpanID() != root.SpanContext().SpanID() {
				t.Errorf("span %q has a parent that is not in the trace", s.Name)
			}
		}
	}
	// The chain from the client to the process manager's command and back.
	chain := []string{
		"send TransferMoney", "command TransferMoney", "dispatch TransferMoney", "append",
	}
	for _, name := range append(chain, "rehydrate", "execute", "decode",
		"handle "+bank.TransferProcessName+" TransferRequested", "send WithdrawMoney", "command WithdrawMoney",
		"dispatch WithdrawMoney", "dispatch MarkTransferDebited", "dispatch DepositMoney", "dispatch MarkTransferCompleted") {
		if named(got, name) == nil {
			t.Errorf("no span %q in the transfer's trace", name)
		}
	}
	ancestors := func(s *tracetest.SpanStub) []string {
		var names []string
		for s != nil && s.Parent.IsValid() {
			p, ok := byID[s.Parent.SpanID()]
			if !ok {
				break
			}
			names = append(names, p.Name)
			s = &p
		}
		return names
	}
	if w := named(got, "dispatch WithdrawMoney"); w != nil {
		a := ancestors(w)
		for _, want := range []string{"command WithdrawMoney", "send WithdrawMoney", "handle " + bank.TransferProcessName + " TransferRequested", "dispatch TransferMoney", "command TransferMoney", "send TransferMoney"} {
			if !slices.Contains(a, want) {
				t.Errorf("the withdrawal's dispatch does not descend from %q: its ancestors are %q", want, a)
			}
		}
	}
	if a := named(got, "append"); a != nil && !slices.ContainsFunc(a.Attributes, func(kv attribute.KeyValue) bool { return kv.Key == tracing.AttrBatchSize }) {
		t.Errorf("an append span without its group commit's batch size: %v", a.Attributes)
	}
	// The commands ran on the nodes that own their aggregates: three of them.
	nodes := map[string]bool{}
	for _, s := range got {
		for _, kv := range s.Attributes {
			if kv.Key == tracing.AttrNode {
				nodes[kv.Value.AsString()] = true
			}
		}
	}
	for _, n := range []string{transferOwner, owner(bank.AccountStreamPrefix + from), owner(bank.AccountStreamPrefix + to)} {
		if !nodes[n] {
			t.Errorf("no span of node %s, which owns one of the transfer's aggregates (nodes seen: %v)", n, nodes)
		}
	}
}

// named returns the first span called name, or nil.
func named(spans []tracetest.SpanStub, name string) *tracetest.SpanStub {
	for i := range spans {
		if spans[i].Name == name {
			return &spans[i]
		}
	}
	return nil
}

// distinctOwners picks two account numbers whose owners differ from each other and
// from taken.
func distinctOwners(owner func(string) string, taken string) (string, string) {
	var picked []string
	used := map[string]bool{taken: true}
	for i := 0; len(picked) < 2 && i < 1000; i++ {
		id := fmt.Sprintf("TR%d", i)
		if o := owner(bank.AccountStreamPrefix + id); !used[o] {
			used[o] = true
			picked = append(picked, id)
		}
	}
	return picked[0], picked[1]
}
