// Package routing makes a Go client ring-aware: a Table follows the cluster's ring
// over NATS (transport.RingAnnouncement) and names the node that owns each command's
// aggregate, so that transport.Client sends the command straight to that node
// instead of to any node of the ingress queue group, which would forward it to the
// owner (with N nodes, (N-1)/N of all commands):
//
//	table, err := routing.Watch(ctx, nc, "rl", routing.StreamOf(bank.NewRouter(bank.Config{})))
//	defer table.Close()
//	client := transport.NewClient(nc, transport.WithRouter(table.Route))
//
// A Table that knows no ring yet, or holds one it cannot rebuild exactly (nodes of
// another version), routes nothing, and the client uses the ingress subject as usual.
// A ring that is out of date for a moment (a node joined or left) is harmless: a node
// executes what reaches its own subject, and the event store's optimistic concurrency
// keeps the aggregate right, at worst at the cost of a retry.
package routing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/placement"
	"github.com/ringleader-go/ringleader/transport"
)

// StreamFunc names the stream (the aggregate) a command is for, from its wire type
// and JSON body.
type StreamFunc func(commandType string, body []byte) (streamID string, err error)

// StreamOf is the StreamFunc of a domain's router: the one the nodes use.
func StreamOf(r *aggregate.Router) StreamFunc {
	return func(commandType string, body []byte) (string, error) {
		_, target, err := r.DecodeTarget(commandType, body)
		return target.StreamID, err
	}
}

// DefaultRefresh is how often a Table asks for the ring even without announcements,
// to catch up with a change it missed.
const DefaultRefresh = 30 * time.Second

// Option configures Watch.
type Option func(*Table)

// WithRefresh sets how often the Table asks for the ring unprompted (DefaultRefresh).
func WithRefresh(d time.Duration) Option { return func(t *Table) { t.refresh = d } }

// Table follows the ring of the nodes under one prefix. Its methods are safe for
// concurrent use.
type Table struct {
	nc       *nats.Conn
	prefix   string
	streamOf StreamFunc
	refresh  time.Duration

	ring atomic.Pointer[placement.Ring] // nil: routes nothing
	sub  *nats.Subscription

	stop      context.Context // done once Close is called
	closeNow  context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// Watch starts following the ring of the nodes under prefix: it listens for
// announcements and asks once now (waiting at most until ctx ends). No node
// answering is not an error: the Table routes nothing until it hears of a ring.
func Watch(ctx context.Context, nc *nats.Conn, prefix string, streamOf StreamFunc, opts ...Option) (*Table, error) {
	if nc == nil || streamOf == nil {
		return nil, errors.New("routing: Watch needs a NATS connection and a StreamFunc")
	}
	t := &Table{nc: nc, prefix: prefix, streamOf: streamOf, refresh: DefaultRefresh, done: make(chan struct{})}
	for _, o := range opts {
		o(t)
	}
	if t.refresh <= 0 {
		return nil, fmt.Errorf("routing: refresh interval must be positive, got %s", t.refresh)
	}
	// Listen before asking, so that no change between the two is missed.
	t.stop, t.closeNow = context.WithCancel(context.Background())
	sub, err := nc.Subscribe(transport.RingChangedSubject(prefix), func(m *nats.Msg) { t.install(m.Data) })
	if err != nil {
		t.closeNow()
		return nil, fmt.Errorf("routing: subscribe to ring announcements: %w", err)
	}
	t.sub = sub
	t.ask(ctx)
	go t.refreshLoop()
	return t, nil
}

// Route names the node that owns the command's aggregate, or "" when the Table knows
// no ring or cannot tell the command's stream. It fits transport.WithRouter.
func (t *Table) Route(commandType string, body []byte) string {
	ring := t.ring.Load()
	if ring == nil {
		return ""
	}
	stream, err := t.streamOf(commandType, body)
	if err != nil || stream == "" {
		return ""
	}
	owner, ok := ring.Owner(stream)
	if !ok {
		return ""
	}
	return owner.ID
}

// Ring returns the ring the Table routes by, nil when none.
func (t *Table) Ring() *placement.Ring { return t.ring.Load() }

// Close stops following the ring; Route then keeps answering from the last one.
func (t *Table) Close() {
	t.closeOnce.Do(func() {
		_ = t.sub.Unsubscribe()
		t.closeNow() // also ends a request in flight
	})
	<-t.done
}

func (t *Table) refreshLoop() {
	defer close(t.done)
	tick := time.NewTicker(t.refresh)
	defer tick.Stop()
	for {
		select {
		case <-t.stop.Done():
			return
		case <-tick.C:
			ctx, cancel := context.WithTimeout(t.stop, min(t.refresh, 5*time.Second))
			t.ask(ctx)
			cancel()
		}
	}
}

// ask requests the current ring from any node; no answer leaves the Table as it is.
func (t *Table) ask(ctx context.Context) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	m, err := t.nc.RequestWithContext(ctx, transport.RingSubject(t.prefix), nil)
	if err == nil {
		t.install(m.Data)
	}
}

// install rebuilds the announced ring; one that does not rebuild to the announced
// fingerprint (another placement version) turns routing off until a good one comes.
func (t *Table) install(data []byte) {
	var a transport.RingAnnouncement
	if err := json.Unmarshal(data, &a); err != nil || len(a.Members) == 0 {
		return
	}
	members := make([]placement.Member, len(a.Members))
	for i, id := range a.Members {
		members[i] = placement.Member{ID: id}
	}
	cfg := placement.Config{Partitions: a.Partitions, ReplicationFactor: a.ReplicationFactor, Load: a.Load}
	ring, err := placement.New(cfg, members)
	if err != nil || ring.Fingerprint() != a.Fingerprint {
		t.ring.Store(nil)
		return
	}
	if cur := t.ring.Load(); cur != nil && cur.Fingerprint() == ring.Fingerprint() {
		return
	}
	t.ring.Store(ring)
}
