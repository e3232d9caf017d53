package transform

import (
	"context"
	"errors"
	"fmt"

	"github.com/ringleader-go/ringleader/eventstore"
)

// Transform rewrites events. Both methods must be cheap for events they do not
// touch (a map lookup, leaving the event as it is): ReadAll is the event handlers'
// hot path. They may set the event's fields but must not modify its Data bytes or
// Metadata map in place (replace them), because the caller or the store may share
// them; on error they leave the event as it was.
type Transform interface {
	// EncodeEvent rewrites *e, an event about to be appended to streamID.
	EncodeEvent(ctx context.Context, streamID string, e *eventstore.EventData) error
	// DecodeEvent rewrites *e, an event read from the store.
	DecodeEvent(ctx context.Context, e *eventstore.RecordedEvent) error
}

// SnapshotTransform is an optional capability of a Transform: rewriting snapshots
// on save and load. DecodeSnapshot may return eventstore.ErrNotFound to make the
// reader ignore a snapshot (it then rebuilds the state from events).
type SnapshotTransform interface {
	EncodeSnapshot(ctx context.Context, s eventstore.Snapshot) (eventstore.Snapshot, error)
	DecodeSnapshot(ctx context.Context, s eventstore.Snapshot) (eventstore.Snapshot, error)
}

// Store is an eventstore.Store whose events pass through transforms. Create it with
// Wrap.
type Store struct {
	eventstore.Store
	ts    []Transform
	snaps []SnapshotTransform
}

// batchStore is a Store whose inner store is an eventstore.BatchAppender.
type batchStore struct {
	*Store
	batch eventstore.BatchAppender
}

var (
	_ eventstore.Store         = (*Store)(nil)
	_ eventstore.BatchAppender = (*batchStore)(nil)
)

// Wrap returns inner with ts applied (see the package doc). With no transforms it
// returns inner itself. The result implements eventstore.BatchAppender when inner
// does. Closing the result closes inner.
func Wrap(inner eventstore.Store, ts ...Transform) eventstore.Store {
	var kept []Transform
	for _, t := range ts {
		if t != nil {
			kept = append(kept, t)
		}
	}
	if len(kept) == 0 {
		return inner
	}
	s := &Store{Store: inner, ts: kept}
	for _, t := range kept {
		if st, ok := t.(SnapshotTransform); ok {
			s.snaps = append(s.snaps, st)
		}
	}
	if b, ok := inner.(eventstore.BatchAppender); ok {
		return &batchStore{Store: s, batch: b}
	}
	return s
}

// Unwrap returns the store s wraps, or s itself when it is not a transform.Store.
func Unwrap(s eventstore.Store) eventstore.Store {
	switch w := s.(type) {
	case *Store:
		return w.Store
	case *batchStore:
		return w.Store.Store
	}
	return s
}

// encode runs the write path over events, returning new events (the input is not
// modified).
func (s *Store) encode(ctx context.Context, streamID string, events []eventstore.EventData) ([]eventstore.EventData, error) {
	out := make([]eventstore.EventData, len(events))
	for i, e := range events {
		for _, t := range s.ts {
			if err := t.EncodeEvent(ctx, streamID, &e); err != nil {
				return nil, fmt.Errorf("transform: encode %s event for stream %q: %w", events[i].Type, streamID, err)
			}
		}
		out[i] = e
	}
	return out, nil
}

// decode runs the read path over events in place (the slice is the inner store's
// fresh result).
func (s *Store) decode(ctx context.Context, events []eventstore.RecordedEvent) ([]eventstore.RecordedEvent, error) {
	for i := range events {
		e := &events[i]
		for j := len(s.ts) - 1; j >= 0; j-- {
			if err := s.ts[j].DecodeEvent(ctx, e); err != nil {
				return nil, fmt.Errorf("transform: decode %s event %q v%d (position %d): %w",
					e.Type, e.StreamID, e.StreamVersion, e.GlobalPosition, err)
			}
		}
	}
	return events, nil
}

// restore gives recorded events the Data the caller appended.
func restore(recorded []eventstore.RecordedEvent, original []eventstore.EventData) []eventstore.RecordedEvent {
	for i := range recorded {
		if i < len(original) {
			recorded[i].Data = original[i].Data
		}
	}
	return recorded
}

// Append implements eventstore.Appender.
func (s *Store) Append(ctx context.Context, streamID string, expected eventstore.ExpectedVersion, events []eventstore.EventData) ([]eventstore.RecordedEvent, error) {
	enc, err := s.encode(ctx, streamID, events)
	if err != nil {
		return nil, err
	}
	recorded, err := s.Store.Append(ctx, streamID, expected, enc)
	if err != nil {
		return nil, err
	}
	return restore(recorded, events), nil
}

// AppendMany implements eventstore.BatchAppender. A request whose events a
// transform refuses fails alone, with that error.
func (b *batchStore) AppendMany(ctx context.Context, requests []eventstore.AppendRequest) []eventstore.AppendResult {
	results := make([]eventstore.AppendResult, len(requests))
	inner := make([]eventstore.AppendRequest, 0, len(requests))
	index := make([]int, 0, len(requests))
	for i, r := range requests {
		enc, err := b.encode(ctx, r.StreamID, r.Events)
		if err != nil {
			results[i].Err = err
			continue
		}
		inner = append(inner, eventstore.AppendRequest{StreamID: r.StreamID, Expected: r.Expected, Events: enc})
		index = append(index, i)
	}
	if len(inner) == 0 {
		return results
	}
	for j, r := range b.batch.AppendMany(ctx, inner) {
		i := index[j]
		if r.Err == nil {
			r.Events = restore(r.Events, requests[i].Events)
		}
		results[i] = r
	}
	return results
}

// ReadStream implements eventstore.StreamReader.
func (s *Store) ReadStream(ctx context.Context, streamID string, fromVersion int64, limit int) ([]eventstore.RecordedEvent, error) {
	events, err := s.Store.ReadStream(ctx, streamID, fromVersion, limit)
	if err != nil {
		return nil, err
	}
	return s.decode(ctx, events)
}

// ReadAll implements eventstore.AllReader.
func (s *Store) ReadAll(ctx context.Context, fromPosition int64, limit int) ([]eventstore.RecordedEvent, error) {
	events, err := s.Store.ReadAll(ctx, fromPosition, limit)
	if err != nil {
		return nil, err
	}
	return s.decode(ctx, events)
}

// ReadCommandEvents implements eventstore.CommandIndex.
func (s *Store) ReadCommandEvents(ctx context.Context, streamID, commandID string) ([]eventstore.RecordedEvent, error) {
	events, err := s.Store.ReadCommandEvents(ctx, streamID, commandID)
	if err != nil {
		return nil, err
	}
	return s.decode(ctx, events)
}

// SaveSnapshot implements eventstore.SnapshotStore.
func (s *Store) SaveSnapshot(ctx context.Context, snap eventstore.Snapshot) error {
	for _, t := range s.snaps {
		var err error
		if snap, err = t.EncodeSnapshot(ctx, snap); err != nil {
			return fmt.Errorf("transform: encode snapshot of stream %q: %w", snap.StreamID, err)
		}
	}
	return s.Store.SaveSnapshot(ctx, snap)
}

// LoadSnapshot implements eventstore.SnapshotStore.
func (s *Store) LoadSnapshot(ctx context.Context, streamID string, schemaVersion int) (eventstore.Snapshot, error) {
	snap, err := s.Store.LoadSnapshot(ctx, streamID, schemaVersion)
	if err != nil {
		return snap, err
	}
	for j := len(s.snaps) - 1; j >= 0; j-- {
		if snap, err = s.snaps[j].DecodeSnapshot(ctx, snap); err != nil {
			if errors.Is(err, eventstore.ErrNotFound) {
				return eventstore.Snapshot{}, err
			}
			return eventstore.Snapshot{}, fmt.Errorf("transform: decode snapshot of stream %q: %w", streamID, err)
		}
	}
	return snap, nil
}
