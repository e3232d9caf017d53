// Package process runs process managers (Commanded's ProcessManager, the saga
// pattern) on top of event handlers: long-running workflows that react to events by
// dispatching commands, keeping per-process state between events.
//
// A Manager is defined by pure functions over a state type S (no I/O, no clock):
//
//   - Interested(event) says whether the event starts, continues or stops a process,
//     and which one (its process id); the zero Interest ignores the event;
//   - Handle(state, event) returns the commands the event calls for;
//   - Apply(state, event) folds the event into the state;
//   - Outcome(state, command, outcome) folds the answer to a dispatched command into
//     the state and may return further commands (the reaction to a rejection,
//     a compensation, the next step).
//
// The Manager's Handle method is an event handler function: register it as a
// handlers.Handler (Manager.Handler). It loads the process's record from a
// StateStore, applies the event, journals the commands and dispatches them one at a
// time through a Dispatcher — the node's normal command path — saving the record
// after every answer.
//
// # Exactly-once effects on an at-least-once feed
//
// Events reach a handler at least once, and a node may crash at any point. The
// Manager therefore keeps, per process, a record holding the state, the global
// position of the last event applied, the journal of commands not yet answered and a
// status (running, stopping, done), and relies on three rules:
//
//  1. An event at or below the record's last position is not applied again; only the
//     journal left by an interrupted handling is resumed.
//  2. Every command gets a deterministic command id,
//     "<manager>:<process id>:<event id>:<n>", when it is journaled, before it is
//     dispatched; a command dispatched again after a crash carries the same id and the
//     aggregate answers the original outcome without executing it twice.
//  3. An answer is folded in (Outcome) and saved before anything it causes is
//     dispatched. The aggregate records a rejection under the command id too, so a
//     re-sent rejected command is rejected again; and once its rejection is saved here
//     it is never re-sent, so a compensation can never coexist with the effect it
//     compensates.
//
// The causation id of every command is the id of the event that started the chain,
// and its correlation id is the process id (Config.Correlation changes that).
//
// A process stops after the event its Interested marked Stop has been handled and
// its journal drained; its record stays as a tombstone (status done), so re-delivered
// or late events for it — including its start event — are ignored.
//
// # Scheduling
//
// Handle and Outcome may also return ScheduleAt(name, dueAt, command) and
// CancelSchedule(name) requests (Config.Scheduler, a *scheduler.Store in a node,
// carries them out). They are journaled and drained in order with the commands; the
// schedule id is "<manager>:<process id>:<name>", so a redelivered event or a resumed
// journal schedules the same id again, which the scheduler treats as a no-op. The
// fired command carries that id as its Command-Id and the process's correlation and
// causation ids; its events reach the process like any others. Outcome is not
// called for scheduling requests; a scheduler outage is a *DispatchError (retry), a
// request it refuses for good a *RejectedError with code invalid.
//
// # Errors
//
// A Dispatcher error, or an Outcome with a transient code (timeout, unavailable,
// conflict), makes Handle return a *DispatchError: the handler's OnError decides to
// retry, and a retry sends the same command ids. A refusal (rejected, invalid,
// unknown_command) is handed to Outcome; without an Outcome function it fails the
// event with a *RejectedError. A record changed concurrently (two partitions or two
// nodes handling the same process) fails the save with ErrConflict, also retryable.
//
// # Concurrency contract
//
// Handle may be called concurrently for events of different processes. Events of one
// process must come from one handler partition (route them by a stream they share) to
// be handled in order; concurrent handling of one process is detected (ErrConflict),
// not serialised. The definition's functions are called on the calling goroutine and
// must not block. StateStore implementations are safe for concurrent use.
package process
