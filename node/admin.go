package node

import (
	"context"
	"fmt"
	"time"

	"github.com/ringleader-go/ringleader/admin"
	"github.com/ringleader-go/ringleader/cluster"
)

// startAdmin starts the admin listener (package admin) unless it is turned off.
func (n *Node) startAdmin() error {
	if !n.cfg.AdminEnabled() {
		return nil
	}
	token, err := n.cfg.AdminTokenValue()
	if err != nil {
		return err
	}
	n.admin, err = admin.Listen(admin.Config{
		Addr:    n.cfg.AdminAddr,
		Token:   token,
		Node:    adminNode{n},
		Store:   n.store,
		Metrics: n.registry(),
		Logger:  n.log,
	})
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	// Known before the first request: /cluster reports it for this node.
	n.adminAddr = n.admin.Addr()
	n.admin.Serve()
	return nil
}

// adminNode is the node as the admin endpoints read it (admin.Node).
type adminNode struct{ n *Node }

// ID implements admin.Node.
func (a adminNode) ID() string { return a.n.cfg.NodeID }

// Health implements admin.Node: ready, and NATS and the event store reachable.
func (a adminNode) Health(ctx context.Context) admin.HealthView {
	n := a.n
	h := admin.HealthView{Node: n.cfg.NodeID, Ready: n.ready.Load(), NATS: "connected", Store: "ok"}
	h.OK = h.Ready
	if n.nc == nil || !n.nc.IsConnected() {
		h.OK, h.NATS = false, "disconnected"
	}
	if _, err := n.store.HeadPosition(ctx); err != nil {
		h.OK, h.Store = false, err.Error()
	}
	return h
}

// Cluster implements admin.Node.
func (a adminNode) Cluster(key string) admin.ClusterView {
	n := a.n
	ring := n.ring.Load()
	owners := ring.PartitionOwners()
	counts := map[string]int{}
	for _, o := range owners {
		counts[o]++
	}
	view := admin.ClusterView{
		Node: n.cfg.NodeID,
		Mode: n.cfg.Cluster,
		Ring: admin.RingView{Fingerprint: ring.Fingerprint(), Partitions: ring.PartitionCount(), Owners: owners},
	}
	for _, m := range n.Members() {
		mv := admin.MemberView{ID: m.ID, Partitions: counts[m.ID]}
		if meta, err := cluster.DecodeMeta(m); err == nil {
			mv.AdminAddr, mv.Version = meta.AdminAddr, meta.Version
		} else if m.ID == n.cfg.NodeID {
			mv.AdminAddr, mv.Version = n.adminAddr, n.version
		}
		view.Members = append(view.Members, mv)
	}
	if key != "" {
		p := ring.PartitionOf(key)
		owner, _ := ring.Owner(key)
		view.Key, view.Owner, view.Partition = key, owner.ID, &p
	}
	return view
}

// Handlers implements admin.Node: the runner's status with each partition's ring
// owner.
func (a adminNode) Handlers(ctx context.Context) ([]admin.HandlerPartitionRow, error) {
	statuses, err := a.n.runner.Status(ctx)
	if err != nil {
		return nil, err
	}
	ring := a.n.ring.Load()
	rows := make([]admin.HandlerPartitionRow, len(statuses))
	for i, s := range statuses {
		rows[i].PartitionStatus = s
		if owner, ok := ring.Owner(s.Key); ok {
			rows[i].RingOwner = owner.ID
		}
	}
	return rows, nil
}

// ResetHandler implements admin.Node.
func (a adminNode) ResetHandler(ctx context.Context, name string) error {
	return a.n.runner.Reset(ctx, name)
}

// Stats implements admin.Node.
func (a adminNode) Stats() admin.StatsView {
	n := a.n
	byType, ok, failed := n.metrics.counts.snapshot()
	v := admin.StatsView{Node: n.cfg.NodeID, Time: time.Now().UTC(), Commands: byType, CommandsOK: ok, CommandsFailed: failed,
		RingMoves: n.metrics.moveCount.Load()}
	if n.dispatcher != nil {
		v.LiveAggregates = n.dispatcher.Stats().Live
	}
	return v
}
