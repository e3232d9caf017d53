package scheduler

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"time"
)

// MemStore keeps schedules in memory: for unit tests and single-process
// deployments on an in-memory event store. It behaves like Store (the same tests
// run against both), with Now as its clock. It is safe for concurrent use.
type MemStore struct {
	opts options
	now  func() time.Time

	mu   sync.Mutex
	rows map[string]*Schedule
}

var _ Storage = (*MemStore)(nil)

// NewMemStore returns an empty store whose clock is now (nil means time.Now).
func NewMemStore(now func() time.Time, opts ...Option) *MemStore {
	if now == nil {
		now = time.Now
	}
	return &MemStore{opts: apply(opts), now: now, rows: map[string]*Schedule{}}
}

func clone(s *Schedule) Schedule {
	c := *s
	c.Body = bytes.Clone(s.Body)
	if s.FiredAt != nil {
		at := *s.FiredAt
		c.FiredAt = &at
	}
	return c
}

// jsonEqual compares two JSON documents as values, like jsonb equality.
func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// ScheduleOnce is Store.ScheduleOnce.
func (m *MemStore) ScheduleOnce(ctx context.Context, r Request) (Schedule, error) {
	if err := ctx.Err(); err != nil {
		return Schedule{}, err
	}
	body, _, due, err := r.normalize(m.opts.check)
	if err != nil {
		return Schedule{}, err
	}
	m.mu.Lock()
	if old, ok := m.rows[r.ID]; ok {
		existing := clone(old)
		m.mu.Unlock()
		if existing.CommandType != r.CommandType || !jsonEqual(existing.Body, body) || !existing.DueAt.Equal(due) ||
			existing.CorrelationID != r.CorrelationID || existing.CausationID != r.CausationID {
			return Schedule{}, &ConflictError{ID: r.ID, Existing: existing}
		}
		return existing, nil
	}
	s := &Schedule{
		ID: r.ID, Partition: PartitionOf(r.ID), CommandType: r.CommandType, Body: bytes.Clone(body),
		CorrelationID: r.CorrelationID, CausationID: r.CausationID,
		DueAt: due, NextAttemptAt: due, State: Pending, CreatedAt: m.now().UTC(),
	}
	m.rows[r.ID] = s
	created := clone(s)
	m.mu.Unlock()
	if m.opts.onSchedule != nil {
		m.opts.onSchedule(created)
	}
	return created, nil
}

// Cancel is Store.Cancel.
func (m *MemStore) Cancel(ctx context.Context, id string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.rows[id]
	if !ok {
		return false, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if s.State != Pending {
		return false, nil
	}
	s.State = Cancelled
	return true, nil
}

// Get is Store.Get.
func (m *MemStore) Get(ctx context.Context, id string) (Schedule, error) {
	if err := ctx.Err(); err != nil {
		return Schedule{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.rows[id]
	if !ok {
		return Schedule{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return clone(s), nil
}

// Due is Store.Due, by the MemStore's clock.
func (m *MemStore) Due(ctx context.Context, partitions []int, limit int) ([]Schedule, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := m.now()
	m.mu.Lock()
	var out []Schedule
	for _, s := range m.rows {
		if s.State == Pending && slices.Contains(partitions, s.Partition) && !s.NextAttemptAt.After(now) {
			out = append(out, clone(s))
		}
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Schedule) int {
		if c := a.NextAttemptAt.Compare(b.NextAttemptAt); c != 0 {
			return c
		}
		return bytes.Compare([]byte(a.ID), []byte(b.ID))
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// NextDue is Store.NextDue, by the MemStore's clock.
func (m *MemStore) NextDue(ctx context.Context, partitions []int) (time.Duration, bool, error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var next time.Time
	found := false
	for _, s := range m.rows {
		if s.State == Pending && slices.Contains(partitions, s.Partition) && (!found || s.NextAttemptAt.Before(next)) {
			next, found = s.NextAttemptAt, true
		}
	}
	if !found {
		return 0, false, nil
	}
	return next.Sub(m.now()), true, nil
}

// update applies f to schedule id if its state is one of from.
func (m *MemStore) update(ctx context.Context, id string, from []State, f func(*Schedule)) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.rows[id]
	if !ok || !slices.Contains(from, s.State) {
		return false, nil
	}
	f(s)
	return true, nil
}

// MarkFired is Store.MarkFired.
func (m *MemStore) MarkFired(ctx context.Context, id, node string) (bool, error) {
	now := m.now().UTC()
	return m.update(ctx, id, []State{Pending, Cancelled}, func(s *Schedule) {
		s.State, s.FiredAt, s.FiredBy = Fired, &now, node
		s.Attempts++
	})
}

// MarkFailed is Store.MarkFailed.
func (m *MemStore) MarkFailed(ctx context.Context, id, node, reason string) (bool, error) {
	now := m.now().UTC()
	return m.update(ctx, id, []State{Pending}, func(s *Schedule) {
		s.State, s.FiredAt, s.FiredBy, s.LastError = Failed, &now, node, reason
		s.Attempts++
	})
}

// Postpone is Store.Postpone.
func (m *MemStore) Postpone(ctx context.Context, id, reason string, after time.Duration) error {
	next := m.now().Add(after)
	_, err := m.update(ctx, id, []State{Pending}, func(s *Schedule) {
		s.Attempts++
		s.LastError, s.NextAttemptAt = reason, next
	})
	return err
}

// Counts is Store.Counts.
func (m *MemStore) Counts(ctx context.Context) (map[State]int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[State]int64{Pending: 0, Fired: 0, Failed: 0, Cancelled: 0}
	for _, s := range m.rows {
		out[s.State]++
	}
	return out, nil
}
