package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// DispatchFunc sends a due schedule's command through the node's command path, with
// the schedule id as its Command-Id. It returns nil when the command was accepted
// (or answered as a duplicate of an accepted one), an error wrapping ErrRejected
// (a *RejectedError) for a definite refusal, and any other error when the outcome is
// unknown or a retry may succeed (timeout, unavailable, conflict, no reply).
type DispatchFunc func(ctx context.Context, s Schedule) error

// Storage is what a Firer needs of a schedule store: *Store (PostgreSQL) and
// *MemStore implement it. "Now" is the store's clock (the database's for Store).
type Storage interface {
	// Due returns up to limit pending schedules of the partitions whose next
	// attempt is due now, earliest first.
	Due(ctx context.Context, partitions []int, limit int) ([]Schedule, error)
	// NextDue returns how long until the earliest pending schedule of the
	// partitions is due, and false if there is none.
	NextDue(ctx context.Context, partitions []int) (time.Duration, bool, error)
	// MarkFired records an accepted command (a pending or cancelled schedule
	// becomes fired).
	MarkFired(ctx context.Context, id, node string) (bool, error)
	// MarkFailed records a refused command (a pending schedule becomes failed).
	MarkFailed(ctx context.Context, id, node, reason string) (bool, error)
	// Postpone records a transient failure and moves the next attempt.
	Postpone(ctx context.Context, id, reason string, after time.Duration) error
}

// FirerConfig configures a Firer. Zero fields take the defaults given.
type FirerConfig struct {
	// Store holds the schedules. Required.
	Store Storage
	// Dispatch sends a command. Required.
	Dispatch DispatchFunc
	// NodeID is recorded as fired_by. Required.
	NodeID string
	// Logger receives the Firer's logs. Zero value: disabled.
	Logger zerolog.Logger
	// PollInterval is the longest the Firer sleeps between looks at the table; it
	// wakes earlier for the next due schedule it knows of, on Wake and on
	// SetOwnership. Default 1s.
	PollInterval time.Duration
	// BatchSize is how many due schedules one look takes. Default 100.
	BatchSize int
	// Concurrency is how many commands are in flight at once. Default 8.
	Concurrency int
	// DispatchTimeout bounds one dispatch. Default 10s.
	DispatchTimeout time.Duration
	// MinBackoff and MaxBackoff bound the delay before a schedule whose dispatch
	// failed transiently is tried again; it doubles per attempt. Defaults 250ms, 30s.
	MinBackoff, MaxBackoff time.Duration
}

func (c *FirerConfig) setDefaults() {
	if c.PollInterval == 0 {
		c.PollInterval = time.Second
	}
	if c.BatchSize == 0 {
		c.BatchSize = 100
	}
	if c.Concurrency == 0 {
		c.Concurrency = 8
	}
	if c.DispatchTimeout == 0 {
		c.DispatchTimeout = 10 * time.Second
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = 250 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 30 * time.Second
	}
}

// Validate returns every problem with c, joined; nil if it is usable.
func (c FirerConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...))
	}
	if c.Store == nil {
		bad("Store is required")
	}
	if c.Dispatch == nil {
		bad("Dispatch is required")
	}
	if c.NodeID == "" {
		bad("NodeID is required")
	}
	if c.PollInterval < 0 || c.DispatchTimeout < 0 || c.MinBackoff < 0 || c.MaxBackoff < 0 {
		bad("durations must not be negative")
	}
	if c.MaxBackoff > 0 && c.MinBackoff > c.MaxBackoff {
		bad("MinBackoff %s exceeds MaxBackoff %s", c.MinBackoff, c.MaxBackoff)
	}
	if c.BatchSize < 0 || c.Concurrency < 0 {
		bad("BatchSize and Concurrency must not be negative")
	}
	return errors.Join(errs...)
}

// FirerStats counts what a Firer did since it started.
type FirerStats struct {
	// Fired: dispatches answered with success (duplicates included).
	Fired int64
	// Failed: dispatches definitely refused.
	Failed int64
	// Retried: dispatches that failed transiently and were postponed.
	Retried int64
}

// Firer fires the due schedules of the partitions its node owns. Create it with
// NewFirer, then Start it.
type Firer struct {
	cfg  FirerConfig
	owns atomic.Pointer[func(string) bool]
	wake chan struct{}

	fired, failed, retried atomic.Int64

	mu      sync.Mutex
	started bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// NewFirer validates cfg and returns a Firer that owns nothing until SetOwnership.
func NewFirer(cfg FirerConfig) (*Firer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f := &Firer{cfg: cfg, wake: make(chan struct{}, 1)}
	none := func(string) bool { return false }
	f.owns.Store(&none)
	return f, nil
}

// SetOwnership installs the ring's verdict: owns(PartitionKey(p)) says whether this
// node fires partition p. It wakes the loop, so schedules that came due on a failed
// node are fired as soon as the ring moves them here.
func (f *Firer) SetOwnership(owns func(key string) bool) {
	f.owns.Store(&owns)
	f.Wake()
}

// Wake makes the loop look at the table now.
func (f *Firer) Wake() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Stats returns the Firer's counters.
func (f *Firer) Stats() FirerStats {
	return FirerStats{Fired: f.fired.Load(), Failed: f.failed.Load(), Retried: f.retried.Load()}
}

// Owned returns the partitions this node currently fires.
func (f *Firer) Owned() []int {
	owns := *f.owns.Load()
	var out []int
	for p := range Partitions {
		if owns(PartitionKey(p)) {
			out = append(out, p)
		}
	}
	return out
}

// Start runs the loop until ctx ends or Close is called. Starting twice, or after
// Close, returns ErrClosed.
func (f *Firer) Start(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.started {
		return ErrClosed
	}
	f.started = true
	ctx, f.cancel = context.WithCancel(ctx)
	f.done = make(chan struct{})
	go f.loop(ctx)
	return nil
}

// Close stops the loop and waits for it (and its dispatches) to end. It is idempotent.
func (f *Firer) Close() error {
	f.mu.Lock()
	f.started = true
	cancel, done := f.cancel, f.done
	f.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	return nil
}

func (f *Firer) loop(ctx context.Context) {
	defer close(f.done)
	log := f.cfg.Logger
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-f.wake:
		}
		wait := f.cfg.PollInterval
		parts := f.Owned()
		n, err := f.fireDue(ctx, parts)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Warn().Err(err).Msg("scheduler: looking for due schedules failed; retrying")
		case n >= f.cfg.BatchSize:
			wait = 0 // a full batch: there may be more due now
		default:
			if next, ok, err := f.cfg.Store.NextDue(ctx, parts); err == nil && ok && next < wait {
				wait = max(next, time.Millisecond)
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// fireDue fires one batch of due schedules and returns how many it took.
func (f *Firer) fireDue(ctx context.Context, parts []int) (int, error) {
	due, err := f.cfg.Store.Due(ctx, parts, f.cfg.BatchSize)
	if err != nil || len(due) == 0 {
		return 0, err
	}
	sem := make(chan struct{}, f.cfg.Concurrency)
	var wg sync.WaitGroup
	for _, s := range due {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			f.fire(ctx, s)
		}()
	}
	wg.Wait()
	return len(due), nil
}

// fire dispatches one schedule and records the outcome.
func (f *Firer) fire(ctx context.Context, s Schedule) {
	log := f.cfg.Logger.With().Str("schedule", s.ID).Str("command", s.CommandType).Logger()
	dctx, cancel := context.WithTimeout(ctx, f.cfg.DispatchTimeout)
	err := f.dispatch(dctx, s)
	cancel()
	if ctx.Err() != nil {
		return // shutting down: the outcome is unknown, the next owner fires it again
	}
	// The marks must land even if the loop is being stopped right now.
	mctx, mcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer mcancel()
	switch {
	case err == nil:
		f.fired.Add(1)
		if _, merr := f.cfg.Store.MarkFired(mctx, s.ID, f.cfg.NodeID); merr != nil {
			log.Warn().Err(merr).Msg("scheduler: fired, but recording it failed; it will be fired again (the Command-Id makes that harmless)")
			return
		}
		log.Debug().Time("due_at", s.DueAt).Msg("scheduler: fired")
	case errors.Is(err, ErrRejected):
		f.failed.Add(1)
		if _, merr := f.cfg.Store.MarkFailed(mctx, s.ID, f.cfg.NodeID, err.Error()); merr != nil {
			log.Warn().Err(merr).Msg("scheduler: refused, but recording it failed")
			return
		}
		log.Warn().Err(err).Msg("scheduler: command refused; schedule failed")
	default:
		f.retried.Add(1)
		delay := f.backoff(s.Attempts)
		if perr := f.cfg.Store.Postpone(mctx, s.ID, err.Error(), delay); perr != nil {
			log.Warn().Err(perr).Msg("scheduler: recording a retry failed")
			return
		}
		log.Info().Err(err).Dur("retry_in", delay).Int("attempt", s.Attempts+1).Msg("scheduler: dispatch failed; will retry")
	}
}

// dispatch calls the DispatchFunc, turning a panic into an error.
func (f *Firer) dispatch(ctx context.Context, s Schedule) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("scheduler: dispatch of %q panicked: %v", s.ID, r)
		}
	}()
	return f.cfg.Dispatch(ctx, s)
}

// backoff is the delay after the given number of earlier attempts.
func (f *Firer) backoff(attempts int) time.Duration {
	d := f.cfg.MinBackoff
	for range min(attempts, 30) {
		d *= 2
		if d >= f.cfg.MaxBackoff {
			return f.cfg.MaxBackoff
		}
	}
	return min(d, f.cfg.MaxBackoff)
}
