package handlers

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader/eventstore/pgstore"
	"github.com/ringleader-go/ringleader/placement"
)

// Runner runs the partitions of registered handlers and projections that this node
// owns. A node creates one, registers every handler, starts it, and calls
// SetOwnership whenever the ring changes. See the package doc for the lifecycle and
// the concurrency contract.
type Runner struct {
	cfg   RunnerConfig
	log   zerolog.Logger
	fence Fence
	pgf   *pgFence // the PostgreSQL fence, closed with the runner; nil without PG

	advanced *signal // fires whenever a partition of this runner advances a checkpoint
	feed     *feed   // the one reader of $all that this runner's partitions share

	mu      sync.Mutex
	owns    func(string) bool
	defs    []*definition
	byName  map[string]*definition
	started bool
	closed  bool
	cancel  context.CancelFunc

	wg        sync.WaitGroup
	closeOnce sync.Once
}

// definition is one registered handler or projection and its partitions.
type definition struct {
	spec   Spec
	handle func(context.Context, Event) error // Handler only
	proj   *Projection                        // Projection only
	parts  []*partition
}

// NewRunner validates cfg and returns a runner with nothing registered.
func NewRunner(cfg RunnerConfig) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	r := &Runner{
		cfg:      cfg,
		log:      cfg.Logger.With().Str("component", "handlers").Str("node", cfg.NodeID).Logger(),
		owns:     cfg.Owns,
		byName:   map[string]*definition{},
		advanced: newSignal(),
		feed:     newFeed(cfg.Store),
	}
	switch {
	case cfg.PG != nil:
		r.pgf = newPGFence(cfg.PG.Pool().Config().ConnConfig, cfg.PG.Schema(), cfg.LockHeartbeat, r.log)
		r.fence = r.pgf
	case cfg.Fence != nil:
		r.fence = cfg.Fence
	default:
		r.fence = NewLocalFence()
	}
	if r.owns == nil {
		r.owns = func(string) bool { return true }
	}
	return r, nil
}

// Register adds handlers and projections (Handler or Projection values). It must be
// called before Start; names must be unique. It validates everything given and
// registers nothing if anything is wrong.
func (r *Runner) Register(rs ...Registrant) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	if r.started {
		return ErrStarted
	}
	var errs []error
	var defs []*definition
	seen := map[string]bool{}
	for _, reg := range rs {
		if err := reg.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		var d *definition
		switch h := reg.(type) {
		case Handler:
			d = &definition{spec: h.Spec.withDefaults(r.cfg.OnError), handle: h.Handle}
		case Projection:
			if r.cfg.PG == nil {
				errs = append(errs, fmt.Errorf("%w: %q", ErrNoPostgres, h.Name))
				continue
			}
			h.Spec = h.Spec.withDefaults(r.cfg.OnError)
			d = &definition{spec: h.Spec, proj: &h}
		}
		if r.byName[d.spec.Name] != nil || seen[d.spec.Name] {
			errs = append(errs, fmt.Errorf("%w: %q", ErrDuplicateName, d.spec.Name))
			continue
		}
		seen[d.spec.Name] = true
		defs = append(defs, d)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, d := range defs {
		for i := range d.spec.Partitions {
			d.parts = append(d.parts, newPartition(r, d, i))
		}
		r.defs = append(r.defs, d)
		r.byName[d.spec.Name] = d
	}
	return nil
}

// Start runs every projection's Setup (each in its own transaction, serialised across
// nodes by an advisory lock), then starts a
// goroutine per partition, which runs the partition whenever this node owns it. The
// partitions run until Close or until ctx ends.
func (r *Runner) Start(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	if r.started {
		r.mu.Unlock()
		return ErrStarted
	}
	r.started = true
	defs := r.defs
	r.mu.Unlock()

	for _, d := range defs {
		if d.proj == nil || d.proj.Setup == nil {
			continue
		}
		setup := func(tx pgx.Tx) error { return d.proj.Setup(ctx, tx) }
		if err := pgstore.Setup(ctx, r.cfg.PG.Pool(), "projection:"+d.spec.Name, setup); err != nil {
			return fmt.Errorf("handlers: setup of projection %q: %w", d.spec.Name, err)
		}
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel)
	r.cancel = func() { stop(); cancel() }
	if len(defs) > 0 {
		// Without handlers nobody reads the feed: do not be woken by every append.
		notes := r.cfg.Store.SubscribeAppends(runCtx)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.feed.follow(notes, r.cfg.ReadInterval)
		}()
	}
	for _, d := range defs {
		for _, p := range d.parts {
			p.setOwned(r.owns(p.key))
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				p.loop(runCtx)
			}()
		}
	}
	r.log.Info().Int("handlers", len(defs)).Msg("handlers: started")
	return nil
}

// SetOwnership tells the runner which partitions this node should run: owns reports
// whether the node owns a ring key (placement.HandlerPartitionKey(name, i)). The
// runner starts the partitions it now owns (each once it holds the partition's
// fence lease) and stops those it no longer owns after their in-progress event. It
// does not wait. Call it whenever the ring changes; owns must be safe to call from
// this goroutine until the next SetOwnership.
func (r *Runner) SetOwnership(owns func(partitionKey string) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.owns = owns
	if !r.started || r.closed {
		return
	}
	for _, d := range r.defs {
		for _, p := range d.parts {
			p.setOwned(owns(p.key))
		}
	}
}

// Close stops every partition (Handle and Project see their ctx end), waits for the
// partition goroutines to exit and releases the fence. It does not close the store.
// It is safe to call more than once.
func (r *Runner) Close() error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		cancel := r.cancel
		r.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		r.wg.Wait()
		if r.pgf != nil {
			r.pgf.close()
		}
		r.log.Info().Msg("handlers: closed")
	})
	return nil
}

// definitions returns the registered definitions (fixed after Start).
func (r *Runner) definitions() []*definition {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.defs
}

// definition returns the handler called name.
func (r *Runner) definition(name string) (*definition, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.byName[name]
	if d == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownHandler, name)
	}
	return d, nil
}

// partitionOf returns which partition of d receives the events of streamID.
func (d *definition) partitionOf(streamID string) int {
	return placement.StreamPartition(streamID, d.spec.Partitions)
}
