package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/ringleader-go/ringleader/internal/syncbuf"
	"github.com/ringleader-go/ringleader/internal/testwait"
	"github.com/ringleader-go/ringleader/placement"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitFor polls cond until it returns nil, failing t after total.
func waitFor(t testing.TB, total time.Duration, cond func() error) {
	t.Helper()
	testwait.For(t, total, cond)
}

// holdsFor polls cond for the whole of d and fails as soon as it errors.
func holdsFor(t testing.TB, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := cond(); err != nil {
			t.Fatalf("condition broke: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logged counts the lines (or other substrings) the node logged containing substr.
func (n *testNode) logged(substr string) int { return strings.Count(n.logs.String(), substr) }

// change is one OnChange call.
type change struct {
	at  time.Time
	ids []string
}

type testNode struct {
	*Cluster
	logs *syncbuf.Buffer // memberlist's goroutines may log after a test returns, so tests never log through t

	mu      sync.Mutex
	changes []change
	calling bool // detects concurrent OnChange calls
	overlap bool
}

func (n *testNode) onChange(ms []placement.Member) {
	n.mu.Lock()
	if n.calling {
		n.overlap = true
	}
	n.calling = true
	n.changes = append(n.changes, change{at: time.Now(), ids: ids(ms)})
	n.mu.Unlock()
	time.Sleep(time.Millisecond) // widen the window for overlap detection
	n.mu.Lock()
	n.calling = false
	n.mu.Unlock()
}

func (n *testNode) history() []change {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.changes)
}

func (n *testNode) lastChange() []string {
	h := n.history()
	if len(h) == 0 {
		return nil
	}
	return h[len(h)-1].ids
}

func ids(ms []placement.Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

// startNode starts a member on 127.0.0.1 with a free port; mod adjusts the
// config. The node is closed (and checked for concurrent OnChange calls) on
// cleanup.
func startNode(t testing.TB, id string, mod func(*Config)) *testNode {
	t.Helper()
	n := &testNode{logs: &syncbuf.Buffer{}}
	var logTo io.Writer = n.logs
	if os.Getenv("RL_TEST_LOG") != "" {
		logTo = io.MultiWriter(n.logs, os.Stderr)
	}
	cfg := Config{
		NodeID:   id,
		BindAddr: "127.0.0.1",
		Meta:     Meta{AdminAddr: "127.0.0.1:80" + id[len(id)-1:], Version: "test"},
		OnChange: n.onChange,
		Logger:   zerolog.New(logTo).Level(zerolog.DebugLevel).With().Timestamp().Logger(),
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	n.Cluster = c
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close %s: %v", id, err)
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.overlap {
			t.Errorf("%s: OnChange was called concurrently", id)
		}
	})
	return n
}

func seeds(addrs ...string) func(*Config) {
	return func(c *Config) { c.Seeds = addrs }
}

// crash stops a node abruptly, with no leave broadcast, as kill -9 would;
// its later Close is a no-op.
func crash(n *testNode) {
	c := n.Cluster
	c.closeOnce.Do(func() {
		close(c.stop)
		_ = c.ml.Shutdown()
		c.wg.Wait()
	})
}

// sees reports nil when every node's member set and last OnChange are want.
func sees(want []string, nodes ...*testNode) func() error {
	return func() error {
		for _, n := range nodes {
			if got := ids(n.Members()); !slices.Equal(got, want) {
				return fmt.Errorf("%s: members %v, want %v", n.LocalID(), got, want)
			}
			if got := n.lastChange(); !slices.Equal(got, want) {
				return fmt.Errorf("%s: last OnChange %v, want %v", n.LocalID(), got, want)
			}
		}
		return nil
	}
}

// partitionNet is a switchboard for partitionTransports: it drops every
// packet and refuses every stream between two addresses that are cut.
// Every node of a test wraps its transport, so dropping outbound traffic on
// both sides cuts both directions.
type partitionNet struct {
	mu  sync.Mutex
	cut map[[2]string]bool
}

func (p *partitionNet) split(left, right []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut == nil {
		p.cut = make(map[[2]string]bool)
	}
	for _, a := range left {
		for _, b := range right {
			p.cut[[2]string{a, b}] = true
			p.cut[[2]string{b, a}] = true
		}
	}
}

func (p *partitionNet) heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = nil
}

func (p *partitionNet) blocked(from, to string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut[[2]string{from, to}]
}

// wrap is a TestingKnobs.WrapTransport for this network.
func (p *partitionNet) wrap(inner memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
	port := inner.(*memberlist.NetTransport).GetAutoBindPort()
	return &partitionTransport{
		NodeAwareTransport: inner,
		net:                p,
		self:               fmt.Sprintf("127.0.0.1:%d", port),
	}
}

var errPartitioned = errors.New("test: partitioned")

// partitionTransport is a memberlist transport that consults a partitionNet
// before sending.
type partitionTransport struct {
	memberlist.NodeAwareTransport
	net  *partitionNet
	self string
}

var _ memberlist.NodeAwareTransport = (*partitionTransport)(nil)

func (t *partitionTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (t *partitionTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if t.net.blocked(t.self, a.Addr) {
		return time.Now(), nil // lost on the wire, as UDP is
	}
	return t.NodeAwareTransport.WriteToAddress(b, a)
}

func (t *partitionTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *partitionTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if t.net.blocked(t.self, a.Addr) {
		return nil, fmt.Errorf("dial %s: %w", a.Addr, errPartitioned)
	}
	return t.NodeAwareTransport.DialAddressTimeout(a, timeout)
}
