package handlers

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader/placement"
)

// State is what a partition is doing on this node.
type State string

// Partition states.
const (
	// StateStopped: this node does not run the partition (not owned, or paused for
	// a Reset).
	StateStopped State = "stopped"
	// StateWaitingForLock: owned here, but another holder has its fence lease.
	StateWaitingForLock State = "waiting-for-lock"
	// StateRunning: this node holds the lease and processes events.
	StateRunning State = "running"
	// StateFailed: OnError said Stop; the partition stays stopped until Reset or
	// until this node stops and starts owning it again.
	StateFailed State = "failed"
)

// partition is one partition of a handler on this runner: a goroutine for the
// runner's lifetime that runs it whenever it is desired (owned, not paused, not
// failed) and its lease is held.
type partition struct {
	r      *Runner
	def    *definition
	index  int
	key    string // ring key
	cpName string
	log    zerolog.Logger
	kick   chan struct{} // wakes the goroutine to re-check what it should do

	mu       sync.Mutex
	owned    bool
	paused   int  // Resets in progress
	failed   bool // OnError said Stop
	active   bool // holds the lease and may process events
	state    State
	lastErr  string
	position int64 // the checkpoint as this node last knew it
	changed  chan struct{}
}

func newPartition(r *Runner, d *definition, i int) *partition {
	return &partition{
		r:       r,
		def:     d,
		index:   i,
		key:     placement.HandlerPartitionKey(d.spec.Name, i),
		cpName:  CheckpointName(d.spec.Name, i),
		log:     r.log.With().Str("handler", d.spec.Name).Int("partition", i).Logger(),
		kick:    make(chan struct{}, 1),
		state:   StateStopped,
		changed: make(chan struct{}),
	}
}

// poke wakes the partition's goroutine.
func (p *partition) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// desiredLocked: the partition should run here. p.mu is held.
func (p *partition) desiredLocked() bool { return p.owned && p.paused == 0 && !p.failed }

func (p *partition) desired() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.desiredLocked()
}

func (p *partition) setOwned(owned bool) {
	p.mu.Lock()
	if !owned && p.failed {
		p.failed = false // another node takes it over; owning it again restarts it
		p.setStateLocked(StateStopped)
	}
	changed := p.owned != owned
	p.owned = owned
	p.mu.Unlock()
	if changed {
		p.poke()
	}
}

// pause stops the partition on this node until resume; resume also clears a failure.
func (p *partition) pause() {
	p.mu.Lock()
	p.paused++
	p.mu.Unlock()
	p.poke()
}

func (p *partition) resume() {
	p.mu.Lock()
	p.paused--
	p.failed = false
	p.mu.Unlock()
	p.poke()
}

// waitInactive returns once the partition holds no lease here (after a pause).
func (p *partition) waitInactive(ctx context.Context) error {
	for {
		p.mu.Lock()
		active, changed := p.active, p.changed
		p.mu.Unlock()
		if !active {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (p *partition) setStateLocked(s State) {
	if p.state != s {
		p.state = s
		p.r.cfg.Observer.StateChanged(p.def.spec.Name, p.index, s)
	}
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *partition) setState(s State) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setStateLocked(s)
}

func (p *partition) noteErr(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastErr = err.Error()
}

func (p *partition) setPosition(pos int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.position = pos
}

// loop runs for the runner's lifetime: wait until desired, take the lease, run,
// release, repeat.
func (p *partition) loop(ctx context.Context) {
	defer p.setState(StateStopped)
	for {
		if !p.waitDesired(ctx) {
			return
		}
		p.setState(StateWaitingForLock)
		lease, ok, err := p.r.fence.TryAcquire(ctx, p.cpName)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			p.noteErr(err)
			p.log.Warn().Err(err).Msg("handlers: cannot take partition lease")
		}
		if !ok {
			if !p.sleep(ctx, p.r.cfg.LockRetryInterval) {
				return
			}
			continue
		}
		if !p.activate() {
			lease.Release()
			continue
		}
		p.log.Debug().Msg("handlers: partition running")
		err = p.run(ctx, lease)
		lease.Release()
		p.deactivate(err)
	}
}

// waitDesired blocks until the partition should run here; false when ctx ends.
func (p *partition) waitDesired(ctx context.Context) bool {
	for {
		p.mu.Lock()
		desired := p.desiredLocked()
		if !desired && !p.failed {
			p.setStateLocked(StateStopped)
		}
		p.mu.Unlock()
		if desired {
			return true
		}
		select {
		case <-p.kick:
		case <-ctx.Done():
			return false
		}
	}
}

// sleep waits d, or less if poked; false when ctx ends.
func (p *partition) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-p.kick:
	case <-ctx.Done():
		return false
	}
	return true
}

// activate marks the partition as processing, if it is still desired.
func (p *partition) activate() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.desiredLocked() {
		return false
	}
	p.active = true
	p.setStateLocked(StateRunning)
	return true
}

// deactivate records why run returned.
func (p *partition) deactivate(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.active = false
	var stopped *StoppedError
	switch {
	case errors.As(err, &stopped):
		p.failed = true
		p.lastErr = err.Error()
		p.setStateLocked(StateFailed)
		p.log.Error().Err(err).Msg("handlers: partition stopped by its error policy")
	default:
		p.setStateLocked(StateStopped)
	}
}
