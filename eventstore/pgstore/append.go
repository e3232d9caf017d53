package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ringleader-go/ringleader/eventstore"
)

// SQLSTATEs raised by rl_append.
const (
	sqlstateWrongVersion   = "RL001"
	sqlstateNotFirstWrite  = "RL002"
	sqlstateUniqueViolated = "23505"
)

// appendSQL calls rl_append. Data and metadata travel as text and are cast, so pgx
// sends the caller's JSON bytes as they are.
const appendSQL = `SELECT first_position, first_version, recorded_at
FROM rl_append($1, $2, $3::uuid[], $4::text[], $5::text[]::jsonb[], $6::text[]::jsonb[])`

// appendArgs are rl_append's arguments, built once per append.
type appendArgs struct {
	ids      []uuid.UUID
	types    []string
	data     []string
	metadata []string
}

func buildAppendArgs(events []eventstore.EventData) (appendArgs, error) {
	a := appendArgs{
		ids:      make([]uuid.UUID, len(events)),
		types:    make([]string, len(events)),
		data:     make([]string, len(events)),
		metadata: make([]string, len(events)),
	}
	for i, e := range events {
		a.ids[i] = e.ID
		if a.ids[i] == uuid.Nil {
			a.ids[i] = uuid.New()
		}
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

// Append implements eventstore.Appender with one call of rl_append in its own
// transaction (one round trip).
func (s *Store) Append(ctx context.Context, streamID string, expected eventstore.ExpectedVersion, events []eventstore.EventData) ([]eventstore.RecordedEvent, error) {
	if err := eventstore.ValidateAppend(streamID, expected, events, s.maxEventBytes); err != nil {
		return nil, err
	}
	args, err := buildAppendArgs(events)
	if err != nil {
		return nil, err
	}
	var firstPosition, firstVersion int64
	var recordedAt time.Time
	err = s.pool.QueryRow(ctx, appendSQL, streamID, int64(expected), args.ids, args.types, args.data, args.metadata).
		Scan(&firstPosition, &firstVersion, &recordedAt)
	if err != nil {
		return nil, s.appendError(streamID, expected, err)
	}
	s.notify.appended()
	return recordedEvents(streamID, events, args, firstPosition, firstVersion, recordedAt), nil
}

// recordedEvents builds what Append returns from what it sent and what rl_append
// assigned: positions and versions are contiguous from the first ones.
func recordedEvents(streamID string, events []eventstore.EventData, args appendArgs, firstPosition, firstVersion int64, at time.Time) []eventstore.RecordedEvent {
	out := make([]eventstore.RecordedEvent, len(events))
	for i, e := range events {
		meta := make(map[string]string, len(e.Metadata))
		for k, v := range e.Metadata {
			meta[k] = v
		}
		out[i] = eventstore.RecordedEvent{
			GlobalPosition: firstPosition + int64(i),
			StreamID:       streamID,
			StreamVersion:  firstVersion + int64(i),
			ID:             args.ids[i],
			Type:           e.Type,
			Data:           append(json.RawMessage(nil), e.Data...),
			Metadata:       meta,
			CreatedAt:      at.UTC(),
		}
	}
	return out
}

// appendError translates rl_append's failures into the store's typed errors.
func (s *Store) appendError(streamID string, expected eventstore.ExpectedVersion, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case sqlstateWrongVersion:
			actual, _ := strconv.ParseInt(pgErr.Detail, 10, 64)
			return &eventstore.WrongVersionError{StreamID: streamID, Expected: expected, ActualVersion: actual}
		case sqlstateUniqueViolated:
			if pgErr.ConstraintName == "events_event_id_key" {
				return fmt.Errorf("%w: an event id of this append is already stored: %s", eventstore.ErrInvalid, pgErr.Detail)
			}
		case sqlstateNotFirstWrite:
			return fmt.Errorf("%w: %s (%s)", eventstore.ErrInvalid, pgErr.Message, pgErr.Hint)
		}
	}
	return s.wrap("append to stream "+strconv.Quote(streamID), err)
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
