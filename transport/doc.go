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
//	<prefix>.node.<NodeID>       forwards from other nodes and ring-aware clients
//	                             (plain subscription)
//
// The prefix defaults to "rl".
//
// # Wire contract
//
// docs/wire-contract.md is the contract, for clients in any language: subjects,
// headers, the reply and the error codes. This package implements it: the Header*
// constants name the headers, parseRequest reads them (refusing any header the
// contract does not know), Reply is the reply body and ContractVersion its version.
//
// Error codes and who produces them:
//
//	code             produced by
//	invalid          the server: empty, malformed or non-object JSON; a body over
//	                 MaxBodyBytes; a bad or unknown header. Locate: an error
//	                 without a Coder. The Executor: missing identity.
//	unknown_command  Locate or the Executor (no route for the type)
//	rejected         the Executor (the aggregate refused)
//	conflict         the Executor (expected version, concurrency retries exhausted)
//	timeout          the server: deadline passed before pickup (not executed) or the
//	                 owner did not answer a forward in time (outcome unknown).
//	                 The Executor: its context ended.
//	consistency_timeout  the Executor (stored, strong consistency not reached)
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
