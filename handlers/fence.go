package handlers

import (
	"context"
	"sync"
)

// Fence grants exclusive leases on partitions, so that a partition runs on one
// worker at a time even when two nodes both believe they own it (during a move or a
// network split). The ring decides who should run a partition; the fence decides who
// does.
type Fence interface {
	// TryAcquire tries to take the lease called name without waiting. It returns
	// false (and no error) when another holder has it.
	TryAcquire(ctx context.Context, name string) (Lease, bool, error)
}

// Lease is a held partition lease.
type Lease interface {
	// Lost is closed when the lease is lost without Release (its database session
	// died): the holder must stop processing at once.
	Lost() <-chan struct{}
	// Release gives the lease up. It is safe to call more than once.
	Release()
}

// LocalFence is an in-process Fence for runners over an in-memory store: runners
// given the same LocalFence exclude each other. Its leases are never lost. The zero
// value is not usable; create one with NewLocalFence.
type LocalFence struct {
	mu   sync.Mutex
	held map[string]bool
}

var _ Fence = (*LocalFence)(nil)

// NewLocalFence returns an empty in-process fence.
func NewLocalFence() *LocalFence { return &LocalFence{held: map[string]bool{}} }

// TryAcquire implements Fence.
func (f *LocalFence) TryAcquire(ctx context.Context, name string) (Lease, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.held[name] {
		return nil, false, nil
	}
	f.held[name] = true
	return &localLease{fence: f, name: name}, true, nil
}

type localLease struct {
	fence *LocalFence
	name  string
	once  sync.Once
}

// Lost implements Lease: a local lease is never lost (nil channel).
func (l *localLease) Lost() <-chan struct{} { return nil }

// Release implements Lease.
func (l *localLease) Release() {
	l.once.Do(func() {
		l.fence.mu.Lock()
		delete(l.fence.held, l.name)
		l.fence.mu.Unlock()
	})
}
