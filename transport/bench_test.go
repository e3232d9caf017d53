package transport_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/ringleader-go/ringleader/transport"
	"github.com/ringleader-go/ringleader/transport/natstest"
)

// reportLatency adds p50 and p99 (microseconds) of the per-operation latencies.
func reportLatency(b *testing.B, lat []time.Duration) {
	b.Helper()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}

// BenchmarkRequestReply is the floor: a bare NATS request-reply round trip to a
// responder that echoes a fixed reply, over two connections.
func BenchmarkRequestReply(b *testing.B) {
	server, client := natstest.Connect(b), natstest.Connect(b)
	subject := natstest.Prefix(b) + ".echo"
	reply := []byte(`{"ok":true,"duplicate":false}`)
	sub, err := server.Subscribe(subject, func(m *nats.Msg) { _ = m.Respond(reply) })
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := server.Flush(); err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"account_number":"A-1","amount":5}`)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		if _, err := client.Request(subject, body, 5*time.Second); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	reportLatency(b, lat)
}

// BenchmarkServerLocal measures a command through the Client and a Server whose
// Executor does nothing: the transport's own cost over BenchmarkRequestReply.
func BenchmarkServerLocal(b *testing.B) {
	prefix := natstest.Prefix(b)
	startBenchServer(b, prefix, "n1")
	benchSends(b, prefix, "")
}

// BenchmarkServerForward measures a command that the receiving Server forwards to
// its owner (a bare responder on the owner's node subject): ingress, one hop, relay.
func BenchmarkServerForward(b *testing.B) {
	prefix := natstest.Prefix(b)
	owner := natstest.Connect(b)
	reply := []byte(`{"ok":true,"node":"n2","duplicate":false}`)
	sub, err := owner.Subscribe(transport.NodeSubject(prefix, "n2"), func(m *nats.Msg) { _ = m.Respond(reply) })
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := owner.Flush(); err != nil {
		b.Fatal(err)
	}
	startBenchServer(b, prefix, "n2")
	benchSends(b, prefix, "n2")
}

// startBenchServer starts node n1's Server with a no-op Executor; Locate names owner
// for every command. It shuts down when the benchmark ends.
func startBenchServer(b *testing.B, prefix, owner string) {
	b.Helper()
	srv, err := transport.NewServer(transport.ServerConfig{
		Conn: natstest.Connect(b), Prefix: prefix, NodeID: "n1",
		Locate: func(transport.Request) (string, error) { return owner, nil },
		Executor: transport.ExecutorFunc(func(context.Context, transport.Request) transport.Reply {
			return transport.Reply{OK: true}
		}),
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
}

// benchSends sends one command per iteration through a Client and reports latency
// percentiles; wantNode, if set, is the node every reply must name.
func benchSends(b *testing.B, prefix, wantNode string) {
	b.Helper()
	c := transport.NewClient(natstest.Connect(b), transport.WithPrefix(prefix))
	cmd := map[string]any{"account_number": "A-1", "amount": 5}
	lat := make([]time.Duration, 0, b.N)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		r, err := c.Send(ctx, "Deposit", cmd, transport.WithCommandID("c-1"))
		if err != nil || !r.OK || (wantNode != "" && r.Node != wantNode) {
			b.Fatalf("%+v %v", r, err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	reportLatency(b, lat)
}

// BenchmarkServerLocalTraced is BenchmarkServerLocal with every command traced and
// sampled (an SDK tracer provider whose spans are dropped after they end): what
// tracing on costs a command in the transport, against BenchmarkServerLocal, where
// tracing is off.
func BenchmarkServerLocalTraced(b *testing.B) {
	previous := otel.GetTracerProvider()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(discardSpans{}))
	otel.SetTracerProvider(provider)
	defer otel.SetTracerProvider(previous)
	prefix := natstest.Prefix(b)
	startBenchServer(b, prefix, "n1")
	benchSends(b, prefix, "")
}

// discardSpans is a span processor that drops every span.
type discardSpans struct{}

func (discardSpans) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (discardSpans) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (discardSpans) Shutdown(context.Context) error                  { return nil }
func (discardSpans) ForceFlush(context.Context) error                { return nil }
