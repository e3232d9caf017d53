package pgstore

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/ringleader-go/ringleader/eventstore"
)

const eventColumns = `global_position, stream_id, stream_version, event_id, event_type, data, metadata, created_at`

// visible is the watermark of the global order: only positions of transactions older
// than every transaction still running (see the package doc).
const visible = `global_position < pg_snapshot_xmin(pg_current_snapshot())::text::bigint * 65536`

// ReadStream implements eventstore.StreamReader.
func (s *Store) ReadStream(ctx context.Context, streamID string, fromVersion int64, limit int) ([]eventstore.RecordedEvent, error) {
	if err := eventstore.ValidateStreamID(streamID); err != nil {
		return nil, err
	}
	if err := eventstore.ValidateLimit(limit); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+eventColumns+` FROM events
		WHERE stream_id = $1 AND stream_version >= $2 ORDER BY stream_version LIMIT $3`,
		streamID, fromVersion, limit)
	events, err := collectEvents(rows, err)
	return events, s.wrap("read stream "+strconv.Quote(streamID), err)
}

// StreamVersion implements eventstore.StreamReader.
func (s *Store) StreamVersion(ctx context.Context, streamID string) (int64, error) {
	if err := eventstore.ValidateStreamID(streamID); err != nil {
		return 0, err
	}
	var version int64
	err := s.pool.QueryRow(ctx, streamVersionSQL, streamID).Scan(&version)
	return version, s.wrap("read version of stream "+strconv.Quote(streamID), err)
}

// ReadAll implements eventstore.AllReader behind the visibility watermark.
func (s *Store) ReadAll(ctx context.Context, fromPosition int64, limit int) ([]eventstore.RecordedEvent, error) {
	if err := eventstore.ValidateLimit(limit); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+eventColumns+` FROM events
		WHERE global_position >= $1 AND `+visible+` ORDER BY global_position LIMIT $2`,
		fromPosition, limit)
	events, err := collectEvents(rows, err)
	return events, s.wrap("read $all", err)
}

// HeadPosition implements eventstore.AllReader.
func (s *Store) HeadPosition(ctx context.Context) (int64, error) {
	var head int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce(max(global_position), 0) FROM events WHERE `+visible).Scan(&head)
	return head, s.wrap("read head position", err)
}

// ReadCommandEvents implements eventstore.CommandIndex, using the command-id index.
func (s *Store) ReadCommandEvents(ctx context.Context, streamID, commandID string) ([]eventstore.RecordedEvent, error) {
	if err := eventstore.ValidateStreamID(streamID); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+eventColumns+` FROM events
		WHERE metadata ->> 'command_id' = $2 AND stream_id = $1 ORDER BY stream_version`,
		streamID, commandID)
	events, err := collectEvents(rows, err)
	return events, s.wrap("read events of command "+strconv.Quote(commandID), err)
}

// collectEvents scans rows of eventColumns; it takes the Query's error too so callers
// stay one line.
func collectEvents(rows pgx.Rows, err error) ([]eventstore.RecordedEvent, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (eventstore.RecordedEvent, error) {
		var e eventstore.RecordedEvent
		var meta []byte
		// Data is scanned as bytes: as a json.RawMessage pgx would run it through
		// json.Unmarshal, which validates what PostgreSQL already validated.
		err := row.Scan(&e.GlobalPosition, &e.StreamID, &e.StreamVersion, &e.ID, &e.Type, (*[]byte)(&e.Data), &meta, &e.CreatedAt)
		if err != nil {
			return e, err
		}
		if e.Metadata, err = decodeMetadata(meta); err != nil {
			return e, fmt.Errorf("metadata of event %d: %w", e.GlobalPosition, err)
		}
		e.CreatedAt = e.CreatedAt.UTC()
		return e, nil
	})
}
