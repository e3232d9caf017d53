package node

import (
	"encoding/json"

	"github.com/nats-io/nats.go"

	"github.com/ringleader-go/ringleader/placement"
	"github.com/ringleader-go/ringleader/transport"
)

// ringQueue is the queue group of the nodes answering ring requests: one answers.
const ringQueue = "ringleader-ring"

// serveRing answers ring requests (transport.RingSubject) with this node's ring, for
// ring-aware clients. The subscription ends when the NATS connection is drained.
func (n *Node) serveRing() error {
	_, err := n.nc.QueueSubscribe(transport.RingSubject(n.cfg.Prefix), ringQueue, func(m *nats.Msg) {
		if m.Reply == "" {
			return
		}
		if err := m.Respond(n.ringAnnouncement(n.ring.Load())); err != nil {
			n.log.Debug().Err(err).Msg("answer a ring request")
		}
	})
	return err
}

// announceRing publishes ring on transport.RingChangedSubject; a no-op before NATS
// is connected. Clients that miss it catch up when they next ask.
func (n *Node) announceRing(ring *placement.Ring) {
	if n.nc == nil {
		return
	}
	if err := n.nc.Publish(transport.RingChangedSubject(n.cfg.Prefix), n.ringAnnouncement(ring)); err != nil {
		n.log.Debug().Err(err).Msg("announce the ring")
	}
}

// ringAnnouncement encodes ring for the wire.
func (n *Node) ringAnnouncement(ring *placement.Ring) []byte {
	cfg := ring.Config()
	a := transport.RingAnnouncement{
		Node:              n.cfg.NodeID,
		Fingerprint:       ring.Fingerprint(),
		Partitions:        cfg.Partitions,
		ReplicationFactor: cfg.ReplicationFactor,
		Load:              cfg.Load,
	}
	for _, m := range ring.Members() {
		a.Members = append(a.Members, m.ID)
	}
	b, _ := json.Marshal(a) // strings and numbers only: cannot fail
	return b
}
