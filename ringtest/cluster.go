package ringtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader"
	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/config"
	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/memstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
	"github.com/ringleader-go/ringleader/eventstore/shred"
	"github.com/ringleader-go/ringleader/node"
	"github.com/ringleader-go/ringleader/transport"
	"github.com/ringleader-go/ringleader/transport/natsembed"
)

// Options configure StartCluster.
type Options struct {
	// Nodes is how many nodes to start. Zero means 3.
	Nodes int
	// Postgres puts the event store in PostgreSQL (RL_TEST_DSN, default the local
	// test database), in a schema made for the test and dropped after it; without
	// it the nodes share one in-memory store, and projections do not run. When
	// PostgreSQL is unreachable the test is skipped, or fails when CI is set.
	Postgres bool
	// Args are further node flags, such as the application's own settings
	// ("--order-timeout=1s").
	Args []string
	// Logs, if set, receives every node's logs (zerolog JSON, one line each).
	Logs io.Writer
}

// Cluster is a running in-process cluster of one application.
type Cluster struct {
	app    ringleader.App
	prefix string
	nats   *natsembed.Server
	nc     *nats.Conn
	client *transport.Client
	store  eventstore.Store

	mu    sync.Mutex
	nodes []*node.Node
}

// StartCluster starts app on opts.Nodes nodes joined by gossip, waits until every
// node sees all of them, and stops everything when the test ends.
func StartCluster(t testing.TB, app ringleader.App, opts Options) *Cluster {
	t.Helper()
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	// The schema first: cleanups run last-registered first, so it is dropped only
	// after the nodes are stopped.
	storeArgs := []string{"--dsn=memory"}
	var schema string
	if opts.Postgres {
		schema = pgtest.NewSchema(t)
		storeArgs = []string{"--dsn=" + pgtest.NodeDSN(), "--schema=" + schema}
	}
	ns, err := natsembed.Start(natsembed.Options{Host: "127.0.0.1"})
	if err != nil {
		t.Fatalf("ringtest: start NATS: %v", err)
	}
	c := &Cluster{app: app, prefix: "ringtest", nats: ns}
	t.Cleanup(c.stop)
	if c.nc, err = nats.Connect(ns.URL()); err != nil {
		t.Fatalf("ringtest: connect to NATS: %v", err)
	}
	c.client = transport.NewClient(c.nc, transport.WithPrefix(c.prefix))
	if opts.Postgres {
		pg, err := pgstore.Open(context.Background(), pgtest.DSN(), pgstore.WithSchema(schema))
		if err != nil {
			t.Fatalf("ringtest: open the event store: %v", err)
		}
		c.store = pg
	} else {
		c.store = memstore.New()
	}
	keys := shred.NewMemTable() // shared like the in-memory store; PostgreSQL has its own

	gossip := freePorts(t, opts.Nodes)
	logs := opts.Logs
	if logs == nil {
		logs = io.Discard
	}
	for i := range opts.Nodes {
		args := append([]string{
			fmt.Sprintf("--node-id=n%d", i+1), "--nats=" + ns.URL(), "--prefix=" + c.prefix,
			fmt.Sprintf("--gossip-addr=127.0.0.1:%d", gossip[i]), fmt.Sprintf("--seeds=127.0.0.1:%d", gossip[0]),
			"--admin-addr=off",
		}, storeArgs...)
		cfg, err := config.Load(append(args, opts.Args...), func(string) string { return "" }, io.Discard, app.Settings...)
		if err != nil {
			t.Fatalf("ringtest: node settings: %v", err)
		}
		o := node.Options{App: app, Config: cfg, Logger: zerolog.New(logs), KeyTable: keys, Version: "ringtest"}
		if !opts.Postgres {
			o.Store = c.store
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		n, err := node.Start(ctx, o)
		cancel()
		if err != nil {
			t.Fatalf("ringtest: start node n%d: %v", i+1, err)
		}
		c.mu.Lock()
		c.nodes = append(c.nodes, n)
		c.mu.Unlock()
	}
	if err := c.waitForMembers(opts.Nodes, 30*time.Second); err != nil {
		t.Fatalf("ringtest: %v", err)
	}
	return c
}

// waitForMembers waits until every running node sees want members and all have the
// same ring.
func (c *Cluster) waitForMembers(want int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		rings := map[string]bool{}
		agreed := true
		for _, n := range c.Nodes() {
			agreed = agreed && len(n.Members()) == want
			rings[n.Ring().Fingerprint()] = true
		}
		if agreed && len(rings) == 1 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the nodes did not agree on a ring of %d members within %s", want, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Send sends command through NATS, like any client: its type is the name the
// application's router gives it, and any node may receive it and forward it to the
// aggregate's owner. A command that got an answer returns it, failures included:
// a rejected, invalid or conflicting command is a Reply with OK false and
// Reply.Code() saying why (Reply.Err() as an error), and err is nil. err reports only
// that no answer came (transport.ErrTimeout, transport.ErrNoNodes) or a command of a
// type the router does not route.
func (c *Cluster) Send(ctx context.Context, command any, opts ...transport.SendOption) (transport.Reply, error) {
	target, err := c.app.Router.Identify(command)
	var invalid *aggregate.InvalidError
	if errors.As(err, &invalid) && invalid.CommandType != "" {
		// Known type, invalid fields: let the cluster say so, as it would to a client.
		target.CommandType, err = invalid.CommandType, nil
	}
	if err != nil {
		return transport.Reply{}, fmt.Errorf("ringtest: %w", err)
	}
	return c.client.Send(ctx, target.CommandType, command, opts...)
}

// Client returns the cluster's NATS command client.
func (c *Cluster) Client() *transport.Client { return c.client }

// Conn returns the test's NATS connection.
func (c *Cluster) Conn() *nats.Conn { return c.nc }

// NATSURL returns the embedded NATS server's URL.
func (c *Cluster) NATSURL() string { return c.nats.URL() }

// Prefix returns the nodes' subject prefix: commands go to <prefix>.cmd.<Type>.
func (c *Cluster) Prefix() string { return c.prefix }

// Store returns the event store underneath the nodes (a *pgstore.Store with
// Options.Postgres): read events from it to check what the cluster recorded.
func (c *Cluster) Store() eventstore.Store { return c.store }

// Nodes returns the running nodes.
func (c *Cluster) Nodes() []*node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*node.Node(nil), c.nodes...)
}

// Stop shuts node i (an index into Nodes) down gracefully, as a rolling restart or
// a failover test would, and waits until the other nodes agree on the smaller ring:
// when it returns they own the node's aggregates and handler partitions.
func (c *Cluster) Stop(i int) error {
	c.mu.Lock()
	if i < 0 || i >= len(c.nodes) {
		c.mu.Unlock()
		return fmt.Errorf("ringtest: no node %d of %d", i, len(c.nodes))
	}
	n := c.nodes[i]
	c.nodes = append(c.nodes[:i:i], c.nodes[i+1:]...)
	left := len(c.nodes)
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		return fmt.Errorf("ringtest: stop node %s: %w", n.ID(), err)
	}
	if left == 0 {
		return nil
	}
	if err := c.waitForMembers(left, 30*time.Second); err != nil {
		return fmt.Errorf("ringtest: after stopping node %s: %w", n.ID(), err)
	}
	return nil
}

// stop shuts everything down, nodes first.
func (c *Cluster) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, n := range c.Nodes() {
		wg.Add(1)
		go func() { defer wg.Done(); _ = n.Shutdown(ctx) }()
	}
	wg.Wait()
	if c.nc != nil {
		c.nc.Close()
	}
	if c.store != nil {
		_ = c.store.Close()
	}
	c.nats.Shutdown()
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	out := make([]int, n)
	for i := range out {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("ringtest: find a free port: %v", err)
		}
		defer l.Close() // held until all are chosen, so they differ
		out[i] = l.Addr().(*net.TCPAddr).Port
	}
	return out
}
