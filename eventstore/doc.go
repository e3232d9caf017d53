// Package eventstore defines Ringleader's event store: the Store interface that the
// aggregate runtime and the event handlers consume, the types that cross it, and the
// errors every implementation returns.
//
// Two implementations live in sub-packages and pass one conformance suite
// (eventstore/storetest):
//
//   - eventstore/pgstore: PostgreSQL via pgx/v5, the production store;
//   - eventstore/memstore: in memory, for unit tests.
//
// # Streams and versions
//
// A stream is identified by a non-empty string. Its events carry stream versions
// 1, 2, … n with no gap. Append takes an ExpectedVersion: AnyVersion, NoStream,
// StreamExists or an exact version (Exact(n)). When the expectation does not hold, the
// append writes nothing and returns a *WrongVersionError (errors.Is(err,
// ErrWrongVersion)) that carries the stream's actual version. This is what arbitrates
// between two nodes that both believe they own an aggregate.
//
// # The global order
//
// Every event also has a global position, strictly increasing in the order readers of
// ReadAll see events commit. A reader that stores the last position it handled and
// later reads from the next one never skips an event, even one whose transaction was
// slow to commit: implementations hold back events that a still-running append could
// precede (see pgstore for how PostgreSQL does it). Positions may have gaps.
//
// # Concurrency
//
// Every Store method is safe for concurrent use by multiple goroutines.
package eventstore
