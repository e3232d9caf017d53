package routing_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ringleader-go/ringleader/internal/testwait"
	"github.com/ringleader-go/ringleader/placement"
	"github.com/ringleader-go/ringleader/routing"
	"github.com/ringleader-go/ringleader/transport"
	"github.com/ringleader-go/ringleader/transport/natstest"
)

// streamOfBody routes a command by its body, taken as the stream id.
func streamOfBody(_ string, body []byte) (string, error) { return string(body), nil }

// announcement is what a node would send for a ring of ids.
func announcement(t *testing.T, ids ...string) (*placement.Ring, []byte) {
	t.Helper()
	members := make([]placement.Member, len(ids))
	for i, id := range ids {
		members[i] = placement.Member{ID: id}
	}
	ring, err := placement.New(placement.Config{}, members)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ring.Config()
	b, err := json.Marshal(transport.RingAnnouncement{Node: ids[0], Fingerprint: ring.Fingerprint(),
		Partitions: cfg.Partitions, ReplicationFactor: cfg.ReplicationFactor, Load: cfg.Load, Members: ids})
	if err != nil {
		t.Fatal(err)
	}
	return ring, b
}

// wantRoutes checks that the table routes like ring for a spread of streams.
func wantRoutes(t *testing.T, table *routing.Table, ring *placement.Ring) {
	t.Helper()
	seen := map[string]bool{}
	for i := range 50 {
		stream := fmt.Sprintf("account-%d", i)
		owner, _ := ring.Owner(stream)
		if got := table.Route("DepositMoney", []byte(stream)); got != owner.ID {
			t.Fatalf("route of %s = %q, want its owner %q", stream, got, owner.ID)
		}
		seen[owner.ID] = true
	}
	if len(seen) < 2 && ring.Len() > 1 {
		t.Fatalf("50 streams all owned by %v: the check proves little", seen)
	}
}

func TestTableFollowsAnnouncedRings(t *testing.T) {
	nc := natstest.Connect(t)
	prefix := natstest.Prefix(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// No node yet: the table routes nothing, and Watch does not fail.
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	table, err := routing.Watch(short, nc, prefix, streamOfBody, routing.WithRefresh(50*time.Millisecond))
	cancelShort()
	if err != nil {
		t.Fatal(err)
	}
	defer table.Close()
	if got := table.Route("DepositMoney", []byte("account-1")); got != "" {
		t.Fatalf("route with no ring known = %q, want none", got)
	}

	// A node comes up and answers requests: the refresh finds it.
	three, threeMsg := announcement(t, "n1", "n2", "n3")
	var answer atomic.Pointer[[]byte]
	answer.Store(&threeMsg)
	sub, err := nc.Subscribe(transport.RingSubject(prefix), func(m *nats.Msg) { _ = m.Respond(*answer.Load()) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	testwait.For(t, 5*time.Second, func() error {
		if table.Ring().Fingerprint() == three.Fingerprint() {
			return nil
		}
		return errors.New("waiting for the table to learn the 3-node ring")
	})
	wantRoutes(t, table, three)

	// A membership change is announced: the table follows at once.
	two, twoMsg := announcement(t, "n1", "n2")
	answer.Store(&twoMsg)
	if err := nc.Publish(transport.RingChangedSubject(prefix), twoMsg); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 5*time.Second, func() error {
		if table.Ring().Fingerprint() == two.Fingerprint() {
			return nil
		}
		return errors.New("waiting for the table to learn the 2-node ring")
	})
	wantRoutes(t, table, two)

	// Garbage is ignored; a ring that does not rebuild to its fingerprint (a node
	// of another placement version) turns routing off rather than misroute.
	_ = nc.Publish(transport.RingChangedSubject(prefix), []byte(`{"members": [`))
	var skewed transport.RingAnnouncement
	_ = json.Unmarshal(twoMsg, &skewed)
	skewed.Fingerprint = "0000000000000000"
	skewedMsg, _ := json.Marshal(skewed)
	answer.Store(&skewedMsg)
	_ = nc.Publish(transport.RingChangedSubject(prefix), skewedMsg)
	testwait.For(t, 5*time.Second, func() error {
		if table.Ring() == nil {
			return nil
		}
		return errors.New("waiting for routing to turn off")
	})
	if got := table.Route("DepositMoney", []byte("account-1")); got != "" {
		t.Fatalf("route under a ring of unknown make = %q, want none", got)
	}
}

func TestWatchRejectsBadArguments(t *testing.T) {
	nc := natstest.Connect(t)
	if _, err := routing.Watch(context.Background(), nil, "p", streamOfBody); err == nil {
		t.Error("Watch without a connection succeeded")
	}
	if _, err := routing.Watch(context.Background(), nc, "p", nil); err == nil {
		t.Error("Watch without a StreamFunc succeeded")
	}
	if _, err := routing.Watch(context.Background(), nc, "p", streamOfBody, routing.WithRefresh(0)); err == nil {
		t.Error("Watch with a zero refresh succeeded")
	}
}
