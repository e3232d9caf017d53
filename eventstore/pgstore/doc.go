// Package pgstore is Ringleader's PostgreSQL event store (pgx/v5), an
// eventstore.Store.
//
//	store, err := pgstore.Open(ctx, "postgres://app@db/ringleader", pgstore.WithSchema("ringleader"))
//	defer store.Close()
//
// Open applies the embedded migrations (idempotently, under an advisory lock) unless
// WithoutMigrations is given; Migrate applies them on its own, for `node migrate`.
// Every table lives in one schema (default "ringleader"), so tests and tenants can
// isolate themselves; the pool's search_path is set to it.
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
// # Notifications
//
// After each append the store wakes its local subscribers at once and, coalesced,
// sends one NOTIFY outside the append's transaction (a NOTIFY inside it would
// serialise every commit on PostgreSQL's notification queue lock). A listener
// connection per store relays other processes' notifications.
package pgstore
