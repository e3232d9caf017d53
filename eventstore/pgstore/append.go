package pgstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/ringleader-go/ringleader/eventstore"
)

// PositionsPerTransaction is how many global positions one transaction owns:
// positions are transaction id * PositionsPerTransaction + index, so a transaction
// may append at most this many events in all.
const PositionsPerTransaction = 1 << 16

// maxRaceRetries bounds how often an AnyVersion or StreamExists append is retried when
// a concurrent writer took the version it computed.
const maxRaceRetries = 20

// AppendSQL appends events to one stream in one statement, in the caller's
// transaction or its own, when the stream is expected at an exact version (0 for no
// stream). Arguments: $1 stream id; $2 expected version; $3 event ids (uuid[]); $4
// types (text[]); $5 data and $6 metadata (JSON documents as text[]); $7 how many
// events the transaction appended before this statement (0 for an append in its own
// transaction: positions are the transaction id * 65536 plus the event's index in the
// transaction). It returns each inserted event's position, version and timestamp.
//
// No row means the stream is not at version $2 yet (version $2 does not exist); a
// unique violation on (stream_id, stream_version) means the stream is past it. Either
// way nothing is written, and versions can never have a gap.
const AppendSQL = `INSERT INTO events (global_position, stream_id, stream_version, event_id, event_type, data, metadata)
SELECT pg_current_xact_id()::text::bigint * 65536 + $7::bigint + i - 1, $1, $2::bigint + i,
	($3::uuid[])[i], ($4::text[])[i], (($5::text[])[i])::jsonb, (($6::text[])[i])::jsonb
FROM generate_series(1, cardinality($4::text[])) AS i
WHERE $2::bigint = 0 OR EXISTS (SELECT 1 FROM events e WHERE e.stream_id = $1 AND e.stream_version = $2::bigint)
RETURNING global_position, stream_version, created_at`

// streamVersionSQL reads a stream's version, for the expectations that are computed
// (any version, stream exists) rather than given.
const streamVersionSQL = `SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = $1`

const uniqueViolation = "23505"

// AppendArgs returns AppendSQL's arguments for appending events to streamID at an
// exact expected version (0: no stream), after earlier events appended by the same
// transaction. It validates like Append and generates missing event ids. Use it to
// append inside a transaction of your own, or to batch appends of several streams
// into one transaction. Such an append does not check the recorded outcomes of the
// commands its events carry (MetaCommandID; see RecordOutcome): leave the command id
// out, or append through the store.
func AppendArgs(streamID string, expected int64, earlier int, events []eventstore.EventData, maxEventBytes int) ([]any, error) {
	if err := eventstore.ValidateAppend(streamID, eventstore.Exact(expected), events, maxEventBytes); err != nil {
		return nil, err
	}
	if earlier < 0 || earlier+len(events) > PositionsPerTransaction {
		return nil, fmt.Errorf("%w: a transaction appends at most %d events", eventstore.ErrInvalid, PositionsPerTransaction)
	}
	a, err := buildAppendArgs(events)
	if err != nil {
		return nil, err
	}
	return []any{streamID, expected, a.pgIDs, a.types, a.data, a.metadata, earlier}, nil
}

// appendArgs are AppendSQL's array arguments, built once per append.
type appendArgs struct {
	ids []uuid.UUID
	// pgIDs are ids as pgx encodes them natively (uuid.UUID goes through its
	// driver.Valuer: a string, formatted and parsed again).
	pgIDs    []pgtype.UUID
	types    []string
	data     []string
	metadata []string
}

func buildAppendArgs(events []eventstore.EventData) (appendArgs, error) {
	a := appendArgs{
		ids:      make([]uuid.UUID, len(events)),
		pgIDs:    make([]pgtype.UUID, len(events)),
		types:    make([]string, len(events)),
		data:     make([]string, len(events)),
		metadata: make([]string, len(events)),
	}
	for i, e := range events {
		a.ids[i] = e.ID
		if a.ids[i] == uuid.Nil {
			a.ids[i] = uuid.New()
		}
		a.pgIDs[i] = pgtype.UUID{Bytes: a.ids[i], Valid: true}
		a.types[i] = e.Type
		a.data[i] = string(e.Data)
		meta, err := encodeMetadata(e.Metadata)
		if err != nil {
			return appendArgs{}, err
		}
		a.metadata[i] = meta
	}
	return a, nil
}

// Append implements eventstore.Appender: one statement in its own transaction, so one
// round trip for an exact expectation. AnyVersion and StreamExists first read the
// stream's version (and read again if a concurrent writer takes it); a failed
// expectation costs a query for the actual version the error reports.
func (s *Store) Append(ctx context.Context, streamID string, expected eventstore.ExpectedVersion, events []eventstore.EventData) ([]eventstore.RecordedEvent, error) {
	if err := eventstore.ValidateAppend(streamID, expected, events, s.maxEventBytes); err != nil {
		return nil, err
	}
	args, err := buildAppendArgs(events)
	if err != nil {
		return nil, err
	}
	commands := commandKeys(streamID, events)
	for attempt := 0; ; attempt++ {
		version := int64(expected)
		if expected < 0 {
			// Any version or stream exists: append after whatever is there now. A
			// concurrent writer may take that version first; then read again.
			if err := s.pool.QueryRow(ctx, streamVersionSQL, streamID).Scan(&version); err != nil {
				return nil, s.wrap("append to stream "+strconv.Quote(streamID), err)
			}
			if !expected.Satisfied(version) {
				return nil, &eventstore.WrongVersionError{StreamID: streamID, Expected: expected, ActualVersion: version}
			}
		}
		ticket, carried := s.notify.carry()
		recorded, err := s.appendOnce(ctx, carried, commands, streamID, version, events, args)
		if errors.Is(err, eventstore.ErrCommandDecided) {
			return nil, err
		}
		if err == nil && len(recorded) > 0 {
			s.notify.appended(ticket, carried)
			return recorded, nil
		}
		if err == nil {
			// No row: version did not exist, so the expectation failed.
			return nil, s.wrongVersion(ctx, streamID, expected)
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != uniqueViolation {
			return nil, s.wrap("append to stream "+strconv.Quote(streamID), err)
		}
		if pgErr.ConstraintName == "events_event_id_key" {
			return nil, fmt.Errorf("%w: %s", eventstore.ErrDuplicateEventID, pgErr.Detail)
		}
		// Another writer took the version: final for an exact expectation; for a
		// computed one, compute again.
		if expected >= 0 || attempt >= maxRaceRetries {
			return nil, s.wrongVersion(ctx, streamID, expected)
		}
	}
}

// appendOnce runs AppendSQL in a transaction of its own, which also carries the
// store's NOTIFY when carried (see notifier.carry) and starts with the outcome guard
// when the events carry command ids (see outcome.go).
func (s *Store) appendOnce(ctx context.Context, carried bool, commands []commandKey, streamID string, version int64, events []eventstore.EventData, args appendArgs) ([]eventstore.RecordedEvent, error) {
	if !carried && len(commands) == 0 {
		rows, err := s.pool.Query(ctx, AppendSQL, streamID, version, args.pgIDs, args.types, args.data, args.metadata, 0)
		return collectAppended(rows, err, streamID, events, args)
	}
	b := &pgx.Batch{}
	queueOutcomeGuard(b, commands)
	b.Queue(AppendSQL, streamID, version, args.pgIDs, args.types, args.data, args.metadata, 0)
	if carried {
		b.Queue(notifyCarrySQL, s.notify.channel, s.notify.origin)
	}
	// One implicit transaction: nothing is committed until the batch's end, so the
	// append counts only if the whole batch succeeded.
	br := s.pool.SendBatch(ctx, b)
	recorded, err := func() ([]eventstore.RecordedEvent, error) {
		if err := readOutcomeGuard(br, commands); err != nil {
			return nil, err
		}
		rows, err := br.Query()
		recorded, err := collectAppended(rows, err, streamID, events, args)
		if err == nil && carried {
			_, err = br.Exec()
		}
		return recorded, err
	}()
	// Exactly one Close: the pool takes the connection back at the first, and a
	// second Close of a failed batch still clears that connection's statement cache,
	// which by then another goroutine may be using.
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return recorded, nil
}

// collectAppended pairs AppendSQL's returned rows with the events sent: event i got
// the i-th lowest version.
func collectAppended(rows pgx.Rows, err error, streamID string, events []eventstore.EventData, args appendArgs) ([]eventstore.RecordedEvent, error) {
	if err != nil {
		return nil, err
	}
	type assigned struct {
		position, version int64
		at                time.Time
	}
	got, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (assigned, error) {
		var a assigned
		err := row.Scan(&a.position, &a.version, &a.at)
		return a, err
	})
	if err != nil || len(got) != len(events) {
		return nil, err
	}
	slices.SortFunc(got, func(a, b assigned) int { return cmp.Compare(a.version, b.version) })
	out := make([]eventstore.RecordedEvent, len(events))
	for i, e := range events {
		out[i] = recordedEvent(streamID, e, args.ids[i], got[i].position, got[i].version, got[i].at)
	}
	return out, nil
}

// wrongVersion builds the error for an unmet expectation, with the actual version.
func (s *Store) wrongVersion(ctx context.Context, streamID string, expected eventstore.ExpectedVersion) error {
	actual, err := s.StreamVersion(ctx, streamID)
	if err != nil {
		return err
	}
	return &eventstore.WrongVersionError{StreamID: streamID, Expected: expected, ActualVersion: actual}
}

// recordedEvent builds what Append returns for an event from what was sent and what
// the database assigned.
func recordedEvent(streamID string, e eventstore.EventData, id uuid.UUID, position, version int64, at time.Time) eventstore.RecordedEvent {
	meta := make(map[string]string, len(e.Metadata))
	for k, v := range e.Metadata {
		meta[k] = v
	}
	return eventstore.RecordedEvent{
		GlobalPosition: position,
		StreamID:       streamID,
		StreamVersion:  version,
		ID:             id,
		Type:           e.Type,
		Data:           append(json.RawMessage(nil), e.Data...),
		Metadata:       meta,
		CreatedAt:      at.UTC(),
	}
}

func encodeMetadata(m map[string]string) (string, error) {
	if len(m) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("%w: metadata: %v", eventstore.ErrInvalid, err)
	}
	return string(b), nil
}
