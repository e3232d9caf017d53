// Package pgstore is Ringleader's PostgreSQL event store (pgx/v5), an
// eventstore.Store.
//
//	store, err := pgstore.Open(ctx, "postgres://app@db/ringleader", pgstore.WithSchema("ringleader"))
//	defer store.Close()
//
// Open applies the embedded migrations (idempotently, under an advisory lock) unless
// WithoutMigrations is given; Migrate applies them on its own, for `node migrate`.
// Every table lives in one schema (default "ringleader"), so tests and tenants can
// isolate themselves; the pool's search_path is set to it. The migrations create every
// table of the runtime, those of other packages included (process_state for
// handlers/process, schedules for scheduler, pii_keys for eventstore/shred); those
// packages only check, with RequireTable, that their table is there.
//
// # Appends
//
// An append is one INSERT … SELECT in its own transaction (AppendSQL): one round trip.
// The statement inserts versions v+1…v+n only if version v exists (or v is 0), and
// (stream_id, stream_version) is unique, so versions are 1..n with no gap and, of two
// writers expecting the same version, exactly one succeeds: the loser waits for the
// winner's commit and gets a unique violation, reported as
// *eventstore.WrongVersionError. There is no per-stream row to lock or update.
//
// # Group commit
//
// AppendMany (eventstore.BatchAppender) appends to many streams in one round trip and
// one transaction: one INSERT … SELECT over arrays holding every event (appendManySQL),
// so N commands of N aggregates cost one statement and one commit. Each stream keeps
// its own check: its events go in only if its expected version exists, and a version
// another writer holds is skipped (ON CONFLICT on (stream_id, stream_version) only), so
// that stream's request fails with a WrongVersionError while the others commit.
// Whoever holds version v+k (k > 1) of a stream wrote or saw v+1 first, so a conflict
// always hits a stream's first event and a stream gets all or none of its events; a
// guard in the same statement, over the rows it inserted, rolls the whole transaction
// back if that ever failed, and every request is then appended alone — as it is after
// any failure of the statement as a whole, e.g. a duplicate event id — so each gets
// exactly Append's verdict. Rows go in stream-id order, so two batches never wait for
// each other in a cycle. Positions are the transaction's xid * 65536 + the event's
// index in it, as for Append, so the watermark below is unchanged. The aggregate
// runtime batches the appends of different instances with it
// (aggregate.Config.MaxAppendBatch): measured on a 2-core machine, one event to each
// of 8 / 32 / 128 streams per transaction gives about 2.5× / 4.4× / 5.2× the appends
// per second of single appends (BenchmarkAppendMany).
//
// # The global order never skips
//
// A sequence value is not commit order: an append may take position 10, stall, and
// commit after position 11 has committed, and a reader that handled 11 and continues
// from 12 would skip 10 for ever. So positions are not drawn from a sequence: an
// event's global_position is its transaction's id (xid8) * 65536 plus its index in
// the transaction. ReadAll delivers only positions below
// pg_snapshot_xmin(pg_current_snapshot()) * 65536, i.e. events of transactions older
// than every transaction still running. Any transaction that commits later has an id
// at or above that xmin and hence higher positions than everything delivered. This
// needs no lock and no sequence, and the condition is a range on the primary key.
//
// The costs: positions have gaps (position >> 16 is the writing transaction's id); a
// transaction appends at most PositionsPerTransaction events; and an open transaction
// that has written anything anywhere in the PostgreSQL cluster holds back delivery
// (not appends) until it ends, so long-running write transactions delay handlers.
//
// The pool runs with plan_cache_mode = force_generic_plan unless the DSN sets it:
// PostgreSQL otherwise keeps re-planning the append statement, which cost half its
// throughput.
//
// # Command outcomes
//
// RecordOutcome (eventstore.OutcomeStore) writes a row of command_outcomes for a
// command that appended nothing, and an append of an idempotent command's events
// (ids derived from its id, eventstore.KeyedCommandIDs) is refused when the command
// has such a row. Both transactions first take
// pg_advisory_xact_lock on the (stream, command) pair, in a statement of its own, so
// the statements after it see the other's commit: of a racing append and outcome of
// one command, exactly one succeeds. The lock and the check ride in the append's own
// round trip; appends of no idempotent command skip both.
//
// # Notifications
//
// After each append the store wakes its local subscribers at once. Other processes
// learn of appends by NOTIFY, coalesced: the first append after a quiet spell
// (WithNotifyInterval) carries pg_notify in its own transaction, and appends that no
// later append covered get a small transaction of their own just after the interval.
// A listener connection per store relays other processes' notifications.
package pgstore
