// Package admin serves a node's admin HTTP API and its dashboard:
//
//	GET  /healthz                            readiness, for probes (HealthView; 503 when not ok)
//	GET  /cluster[?key=<stream>]             members and ring, and a key's owner (ClusterView)
//	GET  /handlers                           every handler partition (HandlersView)
//	POST /handlers/{name}/reset              replay a handler from its start
//	GET  /stats                              this node's counters (StatsView)
//	GET  /overview                           what the dashboard draws (OverviewView)
//	GET  /streams/{id}[?from=&limit=]        a page of a stream's events (StreamView)
//	GET  /streams/{id}/commands/{command}    what became of a command (CommandView)
//	GET  /metrics                            Prometheus metrics
//	GET  /                                   the dashboard (dashboard.html, embedded)
//
// Errors are answered as JSON {"error": "..."}. With a token set (Config.Token),
// every request but /healthz must carry it: "Authorization: Bearer <token>", or the
// cookie TokenCookie, which opening the dashboard as /?token=<token> sets.
//
// The node provides what the endpoints read through the Node interface and an event
// store (Config.Store); package admin knows nothing else of the node. /overview reads
// the other members' /stats itself, at the admin addresses /cluster shows, with this
// node's token (the members of one cluster share it).
//
// The JSON types (ClusterView, HandlersView, StatsView, ...) are the admin API's
// contract: clients such as cmd/rl decode them, so their field names change only
// compatibly.
//
// # Concurrency
//
// Requests are served concurrently, so the Node's methods and the Store must be safe
// for concurrent use. A Server's Addr and Shutdown may be called from any goroutine;
// the handler Handler returns may serve any number of requests at once.
package admin
