// Package node assembles a Ringleader node from its parts: the event store, the
// aggregate dispatcher hosting a domain (examples/bank), cluster membership and the
// placement ring, the NATS transport, and the admin HTTP listener. cmd/node is a thin
// main around it; tests and the demo start nodes in-process with it too.
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
// admin.go and adminview.go serve /healthz, /cluster, /handlers, the reset, /stats,
// /overview, /streams/{id}, /metrics and the embedded dashboard (dashboard.html,
// which draws /overview). With an admin token every request but /healthz must carry
// it (security.go): a bearer header, or the cookie the dashboard's ?token= sets.
//
// # Lifecycle
//
// Start brings the parts up in dependency order and returns a running node; Shutdown
// takes them down in reverse: stop taking commands and drain in-flight ones, leave
// the cluster, stop the aggregates, close NATS and the store. Shutdown is idempotent.
package node
