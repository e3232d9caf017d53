// Package memstore is an in-memory eventstore.Store for unit tests and examples. It
// passes the same conformance suite as the PostgreSQL store (eventstore/storetest) and
// keeps everything in one process: nothing survives Close, and two processes cannot
// share it.
//
// All methods are safe for concurrent use; appends are serialised by one mutex, so
// the global order is simply the order of appends.
package memstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ringleader-go/ringleader/eventstore"
)

// Store is an in-memory event store. The zero value is not usable; call New.
type Store struct {
	maxEventBytes int
	now           func() time.Time

	mu          sync.Mutex
	closed      bool
	all         []eventstore.RecordedEvent
	streams     map[string][]int // stream id → indexes into all
	eventIDs    map[uuid.UUID]struct{}
	snapshots   map[string]eventstore.Snapshot
	checkpoints map[string]int64
	outcomes    map[outcomeKey]eventstore.CommandOutcome
	subscribers map[chan struct{}]struct{}
}

var _ eventstore.Store = (*Store)(nil)

// Option configures a Store.
type Option func(*Store)

// WithMaxEventBytes sets the size limit of one event (data plus metadata); the
// default is eventstore.DefaultMaxEventBytes.
func WithMaxEventBytes(n int) Option { return func(s *Store) { s.maxEventBytes = n } }

// WithClock sets the clock that stamps CreatedAt; the default is time.Now.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// New returns an empty store.
func New(opts ...Option) *Store {
	s := &Store{
		maxEventBytes: eventstore.DefaultMaxEventBytes,
		now:           time.Now,
		streams:       make(map[string][]int),
		eventIDs:      make(map[uuid.UUID]struct{}),
		snapshots:     make(map[string]eventstore.Snapshot),
		checkpoints:   make(map[string]int64),
		outcomes:      make(map[outcomeKey]eventstore.CommandOutcome),
		subscribers:   make(map[chan struct{}]struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Append implements eventstore.Appender.
func (s *Store) Append(ctx context.Context, streamID string, expected eventstore.ExpectedVersion, events []eventstore.EventData) ([]eventstore.RecordedEvent, error) {
	if err := eventstore.ValidateAppend(streamID, expected, events, s.maxEventBytes); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, eventstore.ErrClosed
	}
	for _, id := range eventstore.KeyedCommandIDs(streamID, events) {
		if _, decided := s.outcomes[outcomeKey{streamID, id}]; decided {
			return nil, fmt.Errorf("%w: command %q on stream %q was answered without events", eventstore.ErrCommandDecided, id, streamID)
		}
	}
	version := int64(len(s.streams[streamID]))
	if !expected.Satisfied(version) {
		return nil, &eventstore.WrongVersionError{StreamID: streamID, Expected: expected, ActualVersion: version}
	}
	ids := make([]uuid.UUID, len(events))
	seen := make(map[uuid.UUID]bool, len(events))
	for i, e := range events {
		ids[i] = e.ID
		if ids[i] == uuid.Nil {
			ids[i] = uuid.New()
		}
		if _, dup := s.eventIDs[ids[i]]; dup || seen[ids[i]] {
			return nil, fmt.Errorf("%w: %s", eventstore.ErrDuplicateEventID, ids[i])
		}
		seen[ids[i]] = true
	}
	now := s.now().UTC()
	recorded := make([]eventstore.RecordedEvent, len(events))
	for i, e := range events {
		id := ids[i]
		s.eventIDs[id] = struct{}{}
		recorded[i] = eventstore.RecordedEvent{
			GlobalPosition: int64(len(s.all)) + 1,
			StreamID:       streamID,
			StreamVersion:  version + int64(i) + 1,
			ID:             id,
			Type:           e.Type,
			Data:           compactJSON(e.Data),
			Metadata:       copyMetadata(e.Metadata),
			CreatedAt:      now,
		}
		s.streams[streamID] = append(s.streams[streamID], len(s.all))
		s.all = append(s.all, recorded[i])
	}
	s.notifyLocked()
	return copyEvents(recorded), nil
}

// ReadStream implements eventstore.StreamReader.
func (s *Store) ReadStream(ctx context.Context, streamID string, fromVersion int64, limit int) ([]eventstore.RecordedEvent, error) {
	if err := eventstore.ValidateStreamID(streamID); err != nil {
		return nil, err
	}
	if err := eventstore.ValidateLimit(limit); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, eventstore.ErrClosed
	}
	idx := s.streams[streamID]
	start := max(fromVersion, 1) - 1
	if start >= int64(len(idx)) {
		return nil, nil
	}
	idx = idx[start:]
	idx = idx[:min(len(idx), limit)]
	out := make([]eventstore.RecordedEvent, len(idx))
	for i, j := range idx {
		out[i] = s.all[j]
	}
	return copyEvents(out), nil
}

// StreamVersion implements eventstore.StreamReader.
func (s *Store) StreamVersion(ctx context.Context, streamID string) (int64, error) {
	if err := eventstore.ValidateStreamID(streamID); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, eventstore.ErrClosed
	}
	return int64(len(s.streams[streamID])), nil
}

// ReadCommandEvents implements eventstore.CommandIndex.
func (s *Store) ReadCommandEvents(ctx context.Context, streamID, commandID string) ([]eventstore.RecordedEvent, error) {
	if err := eventstore.ValidateStreamID(streamID); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, eventstore.ErrClosed
	}
	return copyEvents(s.commandEventsLocked(streamID, commandID)), nil
}

// commandEventsLocked returns the events of stream streamID that command commandID
// appended; they are the store's own (copy them before handing them out).
func (s *Store) commandEventsLocked(streamID, commandID string) []eventstore.RecordedEvent {
	var out []eventstore.RecordedEvent
	for _, j := range s.streams[streamID] {
		if s.all[j].Metadata[eventstore.MetaCommandID] == commandID {
			out = append(out, s.all[j])
		}
	}
	return out
}

// outcomeKey names a command within its stream.
type outcomeKey struct{ streamID, commandID string }

// RecordOutcome implements eventstore.OutcomeStore.
func (s *Store) RecordOutcome(ctx context.Context, o eventstore.CommandOutcome) (*eventstore.CommandOutcome, error) {
	if err := eventstore.ValidateOutcome(o); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, eventstore.ErrClosed
	}
	if len(s.commandEventsLocked(o.StreamID, o.CommandID)) > 0 {
		return nil, fmt.Errorf("%w: command %q appended to stream %q", eventstore.ErrCommandDecided, o.CommandID, o.StreamID)
	}
	key := outcomeKey{o.StreamID, o.CommandID}
	if prior, ok := s.outcomes[key]; ok {
		return &prior, nil
	}
	if version := int64(len(s.streams[o.StreamID])); version != o.StreamVersion {
		return nil, &eventstore.WrongVersionError{StreamID: o.StreamID, Expected: eventstore.Exact(o.StreamVersion), ActualVersion: version}
	}
	o.CreatedAt = s.now().UTC()
	s.outcomes[key] = o
	return nil, nil
}

// ReadOutcome implements eventstore.OutcomeStore.
func (s *Store) ReadOutcome(ctx context.Context, streamID, commandID string) (*eventstore.CommandOutcome, error) {
	if err := eventstore.ValidateStreamID(streamID); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, eventstore.ErrClosed
	}
	o, ok := s.outcomes[outcomeKey{streamID, commandID}]
	if !ok {
		return nil, nil
	}
	return &o, nil
}

// PruneOutcomes implements eventstore.OutcomeStore.
func (s *Store) PruneOutcomes(ctx context.Context, before time.Time) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, eventstore.ErrClosed
	}
	var n int64
	for key, o := range s.outcomes {
		if o.CreatedAt.Before(before) {
			delete(s.outcomes, key)
			n++
		}
	}
	return n, nil
}

// ReadAll implements eventstore.AllReader. Appends happen under the store's mutex, so
// every recorded event is committed and the order cannot skip.
func (s *Store) ReadAll(ctx context.Context, fromPosition int64, limit int) ([]eventstore.RecordedEvent, error) {
	if err := eventstore.ValidateLimit(limit); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, eventstore.ErrClosed
	}
	start := max(fromPosition, 1) - 1
	if start >= int64(len(s.all)) {
		return nil, nil
	}
	page := s.all[start:]
	return copyEvents(page[:min(len(page), limit)]), nil
}

// HeadPosition implements eventstore.AllReader.
func (s *Store) HeadPosition(ctx context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, eventstore.ErrClosed
	}
	return int64(len(s.all)), nil
}

// SaveSnapshot implements eventstore.SnapshotStore.
func (s *Store) SaveSnapshot(ctx context.Context, snap eventstore.Snapshot) error {
	if err := eventstore.ValidateSnapshot(snap); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return eventstore.ErrClosed
	}
	snap.Data = compactJSON(snap.Data)
	snap.CreatedAt = s.now().UTC()
	s.snapshots[snap.StreamID] = snap
	return nil
}

// LoadSnapshot implements eventstore.SnapshotStore.
func (s *Store) LoadSnapshot(ctx context.Context, streamID string, schemaVersion int) (eventstore.Snapshot, error) {
	if err := eventstore.ValidateStreamID(streamID); err != nil {
		return eventstore.Snapshot{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return eventstore.Snapshot{}, eventstore.ErrClosed
	}
	snap, ok := s.snapshots[streamID]
	if !ok || snap.SchemaVersion != schemaVersion {
		return eventstore.Snapshot{}, eventstore.ErrNotFound
	}
	snap.Data = slices.Clone(snap.Data)
	return snap, nil
}

// LoadCheckpoint implements eventstore.CheckpointStore.
func (s *Store) LoadCheckpoint(ctx context.Context, name string) (int64, error) {
	if err := eventstore.ValidateCheckpointName(name); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, eventstore.ErrClosed
	}
	return s.checkpoints[name], nil
}

// StoreCheckpoint implements eventstore.CheckpointStore.
func (s *Store) StoreCheckpoint(ctx context.Context, name string, expected, next int64) error {
	if err := eventstore.ValidateCheckpoint(name, next); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return eventstore.ErrClosed
	}
	if actual := s.checkpoints[name]; actual != expected {
		return &eventstore.CheckpointConflictError{Name: name, Expected: expected, Actual: actual}
	}
	s.checkpoints[name] = next
	return nil
}

// SubscribeAppends implements eventstore.Notifier.
func (s *Store) SubscribeAppends(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		close(ch)
		return ch
	}
	s.subscribers[ch] = struct{}{}
	s.mu.Unlock()
	go func() {
		<-ctx.Done()
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.subscribers[ch]; ok {
			delete(s.subscribers, ch)
			close(ch)
		}
	}()
	return ch
}

// Close implements eventstore.Store. Subscribers' channels are closed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	for ch := range s.subscribers {
		delete(s.subscribers, ch)
		close(ch)
	}
	return nil
}

// notifyLocked wakes every subscriber without blocking; a full buffer already holds a
// pending signal, which is all a subscriber needs.
func (s *Store) notifyLocked() {
	for ch := range s.subscribers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// compactJSON stores JSON the way PostgreSQL's jsonb would hand it back closely
// enough for tests: without insignificant whitespace, in a buffer of its own.
func compactJSON(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return slices.Clone(raw)
	}
	return json.RawMessage(b.Bytes())
}

func copyMetadata(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return maps.Clone(m)
}

// copyEvents deep-copies events so callers cannot change what the store holds.
func copyEvents(in []eventstore.RecordedEvent) []eventstore.RecordedEvent {
	out := make([]eventstore.RecordedEvent, len(in))
	for i, e := range in {
		e.Data = slices.Clone(e.Data)
		e.Metadata = maps.Clone(e.Metadata)
		out[i] = e
	}
	return out
}

var _ eventstore.BatchAppender = (*Store)(nil)

// AppendMany implements eventstore.BatchAppender by appending each request in turn;
// each request succeeds or fails on its own.
func (s *Store) AppendMany(ctx context.Context, requests []eventstore.AppendRequest) []eventstore.AppendResult {
	out := make([]eventstore.AppendResult, len(requests))
	for i, r := range requests {
		out[i].Events, out[i].Err = s.Append(ctx, r.StreamID, r.Expected, r.Events)
	}
	return out
}
