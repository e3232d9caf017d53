package pgstore

import (
	"context"
	"errors"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/ringleader-go/ringleader/eventstore"
)

// SaveSnapshot implements eventstore.SnapshotStore: one row a stream, replaced.
func (s *Store) SaveSnapshot(ctx context.Context, snap eventstore.Snapshot) error {
	if err := eventstore.ValidateSnapshot(snap); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO snapshots (stream_id, stream_version, schema_version, snapshot_type, data, created_at)
		VALUES ($1, $2, $3, $4, $5::text::jsonb, now())
		ON CONFLICT (stream_id) DO UPDATE SET stream_version = EXCLUDED.stream_version,
			schema_version = EXCLUDED.schema_version, snapshot_type = EXCLUDED.snapshot_type,
			data = EXCLUDED.data, created_at = EXCLUDED.created_at`,
		snap.StreamID, snap.StreamVersion, snap.SchemaVersion, snap.Type, string(snap.Data))
	return s.wrap("save snapshot of stream "+strconv.Quote(snap.StreamID), err)
}

// LoadSnapshot implements eventstore.SnapshotStore.
func (s *Store) LoadSnapshot(ctx context.Context, streamID string, schemaVersion int) (eventstore.Snapshot, error) {
	if err := eventstore.ValidateStreamID(streamID); err != nil {
		return eventstore.Snapshot{}, err
	}
	snap := eventstore.Snapshot{StreamID: streamID}
	err := s.pool.QueryRow(ctx, `SELECT stream_version, schema_version, snapshot_type, data, created_at
		FROM snapshots WHERE stream_id = $1 AND schema_version = $2`, streamID, schemaVersion).
		Scan(&snap.StreamVersion, &snap.SchemaVersion, &snap.Type, &snap.Data, &snap.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventstore.Snapshot{}, eventstore.ErrNotFound
	}
	snap.CreatedAt = snap.CreatedAt.UTC()
	return snap, s.wrap("load snapshot of stream "+strconv.Quote(streamID), err)
}
