package node_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader"
	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/config"
	"github.com/ringleader-go/ringleader/eventstore/memstore"
	"github.com/ringleader-go/ringleader/handlers"
	"github.com/ringleader-go/ringleader/internal/testwait"
	"github.com/ringleader-go/ringleader/node"
	"github.com/ringleader-go/ringleader/transport"
	"github.com/ringleader-go/ringleader/transport/natstest"
)

// The application of these tests: a bell that rings, defined here so that the
// tests see the node through nothing but the public App.

type Ring struct {
	Bell string `json:"bell"`
}

type Rang struct {
	Bell  string `json:"bell"`
	Times int    `json:"times"`
}

type Bell struct{ Times int }

func (b *Bell) Execute(command any) ([]any, error) {
	c := command.(Ring)
	return []any{Rang{Bell: c.Bell, Times: b.Times + 1}}, nil
}

func (b *Bell) Apply(event any) { b.Times = event.(Rang).Times }

// bellApp returns the app; handlers get the Host the node gave them.
func bellApp(handlersFunc func(ringleader.Host) ([]handlers.Registrant, error)) ringleader.App {
	bell := aggregate.NewType[Bell]("bell", aggregate.TypeConfig{StreamPrefix: "bell-"}, Rang{})
	r := aggregate.NewRouter()
	aggregate.Route(r, bell, func(c Ring) string { return c.Bell })
	return ringleader.App{
		Name:     "bells",
		Router:   r,
		Settings: []config.Setting{config.Int("loudness", 3, "how loud the bell rings")},
		Handlers: handlersFunc,
	}
}

// startBellNode starts app on one in-memory node with args added to its flags, and
// returns it with its subject prefix.
func startBellNode(t *testing.T, app ringleader.App, args ...string) (*node.Node, string, error) {
	t.Helper()
	natstest.Connect(t)
	prefix := natstest.Prefix(t)
	args = append([]string{"--node-id=b1", "--nats=" + natstest.URL(), "--prefix=" + prefix, "--dsn=memory",
		"--cluster=none", "--admin-addr=off"}, args...)
	cfg, err := config.Load(args, func(string) string { return "" }, io.Discard, app.Settings...)
	if err != nil {
		t.Fatal(err)
	}
	store := memstore.New()
	t.Cleanup(func() { _ = store.Close() })
	n, err := node.Start(context.Background(), node.Options{App: app, Config: cfg, Logger: zerolog.Nop(), Store: store})
	if err == nil {
		t.Cleanup(func() { _ = n.Shutdown(context.Background()) })
	}
	return n, prefix, err
}

// TestNodeHostsAnApp: the node runs the app's commands, hands its handlers the
// app's settings and typed events, and leaves projections out without PostgreSQL.
func TestNodeHostsAnApp(t *testing.T) {
	var mu sync.Mutex
	var got []Rang
	var loudness int
	app := bellApp(func(h ringleader.Host) ([]handlers.Registrant, error) {
		loudness = h.Settings.Int("loudness")
		return []handlers.Registrant{
			handlers.Handler{Spec: handlers.Spec{Name: "listener"}, Handle: func(_ context.Context, e handlers.Event) error {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, e.Value.(Rang)) // a registered event arrives as its Go type
				return nil
			}},
			handlers.Projection{Spec: handlers.Spec{Name: "needs-postgres"},
				Project: func(context.Context, pgx.Tx, handlers.Event) error { return errors.New("never called") }},
		}, nil
	})
	n, prefix, err := startBellNode(t, app, "--loudness=7")
	if err != nil {
		t.Fatal(err)
	}
	if loudness != 7 {
		t.Errorf("the handlers saw loudness %d, want 7 (the flag)", loudness)
	}
	client := transport.NewClient(natstest.Connect(t), transport.WithPrefix(prefix))
	for range 2 {
		reply, err := client.Send(context.Background(), "Ring", Ring{Bell: "b"})
		if err != nil || !reply.OK || reply.Node != n.ID() {
			t.Fatalf("Ring: %+v, %v", reply, err)
		}
	}
	testwait.For(t, 5*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 2 || got[1] != (Rang{Bell: "b", Times: 2}) {
			return errors.New("the listener has not seen both rings")
		}
		return nil
	})
}

func TestNodeRefusesABrokenApp(t *testing.T) {
	cases := []struct {
		name string
		app  ringleader.App
		want string
	}{
		{"no name", ringleader.App{Router: bellApp(nil).Router}, "no Name"},
		{"no router", ringleader.App{Name: "x"}, "no Router"},
		{"handlers fail", bellApp(func(ringleader.Host) ([]handlers.Registrant, error) { return nil, errors.New("no database") }),
			`app "bells": handlers: no database`},
		{"handlers ask for an undeclared setting", bellApp(func(h ringleader.Host) ([]handlers.Registrant, error) {
			_ = h.Settings.Duration("volume")
			return nil, nil
		}), `Handlers panicked: config: no application setting "volume" is declared`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := startBellNode(t, c.app)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Start: %v, want an error saying %q", err, c.want)
			}
		})
	}
}

func TestRunCommands(t *testing.T) {
	app := bellApp(nil)
	var out, errOut bytes.Buffer
	if code := node.Run(context.Background(), app, []string{"version"}, func(string) string { return "" }, &out, &errOut); code != 0 || strings.TrimSpace(out.String()) != node.Version() {
		t.Errorf("version: exit %d, printed %q", code, out.String())
	}
	out.Reset()
	if code := node.Run(context.Background(), app, []string{"ring-it"}, func(string) string { return "" }, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), `unknown command "ring-it"`) {
		t.Errorf("unknown command: exit %d, said %q", code, errOut.String())
	}
	errOut.Reset()
	if code := node.Run(context.Background(), app, []string{"run", "-h"}, func(string) string { return "" }, &out, &errOut); code != 0 || !strings.Contains(errOut.String(), "-loudness") {
		t.Errorf("run -h: exit %d, does not list the app's setting:\n%s", code, errOut.String())
	}
	errOut.Reset()
	if code := node.Run(context.Background(), app, []string{"run", "--dsn=x", "--loudness=loud"}, func(string) string { return "" }, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), `--loudness: "loud" is not a whole number`) {
		t.Errorf("a bad app setting: exit %d, said %q", code, errOut.String())
	}
}
