// Package errcode defines the wire error codes: the one word a command's reply
// carries in error.code when it did not succeed, and what a client should do about
// it. docs/wire-contract.md is the contract these constants implement; aggregate
// maps dispatch errors to them, transport puts them on the wire, and process
// managers read them in their commands' outcomes.
//
// The constants are untyped strings, so they compare with any string field. The
// package has no state; everything in it is safe for concurrent use.
package errcode

// The wire error codes.
const (
	// Invalid: the request can never succeed as sent: malformed or non-object JSON,
	// a bad header, a missing identity, a failed validation, a body over the size
	// limit. Do not retry it unchanged.
	Invalid = "invalid"
	// UnknownCommand: no route for the command type. Do not retry.
	UnknownCommand = "unknown_command"
	// Rejected: the aggregate (or a middleware) refused the command, or the domain
	// code panicked. Nothing was appended; retrying with the same Command-Id returns
	// the same rejection.
	Rejected = "rejected"
	// Conflict: the expected version did not hold, or optimistic-concurrency retries
	// were exhausted. Nothing was appended; a retry may succeed.
	Conflict = "conflict"
	// Timeout: the deadline passed; the command may or may not have been applied.
	// Resend it with the same Command-Id to find out.
	Timeout = "timeout"
	// ConsistencyTimeout: the command succeeded and its events are stored (the reply
	// carries them), but the strongly consistent handlers had not processed them when
	// the deadline passed. Resending with the same Command-Id appends nothing and
	// waits again.
	ConsistencyTimeout = "consistency_timeout"
	// Unavailable: the owner is unreachable, the node overloaded or shutting down,
	// the store down, or an internal failure. A retry (same Command-Id) may succeed.
	Unavailable = "unavailable"
)

// Valid reports whether code is one of the wire error codes.
func Valid(code string) bool {
	switch code {
	case Invalid, UnknownCommand, Rejected, Conflict, Timeout, ConsistencyTimeout, Unavailable:
		return true
	}
	return false
}

// Transient reports whether code says nothing definite about the command: it may or
// may not have been applied (Timeout), or a retry may succeed (Unavailable,
// Conflict). ConsistencyTimeout is not transient: the command was applied.
func Transient(code string) bool {
	switch code {
	case Timeout, Unavailable, Conflict:
		return true
	}
	return false
}
