package shred

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// Record is one subject's row in a Table.
type Record struct {
	// Subject names the data subject.
	Subject string
	// MasterKeyID names the master key that wrapped the data key.
	MasterKeyID string
	// Wrapped is the data key encrypted by that master key (nonce || ciphertext).
	Wrapped []byte
	// Forgotten marks a tombstone: the key was deleted; MasterKeyID and Wrapped
	// are empty.
	Forgotten bool
}

// Table stores wrapped data keys, one row per subject. PGTable and MemTable
// implement it; both pass the same tests.
type Table interface {
	// Load returns subject's row, or an error wrapping ErrNoKey if it has none.
	Load(ctx context.Context, subject string) (Record, error)
	// Create stores rec unless its subject has a row already, and returns the row
	// stored now (rec, the earlier key, or a tombstone).
	Create(ctx context.Context, rec Record) (Record, error)
	// Forget replaces subject's row by a tombstone (creating one if it has no row).
	// Idempotent.
	Forget(ctx context.Context, subject string) error
	// Rewrap calls rewrap for every live row whose MasterKeyID is not masterID and
	// stores the result as the row's key under masterID, all in one transaction: if
	// any call fails nothing changes. It returns how many rows it re-wrapped.
	Rewrap(ctx context.Context, masterID string, rewrap func(Record) ([]byte, error)) (int, error)
}

// MemTable is an in-memory Table for tests and single-process demos.
type MemTable struct {
	mu   sync.Mutex
	rows map[string]Record
}

var _ Table = (*MemTable)(nil)

// NewMemTable returns an empty MemTable.
func NewMemTable() *MemTable { return &MemTable{rows: map[string]Record{}} }

func clone(r Record) Record {
	r.Wrapped = slices.Clone(r.Wrapped)
	return r
}

// Load implements Table.
func (m *MemTable) Load(ctx context.Context, subject string) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.rows[subject]
	if !ok {
		return Record{}, fmt.Errorf("%w for subject %q", ErrNoKey, subject)
	}
	return clone(r), nil
}

// Create implements Table.
func (m *MemTable) Create(ctx context.Context, rec Record) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.rows[rec.Subject]; ok {
		return clone(r), nil
	}
	m.rows[rec.Subject] = clone(rec)
	return clone(rec), nil
}

// Forget implements Table.
func (m *MemTable) Forget(ctx context.Context, subject string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rows[subject] = Record{Subject: subject, Forgotten: true}
	return nil
}

// Rewrap implements Table.
func (m *MemTable) Rewrap(ctx context.Context, masterID string, rewrap func(Record) ([]byte, error)) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	next := map[string]Record{}
	for s, r := range m.rows {
		if r.Forgotten || r.MasterKeyID == masterID {
			continue
		}
		w, err := rewrap(clone(r))
		if err != nil {
			return 0, err
		}
		next[s] = Record{Subject: s, MasterKeyID: masterID, Wrapped: w}
	}
	for s, r := range next {
		m.rows[s] = r
	}
	return len(next), nil
}
