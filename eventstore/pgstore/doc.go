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
// One append is one round trip: a call of the SQL function rl_append in its own
// transaction. It locks the stream's row in the streams table, checks the expected
// version, inserts the events and advances the version. Two writers of one stream are
// serialised by that row lock; the loser of a race sees the winner's committed
// version and fails with *eventstore.WrongVersionError.
//
// # The global order never skips
//
// Global positions come from a sequence, and sequence order is not commit order: an
// append may take position 10, stall, and commit after position 11 has committed. A
// reader that handled 11 and continues from 12 would skip 10 for ever. rl_append
// therefore takes its transaction id (xid8) and its positions together under a short
// advisory lock, so a lower transaction id always means lower positions, and ReadAll
// delivers only events whose transaction id is below pg_snapshot_xmin of the current
// snapshot: every transaction that could still commit a lower position is then
// finished. The price: an open transaction that has written anything in this database
// holds back delivery (not appends) until it ends, so keep transactions short.
//
// # Notifications
//
// After each append the store wakes its local subscribers at once and, coalesced,
// sends one NOTIFY outside the append's transaction (a NOTIFY inside it would
// serialise every commit on PostgreSQL's notification queue lock). A listener
// connection per store relays other processes' notifications.
package pgstore
