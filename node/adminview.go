package node

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/ringleader-go/ringleader/eventstore"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ringleader-go/ringleader/handlers"
)

// commandCounts counts the commands a node answered, by type and outcome code, for
// /stats (the same numbers as ringleader_commands_total, without a scrape parser).
type commandCounts struct {
	mu     sync.Mutex
	counts map[string]map[string]int64 // type → code → count
}

// maxCountedTypes bounds the command types /stats tells apart: the type comes from
// the subject a client chose, so past this many the rest count as "(other)".
const maxCountedTypes = 100

func (c *commandCounts) add(commandType, code string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]map[string]int64{}
	}
	if _, seen := c.counts[commandType]; !seen && len(c.counts) >= maxCountedTypes {
		commandType = "(other)"
	}
	m := c.counts[commandType]
	if m == nil {
		m = map[string]int64{}
		c.counts[commandType] = m
	}
	m[code]++
}

func (c *commandCounts) snapshot() (byType map[string]map[string]int64, ok, failed int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	byType = make(map[string]map[string]int64, len(c.counts))
	for typ, codes := range c.counts {
		cp := make(map[string]int64, len(codes))
		for code, n := range codes {
			cp[code] = n
			if code == "ok" {
				ok += n
			} else {
				failed += n
			}
		}
		byType[typ] = cp
	}
	return byType, ok, failed
}

// StatsView is the JSON of /stats: this node's own counters. Counters only grow;
// a reader computes rates from two readings and their times.
type StatsView struct {
	// Node is the id of the node answering.
	Node string `json:"node"`
	// Time is when the counters were read (RFC 3339).
	Time time.Time `json:"time"`
	// LiveAggregates is the number of aggregate instances in memory.
	LiveAggregates int `json:"live_aggregates"`
	// CommandsOK and CommandsFailed count the commands this node executed (or
	// refused) since start-up; a command forwarded to its owner counts on the owner
	// only, so the members' counts add up to the cluster's.
	CommandsOK     int64 `json:"commands_ok"`
	CommandsFailed int64 `json:"commands_failed"`
	// Commands counts answered commands by type, then by outcome code ("ok" or a
	// wire error code).
	Commands map[string]map[string]int64 `json:"commands"`
	// RingMoves counts ring partitions that changed owner since start-up.
	RingMoves int64 `json:"ring_moves"`
	// Error is set in /overview when the member's /stats could not be read.
	Error string `json:"error,omitempty"`
}

// OverviewView is the JSON of /overview: everything the dashboard draws, in one
// request to one node: the cluster as this node sees it, each member's /stats
// (fetched from the member's admin listener with this node's token), and every
// handler partition with its ring owner.
type OverviewView struct {
	// Cluster is /cluster of the answering node.
	Cluster ClusterView `json:"cluster"`
	// Stats holds each member's /stats, by member id (with Error set for a member
	// that could not be read).
	Stats map[string]StatsView `json:"stats"`
	// Handlers are the handler partitions, as in /handlers.
	Handlers []HandlerPartitionRow `json:"handlers"`
	// HandlersError is set when the handler status could not be read.
	HandlersError string `json:"handlers_error,omitempty"`
}

// HandlerPartitionRow is one handler partition in /handlers and /overview: its
// status as the store and this node see it, and the node the ring gives it to.
type HandlerPartitionRow struct {
	handlers.PartitionStatus
	// RingOwner is the member the ring assigns the partition's key to.
	RingOwner string `json:"ring_owner"`
}

// StreamView is the JSON of /streams/{id}.
type StreamView struct {
	// Stream is the stream id asked for.
	Stream string `json:"stream"`
	// From is the first stream version asked for; Next is the one to ask for next
	// (0 when the page was not full: the end was reached).
	From int64 `json:"from"`
	Next int64 `json:"next,omitempty"`
	// Events are the page's events in stream order.
	Events []StreamEvent `json:"events"`
}

// StreamEvent is one event in StreamView: eventstore.RecordedEvent as JSON (the
// fields mean the same).
type StreamEvent struct {
	StreamVersion  int64             `json:"stream_version"`
	GlobalPosition int64             `json:"global_position"`
	ID             string            `json:"id"`
	Type           string            `json:"type"`
	Data           json.RawMessage   `json:"data"`
	Metadata       map[string]string `json:"metadata"`
	CreatedAt      time.Time         `json:"created_at"`
}

// CommandView is the JSON of /streams/{id}/commands/{command}: what became of a
// command with a Command-Id in a stream. A command has events or an outcome, never
// both; neither means the stream holds no decision of it.
type CommandView struct {
	Stream    string `json:"stream"`
	CommandID string `json:"command_id"`
	// Events are the events the command appended, in stream order.
	Events []StreamEvent `json:"events"`
	// Outcome is the recorded answer of a command that appended nothing.
	Outcome *OutcomeView `json:"outcome,omitempty"`
}

// OutcomeView is eventstore.CommandOutcome as JSON (the fields mean the same).
type OutcomeView struct {
	StreamVersion int64     `json:"stream_version"`
	Code          string    `json:"code"`
	Message       string    `json:"message"`
	CreatedAt     time.Time `json:"created_at"`
}

func (n *Node) handleCommand(w http.ResponseWriter, r *http.Request) {
	id, command := r.PathValue("id"), r.PathValue("command")
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	events, err := n.store.ReadCommandEvents(ctx, id, command)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		return
	}
	view := CommandView{Stream: id, CommandID: command, Events: make([]StreamEvent, 0, len(events))}
	for _, e := range events {
		view.Events = append(view.Events, streamEvent(e))
	}
	if len(events) == 0 {
		o, err := n.store.ReadOutcome(ctx, id, command)
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
			return
		}
		if o != nil {
			view.Outcome = &OutcomeView{StreamVersion: o.StreamVersion, Code: o.Code, Message: o.Message, CreatedAt: o.CreatedAt}
		}
	}
	writeJSON(w, http.StatusOK, view)
}

// streamEvent is the JSON of one recorded event.
func streamEvent(e eventstore.RecordedEvent) StreamEvent {
	return StreamEvent{StreamVersion: e.StreamVersion, GlobalPosition: e.GlobalPosition,
		ID: e.ID.String(), Type: e.Type, Data: e.Data, Metadata: e.Metadata, CreatedAt: e.CreatedAt}
}

func (n *Node) stats() StatsView {
	byType, ok, failed := n.metrics.counts.snapshot()
	v := StatsView{Node: n.cfg.NodeID, Time: time.Now().UTC(), Commands: byType, CommandsOK: ok, CommandsFailed: failed,
		RingMoves: n.metrics.moveCount.Load()}
	if n.dispatcher != nil {
		v.LiveAggregates = n.dispatcher.Stats().Live
	}
	return v
}

func (n *Node) handleStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, n.stats())
}

// handlerRows is the runner's status with each partition's ring owner.
func (n *Node) handlerRows(ctx context.Context) ([]HandlerPartitionRow, error) {
	statuses, err := n.runner.Status(ctx)
	if err != nil {
		return nil, err
	}
	ring := n.ring.Load()
	rows := make([]HandlerPartitionRow, len(statuses))
	for i, s := range statuses {
		rows[i].PartitionStatus = s
		if owner, ok := ring.Owner(s.Key); ok {
			rows[i].RingOwner = owner.ID
		}
	}
	return rows, nil
}

func (n *Node) handleOverview(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	view := OverviewView{Cluster: n.clusterView(""), Stats: map[string]StatsView{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range view.Cluster.Members {
		if m.ID == n.cfg.NodeID {
			view.Stats[m.ID] = n.stats()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := n.remoteStats(ctx, m.AdminAddr)
			if err != nil {
				s = StatsView{Node: m.ID, Error: err.Error()}
			}
			mu.Lock()
			view.Stats[m.ID] = s
			mu.Unlock()
		}()
	}
	rows, err := n.handlerRows(ctx)
	if err != nil {
		view.HandlersError = err.Error()
	}
	view.Handlers = rows
	wg.Wait()
	writeJSON(w, http.StatusOK, view)
}

// remoteStats reads another member's /stats, with this node's admin token (the
// members of one cluster share it).
func (n *Node) remoteStats(ctx context.Context, admin string) (StatsView, error) {
	var v StatsView
	if admin == "" {
		return v, fmt.Errorf("no admin address gossiped")
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/stats", nil)
	if err != nil {
		return v, err
	}
	if n.adminToken != "" {
		req.Header.Set("Authorization", "Bearer "+n.adminToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return v, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return v, fmt.Errorf("%s/stats answered %s", admin, resp.Status)
	}
	return v, json.NewDecoder(resp.Body).Decode(&v)
}

// maxStreamPage bounds /streams/{id}?limit=.
const maxStreamPage = 1000

// handleStream lists a stream's events: GET /streams/{id}?from=<version>&limit=<n>
// (from default 1, limit default 100, at most 1000). Personal data is shown
// decrypted, as the node reads it (the admin listener is an operator's view).
func (n *Node) handleStream(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	q := r.URL.Query()
	from, limit := int64(1), 100
	if v := q.Get("from"); v != "" {
		f, err := strconv.ParseInt(v, 10, 64)
		if err != nil || f < 1 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "from must be a stream version ≥ 1"})
			return
		}
		from = f
	}
	if v := q.Get("limit"); v != "" {
		l, err := strconv.Atoi(v)
		if err != nil || l < 1 || l > maxStreamPage {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("limit must be 1..%d", maxStreamPage)})
			return
		}
		limit = l
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	events, err := n.store.ReadStream(ctx, id, from, limit)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		return
	}
	view := StreamView{Stream: id, From: from, Events: make([]StreamEvent, 0, len(events))}
	for _, e := range events {
		view.Events = append(view.Events, streamEvent(e))
	}
	if len(events) == limit {
		view.Next = events[len(events)-1].StreamVersion + 1
	}
	writeJSON(w, http.StatusOK, view)
}
