package aggregate

import (
	"maps"
	"time"
)

// Consistency is what a dispatch waits for before answering.
type Consistency string

const (
	// Eventual answers as soon as the events are stored (the default).
	Eventual Consistency = "eventual"
	// Strong additionally waits for the strongly consistent event handlers to process
	// the events, through Config.StrongConsistency; without one it is recorded only.
	Strong Consistency = "strong"
)

// Option is a dispatch option.
type Option func(*dispatchOptions)

type dispatchOptions struct {
	commandID       string
	causationID     string
	correlationID   string
	metadata        map[string]string
	consistency     Consistency
	timeout         time.Duration
	expectedVersion int64
	hasExpected     bool
	expectExists    bool
	returnState     bool
}

// WithCommandID sets the command's idempotency key (the wire's Command-Id): a command
// whose id already has an outcome in its aggregate's stream is not executed again;
// Dispatch returns the original outcome: the appended events with Result.Duplicate
// set, or the original rejection (see the package doc). Without it a fresh UUID is
// used and no duplicate check is made.
func WithCommandID(id string) Option { return func(o *dispatchOptions) { o.commandID = id } }

// WithCausationID sets the causation id written into the events' metadata; default
// the command id.
func WithCausationID(id string) Option { return func(o *dispatchOptions) { o.causationID = id } }

// WithCorrelationID sets the correlation id written into the events' metadata;
// default the command id.
func WithCorrelationID(id string) Option { return func(o *dispatchOptions) { o.correlationID = id } }

// WithMetadata adds entries to every recorded event's metadata. The runtime's own keys
// (command, causation and correlation id) win over entries of the same name.
func WithMetadata(m map[string]string) Option {
	return func(o *dispatchOptions) {
		if o.metadata == nil {
			o.metadata = map[string]string{}
		}
		maps.Copy(o.metadata, m)
	}
}

// WithConsistency sets the consistency to wait for (default Eventual).
func WithConsistency(c Consistency) Option { return func(o *dispatchOptions) { o.consistency = c } }

// WithTimeout bounds how long Dispatch waits, overriding the route's, the aggregate
// type's and the dispatcher's default (5 s). It only shortens the context's deadline.
func WithTimeout(d time.Duration) Option { return func(o *dispatchOptions) { o.timeout = d } }

// ExpectVersion executes the command only if the aggregate is at version v when its
// turn comes (0 meaning it has no events yet); otherwise Dispatch fails with an
// *ExpectedVersionError (code conflict). A duplicate command id is answered as a
// duplicate before this check.
func ExpectVersion(v int64) Option {
	return func(o *dispatchOptions) { o.expectedVersion, o.hasExpected = v, true }
}

// ExpectNoStream executes the command only if the aggregate has no events yet: it is
// ExpectVersion(0).
func ExpectNoStream() Option { return ExpectVersion(0) }

// ExpectExists executes the command only if the aggregate has at least one event;
// otherwise Dispatch fails with an *ExpectedVersionError (code conflict).
func ExpectExists() Option { return func(o *dispatchOptions) { o.expectExists = true } }

// ReturnState makes the Result carry a copy of the aggregate's state after the
// command (Result.State, a pointer to the state type). It costs a JSON round trip.
func ReturnState() Option { return func(o *dispatchOptions) { o.returnState = true } }
