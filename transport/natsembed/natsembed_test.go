package natsembed_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ringleader-go/ringleader/transport/natsembed"
)

func TestStartServeShutdown(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatalf("connect to %s: %v", srv.URL(), err)
	}
	defer nc.Close()
	sub, err := nc.Subscribe("echo", func(m *nats.Msg) { _ = m.Respond(m.Data) })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	resp, err := nc.Request("echo", []byte("hi"), 2*time.Second)
	if err != nil {
		t.Fatalf("echo: %v", err)
	}
	if string(resp.Data) != "hi" {
		t.Fatalf("echo: got %q", resp.Data)
	}
	nc.Close()
	srv.Shutdown()
	srv.Shutdown() // idempotent
	if _, err := nats.Connect(srv.URL(), nats.MaxReconnects(0)); err == nil {
		t.Fatal("connected after Shutdown")
	}
}

func TestStartValidates(t *testing.T) {
	if _, err := natsembed.Start(natsembed.Options{JetStream: true}); err == nil {
		t.Fatal("JetStream without StoreDir accepted")
	}
}

func TestJetStream(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Options{JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(); err != nil {
		t.Fatalf("JetStream not enabled: %v", err)
	}
}
