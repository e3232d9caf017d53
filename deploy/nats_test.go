package deploy

import (
	"context"
	"errors"
	"io"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader/config"
	"github.com/ringleader-go/ringleader/errcode"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
	"github.com/ringleader-go/ringleader/examples/bank"
	"github.com/ringleader-go/ringleader/node"
	"github.com/ringleader-go/ringleader/transport"
)

// permErrors collects a connection's asynchronous permission violations.
type permErrors struct {
	mu   sync.Mutex
	errs []string
}

func (p *permErrors) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.errs = append(p.errs, err.Error())
}

func (p *permErrors) has(substr string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.errs {
		if strings.Contains(e, substr) {
			return true
		}
	}
	return false
}

// TestNATSPermissions runs a NATS server (embedded) with deploy/nats-server.conf and a
// real Ringleader node connected as the node user, then checks the permission set: a
// client sends the command types it is allowed and gets replies on its own inbox
// prefix; it cannot send other types, subscribe to command or node subjects, forge a
// forward to a node subject, or read replies without its inbox prefix.
func TestNATSPermissions(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL skipped in -short mode")
	}
	opts, err := server.ProcessConfigFile("nats-server.conf")
	if err != nil {
		t.Fatalf("nats-server.conf: %v", err)
	}
	opts.Host, opts.Port, opts.NoLog, opts.NoSigs = "127.0.0.1", -1, true, true
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server did not start")
	}
	u, _ := url.Parse(ns.ClientURL())
	urlAs := func(user, pass string) string { u := *u; u.User = url.UserPassword(user, pass); return u.String() }

	schema := pgtest.NewSchema(t)
	cfg, err := config.Load([]string{"--node-id=perm1", "--nats=" + urlAs("node", "node-secret"), "--prefix=rl", "--dsn=" + pgtest.NodeDSN(),
		"--schema=" + schema, "--cluster=none", "--admin-addr=off"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := node.Start(ctx, node.Options{App: bank.App(), Config: cfg, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("a node with the node user's permissions: %v", err)
	}
	defer func() { _ = n.Shutdown(context.Background()) }()

	connect := func(user, pass string, extra ...nats.Option) (*nats.Conn, *permErrors) {
		t.Helper()
		pe := &permErrors{}
		nc, err := nats.Connect(urlAs(user, pass), append([]nats.Option{nats.ErrorHandler(pe.handler)}, extra...)...)
		if err != nil {
			t.Fatalf("connect as %s: %v", user, err)
		}
		t.Cleanup(nc.Close)
		return nc, pe
	}
	teller, tellerErrs := connect("teller", "teller-secret", nats.CustomInboxPrefix("_INBOX_teller"))
	client := transport.NewClient(teller, transport.WithPrefix("rl"))
	send := func(c *transport.Client, typ string, body map[string]any) (transport.Reply, error) {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		return c.Send(ctx, typ, body)
	}

	// Allowed: the teller's command types, answered on its inbox.
	if r, err := send(client, "OpenAccount", map[string]any{"account_number": "P1", "initial_balance": 10}); err != nil || !r.OK {
		t.Fatalf("teller OpenAccount: %v %+v", err, r.Error)
	}
	if r, err := send(client, "DepositMoney", map[string]any{"account_number": "P1", "amount": 5}); err != nil || !r.OK {
		t.Fatalf("teller DepositMoney: %v %+v", err, r.Error)
	}
	// Refused: a type the teller may not send.
	if _, err := send(client, "CloseAccount", map[string]any{"account_number": "P1"}); err == nil {
		t.Error("teller CloseAccount got an answer")
	}
	// Refused: listening to commands or node subjects, and forging a forward.
	if _, err := teller.Subscribe("rl.cmd.>", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if _, err := teller.Subscribe("rl.node.perm1", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	forged := nats.NewMsg("rl.node.perm1")
	forged.Data = []byte(`{"account_number":"P1"}`)
	forged.Header.Set(transport.HeaderCommandType, "CloseAccount")
	forged.Header.Set(transport.HeaderForwardedBy, "evil")
	if _, err := teller.RequestMsg(forged, time.Second); err == nil {
		t.Error("a forged forward to the node subject got an answer")
	}
	_ = teller.Flush()
	deadline := time.Now().Add(5 * time.Second)
	for !(tellerErrs.has(`Subscription to "rl.cmd.>"`) && tellerErrs.has(`Subscription to "rl.node.perm1"`) &&
		tellerErrs.has(`Publish to "rl.cmd.CloseAccount"`) && tellerErrs.has(`Publish to "rl.node.perm1"`)) {
		if time.Now().After(deadline) {
			t.Fatalf("permission violations seen by the teller: %v", tellerErrs.errs)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Another client user has its own types and its own inbox.
	auditor, _ := connect("auditor", "auditor-secret", nats.CustomInboxPrefix("_INBOX_auditor"))
	if r, err := send(transport.NewClient(auditor, transport.WithPrefix("rl")), "CloseAccount", map[string]any{"account_number": "P1"}); err != nil || r.Error == nil || r.Error.Code != errcode.Rejected {
		// P1 has a balance, so the bank refuses to close it: the command got through.
		t.Errorf("auditor CloseAccount: %v %+v, want a rejected reply", err, r)
	}
	// A teller connection with the default inbox prefix cannot receive replies.
	plain, _ := connect("teller", "teller-secret")
	if _, err := send(transport.NewClient(plain, transport.WithPrefix("rl")), "OpenAccount", map[string]any{"account_number": "P2", "initial_balance": 1}); err == nil {
		t.Error("a teller without its inbox prefix got a reply")
	} else if !errors.Is(err, transport.ErrTimeout) && !strings.Contains(err.Error(), "ermission") {
		t.Logf("teller without its inbox prefix: %v", err)
	}
}
