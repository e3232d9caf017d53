package aggregate

import (
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader/eventstore"
)

// Store is what the aggregate runtime needs of an event store. eventstore.Store
// implementations (pgstore, memstore) satisfy it.
type Store interface {
	eventstore.Appender
	eventstore.StreamReader
	eventstore.SnapshotStore
	eventstore.CommandIndex
	eventstore.OutcomeStore
}

// Defaults used for zero Config fields.
const (
	DefaultTimeout         = 5 * time.Second
	DefaultMaxLive         = 10_000
	DefaultMaxRetries      = 5
	DefaultSweepInterval   = time.Second
	DefaultCommandIDMemory = 1_000
	// DefaultMaxAppendBatch is how many instances' appends one group commit carries
	// at most.
	DefaultMaxAppendBatch = 256
	// DefaultAppendBatchesInFlight is how many group commits may be in flight at once.
	// One gives the biggest batches: every append that arrives while a commit is out
	// joins the next one. On a 2-core machine shared with PostgreSQL and NATS it beat
	// 2 by a quarter with 3 nodes and tied with 1 node (bench/clusterbench).
	DefaultAppendBatchesInFlight = 1
)

// Config configures a Dispatcher. Zero fields take the defaults named below.
type Config struct {
	// Store is the event store. Required.
	Store Store
	// Router routes commands. Required; it must pass Validate.
	Router *Router
	// Logger receives the dispatcher's logs. Nil discards them (zerolog.Nop()).
	Logger *zerolog.Logger
	// Timeout is the default dispatch timeout. Zero means DefaultTimeout (5 s).
	Timeout time.Duration
	// MaxLive caps the live aggregate instances of this dispatcher, all types
	// together; past it the least recently used idle instance is passivated. Zero
	// means DefaultMaxLive (10 000).
	MaxLive int
	// MaxRetries is how many times a command is re-run after losing an optimistic
	// concurrency race before Dispatch fails with a *ConflictError. Zero means
	// DefaultMaxRetries (5); negative means none.
	MaxRetries int
	// SweepInterval is how often instances whose lifespan ran out are passivated.
	// Zero means DefaultSweepInterval (1 s).
	SweepInterval time.Duration
	// CommandIDMemory is how many recent command ids a live instance remembers so
	// that it can answer duplicate checks without asking the store. Zero means
	// DefaultCommandIDMemory (1 000).
	CommandIDMemory int
	// MaxAppendBatch caps how many instances' appends go to the store in one group
	// commit (one round trip, one transaction) when the store implements
	// eventstore.BatchAppender. Zero means DefaultMaxAppendBatch (256); 1 or less
	// (e.g. -1) turns group commit off: every instance appends on its own.
	MaxAppendBatch int
	// AppendBatchesInFlight is how many appends or group commits may be in flight at
	// once before further appends queue for the next batch. An append that finds
	// fewer in flight is sent at once (no waiting to fill a batch). Zero means
	// DefaultAppendBatchesInFlight (1). More overlap commits, for a database with
	// cores (and disks) to spare; fewer make bigger batches and fewer transactions.
	AppendBatchesInFlight int
	// Now is the clock lifespans are measured with. Nil means time.Now.
	Now func() time.Time
	// StrongConsistency is waited on by dispatches with Consistency Strong. Nil means
	// Strong is recorded in the Result only.
	StrongConsistency ConsistencyWaiter
	// Knobs are testing hooks; nil in production.
	Knobs *TestingKnobs
}

// TestingKnobs let tests force interleavings deterministically. All fields may be nil.
type TestingKnobs struct {
	// BeforeAppend runs on the instance goroutine just before each append, with the
	// stream id, the expected version and the 1-based attempt number.
	BeforeAppend func(streamID string, expected int64, attempt int)
	// AfterRehydrate runs on the instance goroutine after an instance is loaded, with
	// the version of the snapshot used (0 if none) and how many events were replayed.
	AfterRehydrate func(streamID string, snapshotVersion int64, replayed int)
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Logger == nil {
		l := zerolog.Nop()
		c.Logger = &l
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxLive == 0 {
		c.MaxLive = DefaultMaxLive
	}
	switch {
	case c.MaxRetries == 0:
		c.MaxRetries = DefaultMaxRetries
	case c.MaxRetries < 0:
		c.MaxRetries = 0
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = DefaultSweepInterval
	}
	if c.CommandIDMemory == 0 {
		c.CommandIDMemory = DefaultCommandIDMemory
	}
	if c.MaxAppendBatch == 0 {
		c.MaxAppendBatch = DefaultMaxAppendBatch
	}
	if c.AppendBatchesInFlight == 0 {
		c.AppendBatchesInFlight = DefaultAppendBatchesInFlight
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate returns every problem with c (after defaults), joined; nil if it is usable.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("aggregate: Config.Store is required"))
	}
	if c.Router == nil {
		errs = append(errs, errors.New("aggregate: Config.Router is required"))
	} else if err := c.Router.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("aggregate: Config.Router: %w", err))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("aggregate: Config.Timeout %s is negative", c.Timeout))
	}
	if c.MaxLive < 0 {
		errs = append(errs, fmt.Errorf("aggregate: Config.MaxLive %d is negative", c.MaxLive))
	}
	if c.SweepInterval < 0 {
		errs = append(errs, fmt.Errorf("aggregate: Config.SweepInterval %s is negative", c.SweepInterval))
	}
	if c.AppendBatchesInFlight < 0 {
		errs = append(errs, fmt.Errorf("aggregate: Config.AppendBatchesInFlight %d is negative", c.AppendBatchesInFlight))
	}
	if c.CommandIDMemory < 0 {
		errs = append(errs, fmt.Errorf("aggregate: Config.CommandIDMemory %d is negative", c.CommandIDMemory))
	}
	return errors.Join(errs...)
}
