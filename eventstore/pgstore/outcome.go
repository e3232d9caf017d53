package pgstore

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ringleader-go/ringleader/eventstore"
)

// How a command id gets exactly one outcome (eventstore.OutcomeStore): a transaction
// that records an outcome, and one that appends events carrying a command id, both
// start with pg_advisory_xact_lock on the (stream, command) key, each in a statement
// of its own before the statements that look. The lock holder's commit is then
// visible to the other's later statements (READ COMMITTED takes a snapshot per
// statement), so whichever comes second sees the first: the append is refused by
// outcomeGuardSQL, or the outcome finds the command's events. Appends of no
// idempotent command (eventstore.KeyedCommandIDs) take no lock and run no guard.

// lockCommandsSQL takes the transaction advisory locks of $1, in array order (the
// caller sorts them, so two transactions never wait for each other in a cycle).
const lockCommandsSQL = `SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::bigint[]) AS k`

// outcomeGuardSQL fails its transaction (division by zero, SQLSTATE 22012) if one of
// the commands ($1 stream ids, $2 command ids) has a recorded outcome.
const outcomeGuardSQL = `SELECT 1 / (CASE WHEN EXISTS (SELECT 1 FROM command_outcomes o
	JOIN unnest($1::text[], $2::text[]) AS c(stream_id, command_id)
	ON o.stream_id = c.stream_id AND o.command_id = c.command_id) THEN 0 ELSE 1 END)`

const divisionByZero = "22012"

// recordOutcomeSQL records an outcome ($1 stream, $2 command, $3 version, $4 code, $5
// message, $6 reason) if the command appended nothing, has no outcome yet and the stream is at
// $3, all read in one snapshot taken after the command's lock. It returns what it
// found; a new row is recorded exactly when found is false, the version is $3 and
// there is no prior outcome.
const recordOutcomeSQL = `WITH appended AS (
	SELECT EXISTS (SELECT 1 FROM events WHERE metadata ->> 'command_id' = $2 AND stream_id = $1) AS found),
head AS (SELECT coalesce(max(stream_version), 0) AS version FROM events WHERE stream_id = $1),
prior AS (SELECT stream_version, code, message, reason, created_at FROM command_outcomes WHERE stream_id = $1 AND command_id = $2),
inserted AS (
	INSERT INTO command_outcomes (stream_id, command_id, stream_version, code, message, reason)
	SELECT $1, $2, $3, $4, $5, $6 FROM appended, head
	WHERE NOT appended.found AND head.version = $3::bigint AND NOT EXISTS (SELECT 1 FROM prior)
	RETURNING created_at)
SELECT appended.found, head.version, prior.stream_version, prior.code, prior.message, prior.reason, prior.created_at,
	(SELECT created_at FROM inserted)
FROM appended CROSS JOIN head LEFT JOIN prior ON true`

// commandKey is a command within its stream.
type commandKey struct{ streamID, commandID string }

// lockKey is the advisory lock key of a command: 64 bits of FNV-1a over the
// length-prefixed stream and command ids. A collision only makes two commands take
// turns.
func (k commandKey) lockKey() int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(strconv.Itoa(len(k.streamID)) + ":" + k.streamID + k.commandID))
	return int64(h.Sum64())
}

// queueOutcomeGuard queues, before an append's statements, the lock of each command
// and the check that none of them has a recorded outcome; nothing for no commands.
func queueOutcomeGuard(b *pgx.Batch, keys []commandKey) {
	if len(keys) == 0 {
		return
	}
	locks := make([]int64, len(keys))
	streams := make([]string, len(keys))
	commands := make([]string, len(keys))
	for i, k := range keys {
		locks[i], streams[i], commands[i] = k.lockKey(), k.streamID, k.commandID
	}
	slices.Sort(locks)
	locks = slices.Compact(locks)
	b.Queue(lockCommandsSQL, locks)
	b.Queue(outcomeGuardSQL, streams, commands)
}

// readOutcomeGuard reads the results of queueOutcomeGuard's statements, if it queued
// any; a recorded outcome comes back as eventstore.ErrCommandDecided.
func readOutcomeGuard(br pgx.BatchResults, keys []commandKey) error {
	if len(keys) == 0 {
		return nil
	}
	if _, err := br.Exec(); err != nil {
		return err
	}
	_, err := br.Exec()
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == divisionByZero {
		return fmt.Errorf("%w: a command of %v was answered without events", eventstore.ErrCommandDecided, keys)
	}
	return err
}

// commandKeys lists the idempotent commands whose events are in an append to
// streamID (eventstore.KeyedCommandIDs).
func commandKeys(streamID string, events []eventstore.EventData) []commandKey {
	var keys []commandKey
	for _, id := range eventstore.KeyedCommandIDs(streamID, events) {
		keys = append(keys, commandKey{streamID, id})
	}
	return keys
}

// RecordOutcome implements eventstore.OutcomeStore: one round trip.
func (s *Store) RecordOutcome(ctx context.Context, o eventstore.CommandOutcome) (*eventstore.CommandOutcome, error) {
	if err := eventstore.ValidateOutcome(o); err != nil {
		return nil, err
	}
	op := "record outcome of command " + strconv.Quote(o.CommandID)
	b := &pgx.Batch{}
	b.Queue(lockCommandsSQL, []int64{commandKey{o.StreamID, o.CommandID}.lockKey()})
	b.Queue(recordOutcomeSQL, o.StreamID, o.CommandID, o.StreamVersion, o.Code, o.Message, o.Reason)
	var (
		appended     bool
		version      int64
		priorVersion *int64
		priorCode    *string
		priorMessage *string
		priorReason  *string
		priorAt      *time.Time
		insertedAt   *time.Time
	)
	br := s.pool.SendBatch(ctx, b)
	_, err := br.Exec()
	if err == nil {
		err = br.QueryRow().Scan(&appended, &version, &priorVersion, &priorCode, &priorMessage, &priorReason, &priorAt, &insertedAt)
	}
	if cerr := br.Close(); err == nil { // exactly once, see appendOnce
		err = cerr
	}
	if err != nil {
		return nil, s.wrap(op, err)
	}
	switch {
	case appended:
		return nil, fmt.Errorf("%w: command %q appended to stream %q", eventstore.ErrCommandDecided, o.CommandID, o.StreamID)
	case priorVersion != nil:
		return &eventstore.CommandOutcome{StreamID: o.StreamID, CommandID: o.CommandID, StreamVersion: *priorVersion,
			Code: *priorCode, Message: *priorMessage, Reason: *priorReason, CreatedAt: priorAt.UTC()}, nil
	case insertedAt == nil:
		return nil, &eventstore.WrongVersionError{StreamID: o.StreamID, Expected: eventstore.Exact(o.StreamVersion), ActualVersion: version}
	}
	return nil, nil
}

// ReadOutcome implements eventstore.OutcomeStore.
func (s *Store) ReadOutcome(ctx context.Context, streamID, commandID string) (*eventstore.CommandOutcome, error) {
	if err := eventstore.ValidateStreamID(streamID); err != nil {
		return nil, err
	}
	o := eventstore.CommandOutcome{StreamID: streamID, CommandID: commandID}
	err := s.pool.QueryRow(ctx, `SELECT stream_version, code, message, reason, created_at FROM command_outcomes
		WHERE stream_id = $1 AND command_id = $2`, streamID, commandID).Scan(&o.StreamVersion, &o.Code, &o.Message, &o.Reason, &o.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, s.wrap("read outcome of command "+strconv.Quote(commandID), err)
	}
	o.CreatedAt = o.CreatedAt.UTC()
	return &o, nil
}

// pruneOutcomesSQL deletes at most $2 of the outcomes recorded before $1. PruneOutcomes
// repeats it, so that a large backlog is deleted in short transactions rather than
// one that holds every row's lock to the end.
const pruneOutcomesSQL = `DELETE FROM command_outcomes WHERE ctid IN (
	SELECT ctid FROM command_outcomes WHERE created_at < $1 LIMIT $2)`

// pruneSlice is how many outcomes one pruneOutcomesSQL deletes at most.
const pruneSlice = 10_000

// PruneOutcomes implements eventstore.OutcomeStore, in slices of pruneSlice rows
// (index command_outcomes_created_at_idx finds them).
func (s *Store) PruneOutcomes(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, pruneOutcomesSQL, before, pruneSlice)
		if err != nil {
			return total, s.wrap("prune command outcomes", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < pruneSlice {
			return total, nil
		}
	}
}
