package admin

import (
	"encoding/json"
	"time"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/handlers"
)

// HealthView is the JSON of /healthz, answered 200 when OK and 503 otherwise. Its
// fields are in alphabetical order, as /healthz has always listed them.
type HealthView struct {
	// NATS is "connected" or "disconnected".
	NATS string `json:"nats"`
	// Node is the id of the node answering.
	Node string `json:"node"`
	// OK: the node takes commands (Ready) and can reach NATS and its event store.
	OK bool `json:"ok"`
	// Ready: the node has started and is not shutting down.
	Ready bool `json:"ready"`
	// Store is "ok", or the error of reading the event store.
	Store string `json:"store"`
}

// ClusterView is the JSON of /cluster: members and ring ownership as this node sees
// them.
type ClusterView struct {
	// Node is the id of the node answering.
	Node string `json:"node"`
	// Mode is the cluster mode (gossip or none).
	Mode string `json:"mode"`
	// Members are the cluster's members.
	Members []MemberView `json:"members"`
	// Ring describes the placement ring.
	Ring RingView `json:"ring"`
	// Key and Owner answer /cluster?key=…: which node owns that key (a stream id).
	Key   string `json:"key,omitempty"`
	Owner string `json:"owner,omitempty"`
	// Partition is the ring partition of Key.
	Partition *int `json:"partition,omitempty"`
}

// MemberView is one member in ClusterView.
type MemberView struct {
	ID string `json:"id"`
	// AdminAddr is the member's admin listener ("" when it gossiped none); /overview
	// reads the member's /stats there.
	AdminAddr  string `json:"admin,omitempty"`
	Version    string `json:"version,omitempty"`
	Partitions int    `json:"partitions"`
}

// RingView is the ring in ClusterView.
type RingView struct {
	Fingerprint string `json:"fingerprint"`
	Partitions  int    `json:"partitions"`
	// Owners lists the owner node of each partition, by partition number.
	Owners []string `json:"owners"`
}

// HandlersView is the JSON of /handlers.
type HandlersView struct {
	// Node is the id of the node answering.
	Node string `json:"node"`
	// Partitions are every handler partition, in registration and partition order.
	Partitions []HandlerPartitionRow `json:"partitions"`
}

// HandlerPartitionRow is one handler partition in /handlers and /overview: its
// status as the store and this node see it, and the node the ring gives it to.
type HandlerPartitionRow struct {
	handlers.PartitionStatus
	// RingOwner is the member the ring assigns the partition's key to.
	RingOwner string `json:"ring_owner"`
}

// resetReply is the JSON answer of a successful POST /handlers/{name}/reset.
type resetReply struct {
	Handler string `json:"handler"`
	Reset   bool   `json:"reset"`
}

// ErrorView is the JSON body of every error answer of the admin API. Code is one of
// the Code* constants, which says the HTTP status too; Message is for people.
type ErrorView struct {
	Code    string `json:"code"`
	Message string `json:"message"`
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

// streamEvent is the JSON of one recorded event.
func streamEvent(e eventstore.RecordedEvent) StreamEvent {
	return StreamEvent{StreamVersion: e.StreamVersion, GlobalPosition: e.GlobalPosition,
		ID: e.ID.String(), Type: e.Type, Data: e.Data, Metadata: e.Metadata, CreatedAt: e.CreatedAt}
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
	Reason        string    `json:"reason,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
}
