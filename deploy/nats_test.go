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
	"github.com/ringleader-go/ringleader/internal/syncbuf"
	"github.com/ringleader-go/ringleader/internal/testapp"
	"github.com/ringleader-go/ringleader/node"
	"github.com/ringleader-go/ringleader/routing"
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

// exampleTypes maps the command types nats-server.conf grants its client users (the
// bank's, the example application) to those of the application this test runs
// (testapp): the teller's OpenAccount and DepositMoney become Add and Forget, the
// auditor's CloseAccount becomes Close.
var exampleTypes = map[string]string{"rl.cmd.OpenAccount": "rl.cmd.Add", "rl.cmd.DepositMoney": "rl.cmd.Forget", "rl.cmd.CloseAccount": "rl.cmd.Close"}

// TestNATSPermissions runs a NATS server (embedded) with deploy/nats-server.conf (its
// example command types mapped to testapp's, see exampleTypes) and a real Ringleader
// node connected as the node user, then checks the permission set: a client sends
// the command types it is allowed and gets replies on its own inbox prefix; it
// cannot send other types, subscribe to command or node subjects, forge a forward to
// a node subject, or read replies without its inbox prefix.
func TestNATSPermissions(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL skipped in -short mode")
	}
	opts, err := server.ProcessConfigFile("nats-server.conf")
	if err != nil {
		t.Fatalf("nats-server.conf: %v", err)
	}
	opts.Host, opts.Port, opts.NoLog, opts.NoSigs = "127.0.0.1", -1, true, true
	mapped := 0
	for _, u := range opts.Users {
		if u.Permissions == nil || u.Permissions.Publish == nil {
			continue
		}
		for i, subj := range u.Permissions.Publish.Allow {
			if to, ok := exampleTypes[subj]; ok {
				u.Permissions.Publish.Allow[i] = to
				mapped++
			}
		}
	}
	if mapped != len(exampleTypes) {
		t.Fatalf("nats-server.conf grants %d of the command types %v, want each once: update exampleTypes", mapped, exampleTypes)
	}
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
	// The node's log: a permission the node user lacks shows up there (and in
	// ringleader_nats_errors_total), not as a failed call.
	var nodeLog syncbuf.Buffer
	n, err := node.Start(ctx, node.Options{App: testapp.App(), Config: cfg, Logger: zerolog.New(&nodeLog)})
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
	if r, err := send(client, "Add", map[string]any{"id": "P1", "n": 10}); err != nil || !r.OK {
		t.Fatalf("teller Add: %v %+v", err, r.Error)
	}
	if r, err := send(client, "Forget", map[string]any{"id": "P1"}); err != nil || !r.OK {
		t.Fatalf("teller Forget: %v %+v", err, r.Error)
	}
	// Refused: a type the teller may not send.
	if _, err := send(client, "Close", map[string]any{"id": "P1"}); err == nil {
		t.Error("teller Close got an answer")
	}
	// Refused: listening to commands or node subjects, and forging a forward.
	if _, err := teller.Subscribe("rl.cmd.>", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if _, err := teller.Subscribe("rl.node.perm1", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	forged := nats.NewMsg("rl.node.perm1")
	forged.Data = []byte(`{"id":"P1"}`)
	forged.Header.Set(transport.HeaderCommandType, "Close")
	forged.Header.Set(transport.HeaderForwardedBy, "evil")
	if _, err := teller.RequestMsg(forged, time.Second); err == nil {
		t.Error("a forged forward to the node subject got an answer")
	}
	_ = teller.Flush()
	for _, refused := range []string{`Subscription to "rl.cmd.>"`, `Subscription to "rl.node.perm1"`, `Publish to "rl.cmd.Close"`, `Publish to "rl.node.perm1"`} {
		waitForViolation(t, tellerErrs, refused)
	}

	// Another client user has its own types and its own inbox.
	auditor, auditorErrs := connect("auditor", "auditor-secret", nats.CustomInboxPrefix("_INBOX_auditor"))
	if r, err := send(transport.NewClient(auditor, transport.WithPrefix("rl")), "Close", map[string]any{"id": "P1"}); err != nil || r.Error == nil || r.Error.Code != errcode.Rejected {
		// P1's total is not zero, so the counter refuses to close: the command got through.
		t.Errorf("auditor Close: %v %+v, want a rejected reply", err, r)
	}
	// A teller connection with the default inbox prefix cannot receive replies.
	plain, plainErrs := connect("teller", "teller-secret")
	if _, err := send(transport.NewClient(plain, transport.WithPrefix("rl")), "Add", map[string]any{"id": "P2", "n": 1}); err == nil {
		t.Error("a teller without its inbox prefix got a reply")
	} else if !errors.Is(err, transport.ErrTimeout) {
		t.Errorf("teller without its inbox prefix: %v, want a time-out (the reply cannot reach it)", err)
	}
	waitForViolation(t, plainErrs, `Subscription to "_INBOX.`)
	// Nor can one client read another's replies.
	if _, err := auditor.Subscribe("_INBOX_teller.>", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	_ = auditor.Flush()
	waitForViolation(t, auditorErrs, `Subscription to "_INBOX_teller.>"`)

	// The service user is a ring-aware client: it learns the ring from the node
	// (rl.ring, rl.ring.changed) and sends each command to its owner's subject.
	service, serviceErrs := connect("service", "service-secret", nats.CustomInboxPrefix("_INBOX_service"))
	table, err := routing.Watch(ctx, service, "rl", routing.StreamOf(testapp.NewRouter()))
	if err != nil {
		t.Fatalf("routing.Watch as the service user: %v", err)
	}
	defer table.Close()
	deadline := time.Now().Add(5 * time.Second)
	for table.Ring() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the service user's routing table learnt no ring: the node cannot answer rl.ring, or the service cannot ask")
		}
		time.Sleep(20 * time.Millisecond)
	}
	routed := transport.NewClient(service, transport.WithPrefix("rl"), transport.WithRouter(table.Route))
	if r, err := send(routed, "Add", map[string]any{"id": "P3", "n": 1}); err != nil || !r.OK {
		t.Errorf("a ring-aware Add: %v %+v", err, r)
	}
	if owner := table.Route("Add", []byte(`{"id":"P3","n":1}`)); owner != "perm1" {
		t.Errorf("the table routes Add to %q, want perm1", owner)
	}
	if len(serviceErrs.errs) > 0 {
		t.Errorf("the service user hit permission violations: %v", serviceErrs.errs)
	}
	// The node itself did everything it does (commands, forwards, ring requests and
	// announcements) within the node user's permissions.
	_ = n.Shutdown(context.Background())
	if strings.Contains(nodeLog.String(), "NATS reported an error") {
		t.Errorf("the node hit NATS errors with the node user's permissions:\n%s", nodeLog.String())
	}
}

// waitForViolation waits until pe has seen a permission violation mentioning what.
func waitForViolation(t *testing.T, pe *permErrors, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !pe.has(what) {
		if time.Now().After(deadline) {
			t.Fatalf("no permission violation mentioning %s; seen: %v", what, pe.errs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
