// Package transport carries Ringleader commands over NATS: the ingress every node
// serves, the one-hop forward to the owner node, the reply encoding of the wire
// contract, and a Go client for applications. It knows nothing of aggregates or the
// ring: a Server is given a Locate function (who owns this request?) and an Executor
// (run it here).
//
// # Subjects
//
//	<prefix>.cmd.<CommandType>   requests from clients; every node subscribes to
//	                             <prefix>.cmd.> in queue group <prefix>.ingress,
//	                             so exactly one node receives each request
//	<prefix>.node.<NodeID>       forwards from other nodes (plain subscription)
//
// The prefix defaults to "rl".
//
// # Wire contract (docs/wire-contract.md)
//
// The request body is the command as a JSON object. Optional headers:
//
//	header          meaning
//	Command-Id      idempotency key; a retry is answered with the original outcome
//	                and "duplicate": true (by the Executor)
//	Consistency     "eventual" (default) or "strong"; anything else is invalid
//	Correlation-Id  copied into every event's metadata
//	Causation-Id    copied into every event's metadata
//	Timeout         Go duration, > 0 and <= ServerConfig.MaxTimeout (default 5m);
//	                the node stops waiting after it (default 5s)
//	Deadline        extension: absolute RFC 3339 deadline; a request picked up after
//	                it is answered "timeout" without being executed (see below)
//
// The reply body is a Reply:
//
//	{"ok":true,"command_id":"c-1","aggregate_id":"A-1","aggregate_version":3,
//	 "events":[{"type":"MoneyDeposited","stream_version":3,"global_position":912,"data":{}}],
//	 "node":"n2","duplicate":false}
//	{"ok":false,"command_id":"c-2","node":"n1","duplicate":false,
//	 "error":{"code":"rejected","message":"insufficient funds"}}
//
// Error codes and who produces them:
//
//	code             produced by
//	invalid          the server: empty, malformed or non-object JSON; a body over
//	                 MaxBodyBytes; a bad Timeout, Consistency or Deadline header.
//	                 Locate: an error without a Coder. The Executor: missing identity.
//	unknown_command  Locate or the Executor (no route for the type)
//	rejected         the Executor (the aggregate refused)
//	conflict         the Executor (concurrency retries exhausted)
//	timeout          the server: deadline passed before pickup (not executed) or the
//	                 owner did not answer a forward in time (outcome unknown).
//	                 The Executor: its context ended.
//	unavailable      the server: shutting down, over MaxInFlight, forward failed,
//	                 a panic, an Executor reply without a valid code
//
// Every reply is a JSON object with "ok" set; a failed one always has error.code.
// A request with no reply subject is ignored (logged at debug level).
//
// # A request's path through a Server
//
//  1. Admission (on the subscription's delivery goroutine): no reply subject →
//     ignored; shutting down or MaxInFlight requests already running → unavailable.
//     Otherwise the request gets a goroutine of its own.
//  2. Parsing: subject and headers, size limit, JSON object check. A failure is
//     answered invalid without calling Locate or the Executor.
//  3. Late delivery: if the deadline (receive time + Timeout, or the Deadline header
//     if earlier) has passed, the request is answered timeout and not executed. The
//     NATS client library buffers publishes while reconnecting and sends them later,
//     possibly after the caller gave up; Command-Id deduplication covers whatever
//     slips past this check.
//  4. Routing (only for requests from the ingress): Locate names the owner. This
//     node, or "", → the Executor. Another node → a NATS request to its node subject
//     carrying every header, the remaining time as Timeout, the absolute Deadline,
//     Rl-Command-Type and Rl-Forwarded-By; the owner's reply bytes are relayed as
//     they are. A request arriving on the node subject is executed here even if
//     Locate would disagree: one hop at most, and the event store's
//     expected-version check arbitrates.
//  5. Forward failures: no responders (the owner left before membership noticed) →
//     executed here, again relying on the store to arbitrate — a possible OCC retry
//     is better than refusing commands for the seconds gossip needs to converge; the
//     forward timing out → timeout; anything else → unavailable.
//
// # Concurrency contract
//
// Server, Client and natsembed.Server are safe for concurrent use. A Server runs
// each request in its own goroutine, at most MaxInFlight at once; the Executor is
// called concurrently and must serialise per aggregate itself. Panics in Locate or
// the Executor are recovered, logged with their stack and answered unavailable.
// Shutdown drains both subscriptions (requests already delivered to the node are
// still handled), then waits for every in-flight request; when its context ends
// first it unsubscribes, cancels the in-flight contexts and returns ctx.Err().
// The Observer is called from request goroutines and must not block. Neither Server
// nor Client closes the *nats.Conn it is given.
package transport
