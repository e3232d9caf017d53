// Package node runs a ringleader.App as a cluster node, assembled from its parts:
// the event store (wrapped in the application's upcasters and crypto-shredding), the
// aggregate dispatcher hosting the application's router, its handlers, projections
// and process managers, cluster membership and the placement ring, the NATS
// transport, the scheduler and the admin HTTP listener.
//
// Main (or Run) is a whole service's main: `func main() { node.Main(shop.App()) }`
// runs, migrates or reports the version, with the node's and the application's
// settings from flags, RL_* environment variables and a JSON file. Start starts a
// node in-process (tests, the demo); ringtest.StartCluster starts several.
//
// # Ownership
//
// The node keeps the current ring in an atomic pointer. Membership changes (already
// coalesced by the cluster package) build a new ring; live aggregates this node no
// longer owns are passivated after their in-progress command, and their new owner
// rehydrates them from the store on their next command. In ClusterNone mode the ring
// holds only this node, so it owns everything and the store arbitrates between nodes.
//
// # Admin listener
//
// Package admin serves the admin HTTP API (/healthz, /cluster, /handlers, the reset,
// /stats, /overview, /streams/{id}, /metrics and the dashboard) and defines its JSON.
// The node starts it on --admin-addr with the admin token (admin.go) and provides
// what the endpoints read through admin.Node: its health, ring, handler partitions
// and counters, besides its event store and Prometheus registry.
//
// # Lifecycle
//
// Start brings the parts up in dependency order and returns a running node; Shutdown
// takes them down in reverse: stop taking commands and drain in-flight ones, leave
// the cluster, stop the aggregates, close NATS and the store. Shutdown is idempotent.
package node
