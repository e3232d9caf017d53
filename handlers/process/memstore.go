package process

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
)

// MemStore is an in-memory StateStore for unit tests. The zero value is ready.
type MemStore struct {
	mu      sync.Mutex
	records map[[2]string]Record
}

var _ StateStore = (*MemStore)(nil)

// NewMemStore returns an empty in-memory store.
func NewMemStore() *MemStore { return &MemStore{} }

// Load implements StateStore.
func (s *MemStore) Load(ctx context.Context, manager, processID string) (Record, bool, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.records[[2]string{manager, processID}]
	return clone(r), ok, nil
}

// Save implements StateStore.
func (s *MemStore) Save(ctx context.Context, r Record) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := [2]string{r.Manager, r.ProcessID}
	if cur := s.records[key]; cur.Version != r.Version {
		return Record{}, fmt.Errorf("%w: %s/%s is at version %d, not %d", ErrConflict, r.Manager, r.ProcessID, cur.Version, r.Version)
	}
	if s.records == nil {
		s.records = make(map[[2]string]Record)
	}
	r = clone(r)
	r.Version++
	s.records[key] = r
	return clone(r), nil
}

// Records returns a copy of every record of manager, by process id.
func (s *MemStore) Records(manager string) map[string]Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Record)
	for k, r := range s.records {
		if k[0] == manager {
			out[k[1]] = clone(r)
		}
	}
	return out
}

func clone(r Record) Record {
	r.State = append(json.RawMessage(nil), r.State...)
	if r.Pending != nil {
		p := make([]Sent, len(r.Pending))
		for i, c := range r.Pending {
			c.Body = append(json.RawMessage(nil), c.Body...)
			p[i] = c
		}
		r.Pending = p
	}
	return r
}
