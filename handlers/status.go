package handlers

import (
	"context"
	"fmt"
)

// PartitionStatus describes one partition of a handler, as this node sees it.
type PartitionStatus struct {
	// Handler and Partition name the partition; Key is its ring key.
	Handler   string `json:"handler"`
	Partition int    `json:"partition"`
	Key       string `json:"key"`
	// Projection is set for projections, Strong for strongly consistent handlers.
	Projection bool `json:"projection"`
	Strong     bool `json:"strong"`
	// Owned reports whether the ring gives the partition to this node.
	Owned bool `json:"owned"`
	// Owner is this node's id when the partition runs here (state running), "" when
	// it does not (it may run on another node).
	Owner string `json:"owner"`
	// State is what the partition does on this node.
	State State `json:"state"`
	// Position is the partition's stored checkpoint: the global position of the last
	// event it processed or passed over (0: none).
	Position int64 `json:"position"`
	// Head is the store's head position (eventstore.AllReader.HeadPosition).
	Head int64 `json:"head"`
	// Lag counts the events of the global order after Position up to Head, all
	// streams together (the partition's own backlog is at most this), capped at
	// RunnerConfig.LagCap. It is a number of events, not of positions: PostgreSQL
	// positions have large gaps.
	Lag int64 `json:"lag"`
	// LastError is the partition's last failure or I/O error on this node, if any.
	LastError string `json:"last_error,omitempty"`
}

// Status returns every partition of every registered handler, in registration and
// partition order. It reads the checkpoints and the head from the store.
func (r *Runner) Status(ctx context.Context) ([]PartitionStatus, error) {
	head, err := r.cfg.Store.HeadPosition(ctx)
	if err != nil {
		return nil, fmt.Errorf("handlers: status: %w", err)
	}
	var out []PartitionStatus
	for _, d := range r.definitions() {
		for _, p := range d.parts {
			pos, err := r.cfg.Store.LoadCheckpoint(ctx, p.cpName)
			if err != nil {
				return nil, fmt.Errorf("handlers: status: %w", err)
			}
			lag, err := r.countAfter(ctx, pos, head)
			if err != nil {
				return nil, fmt.Errorf("handlers: status: %w", err)
			}
			p.mu.Lock()
			s := PartitionStatus{
				Handler: d.spec.Name, Partition: p.index, Key: p.key,
				Projection: d.proj != nil, Strong: d.spec.Strong,
				Owned: p.owned, State: p.state, Position: pos, Head: head, Lag: lag, LastError: p.lastErr,
			}
			if p.state == StateRunning {
				s.Owner = r.cfg.NodeID
			}
			p.mu.Unlock()
			out = append(out, s)
		}
	}
	return out, nil
}

// countAfter counts the events with positions in (from, to], up to LagCap.
func (r *Runner) countAfter(ctx context.Context, from, to int64) (int64, error) {
	if to <= from {
		return 0, nil
	}
	if r.cfg.PG != nil {
		var n int64
		err := r.cfg.PG.Pool().QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM events
			WHERE global_position > $1 AND global_position <= $2 LIMIT $3) AS lag`, from, to, r.cfg.LagCap).Scan(&n)
		return n, err
	}
	var n int64
	for n < r.cfg.LagCap {
		page, err := r.cfg.Store.ReadAll(ctx, from+1, 1000)
		if err != nil {
			return 0, err
		}
		for _, e := range page {
			if e.GlobalPosition > to || n >= r.cfg.LagCap {
				return n, nil
			}
			n++
		}
		if len(page) < 1000 {
			break
		}
		from = page[len(page)-1].GlobalPosition
	}
	return n, nil
}
