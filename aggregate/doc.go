// Package aggregate is Ringleader's aggregate runtime on one node: it routes
// commands to aggregates, executes them against state rebuilt from the event store,
// appends the resulting events with optimistic concurrency, and keeps a bounded set
// of aggregate instances live in memory. The cluster layer (NATS ingress, the ring)
// calls into a Dispatcher on the node that owns an aggregate.
//
// # Defining a domain
//
// An aggregate's state is a Go type whose pointer implements State: Execute(command)
// returns events or an error, Apply(event) folds an event in. Both are pure. Register
// it with NewType, naming its event types by example, and route its commands:
//
//	account := aggregate.NewType[Account]("account",
//		aggregate.TypeConfig{StreamPrefix: "account-", Snapshots: aggregate.SnapshotPolicy{Every: 100, Version: 1}},
//		AccountOpened{}, MoneyDeposited{})
//	r := aggregate.NewRouter()
//	aggregate.Route(r, account, func(c OpenAccount) string { return c.AccountNumber })
//	aggregate.Route(r, account, func(c DepositMoney) string { return c.AccountNumber })
//	d, err := aggregate.New(aggregate.Config{Store: store, Router: r})
//	defer d.Close()
//	res, err := d.Dispatch(ctx, DepositMoney{AccountNumber: "A1", Amount: 10}, aggregate.WithCommandID("c-1"))
//
// Commands and events are named by their Go type names (or a CommandType/EventType
// method) and travel as JSON: Router.Decode builds a command from the wire, events
// are stored as eventstore.EventData and decoded back into their Go types. Routers
// compose with Include; Middleware runs Before, After and OnFailure each dispatch.
//
// Execute refuses a command by returning an error; a *Rejection (Reject) gives it a
// machine-readable reason that clients and process managers act on. A command's
// Validate method refuses malformed input; an InvalidField error names the field.
//
//	var ErrInsufficientFunds = aggregate.Reject("insufficient_funds", "insufficient funds")
//
// # Concurrency contract
//
// Every live aggregate is one goroutine reading an unbuffered mailbox, so commands to
// one aggregate run one at a time, in the order the instance takes them, and
// commands to different aggregates run in parallel. Execute and Apply are only ever
// called from that goroutine; they need no locks and must not block. The Router and
// Types are read-only once the Dispatcher is created; Dispatch, Stats, Passivate and
// Close are safe for concurrent use.
//
// A command is appended with the expected version the instance holds. If another
// writer got there first (a second dispatcher on the same store: the split-brain
// case), the instance reads the events it missed, applies them, and runs the
// command again, up to Config.MaxRetries times, then fails with a *ConflictError.
// A panic in user code fails that command with a *PanicError and drops the
// instance's state; the next command rehydrates it. The process never goes down.
//
// # Group commit
//
// When the store implements eventstore.BatchAppender (pgstore does), appends of
// different instances share transactions: an append that finds fewer than
// Config.AppendBatchesInFlight appends in flight goes at once, alone (an idle node
// appends exactly as without batching; nothing waits to fill a batch); appends that
// arrive meanwhile queue, and each time one returns, everything queued (up to
// Config.MaxAppendBatch) goes as the next AppendMany. Each append keeps its own
// expected version: one that loses comes back to its instance alone, which catches up
// and retries as above. MaxAppendBatch of 1 or less turns batching off.
//
// # Lifetime of instances
//
// An instance starts on its first command: it loads the latest snapshot of its
// type's schema version and replays later events. After each command the type's
// Lifespan decides whether it stops now, stays for a while or stays until evicted
// (measured with Config.Now and applied by a sweeper every SweepInterval). At most
// Config.MaxLive instances are live: starting one more passivates the least recently
// used idle one (or, if the coldest are all busy, the coldest one). Stopping an
// instance never interrupts its in-progress command; commands it had not taken yet
// go to its successor. Close stops everything the same way and waits.
//
// # Idempotent commands
//
// A command dispatched WithCommandID(id) is executed at most once per aggregate: the
// id is stored in every event's metadata (eventstore.MetaCommandID), and a later
// dispatch with the same id answers the original outcome with Result.Duplicate set,
// without appending, even after a restart or on another node. The instance
// remembers the ids of the events it replayed or appended (the most recent
// Config.CommandIDMemory of them), which proves most ids new or repeated without the
// store. For the part of the stream it did not see (before a snapshot, or
// forgotten) it does not look the id up first: the command's events get ids derived
// from the command id (eventstore.CommandEventID), so the store refuses a repeat's
// events with eventstore.ErrDuplicateEventID, and only then is the original outcome
// read from the store's command index.
//
// An answer that appends nothing — a rejection by Execute, or a success without
// events — is made just as final: it is recorded in the store
// (eventstore.OutcomeStore) before it is given, on the condition that the stream is
// still at the version it was decided on and the id has no outcome yet. A retry, or
// a copy of the command delivered late to another owner after a split, gets the
// original rejection (a *RejectedError wrapping a *PriorRejectionError with the
// original message) or the original success marked Duplicate, even when the state
// has changed so that it would now decide otherwise. A rejection decided on a stale
// state (another node appended meanwhile) is not recorded: the instance catches up
// and decides again. Panics and failed expected versions are not recorded; they are
// decided again when retried. Commands without an id record nothing. A store may
// delete outcomes after a retention window (eventstore.OutcomeStore.PruneOutcomes,
// a node's --outcome-retention); a retry after that is decided again.
// A command id is scoped to its aggregate's stream.
//
// # Errors
//
// Dispatch errors wrap the Err sentinels and typed errors of this package; CodeOf
// maps any of them to a wire code (package errcode), ReasonOf finds a rejection's
// reason. A timed-out command may still complete: retry it with the same command id
// to learn its fate. With Strong consistency, ErrConsistencyTimeout comes with the
// Result: the events are stored, the handlers were late.
package aggregate
