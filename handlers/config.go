package handlers

import (
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore"
)

// Defaults of RunnerConfig fields left zero.
const (
	DefaultPollInterval      = time.Second
	DefaultLockRetryInterval = time.Second
	DefaultLockHeartbeat     = time.Second
	DefaultLagCap            = 100_000
	// DefaultReadInterval is RunnerConfig.ReadInterval's default.
	DefaultReadInterval = 2 * time.Millisecond
)

// RunnerConfig configures a Runner. Zero fields take the defaults documented on them.
type RunnerConfig struct {
	// Store is the event store partitions read and keep checkpoints in. Required.
	// When it is PostgreSQL, pass the same store as PG.
	Store eventstore.Store
	// PG is the PostgreSQL store. With it, projections are allowed and partitions
	// are fenced by advisory locks; without it (nil) projections are refused and the
	// fence is Fence.
	PG *pgstore.Store
	// Fence grants partition leases when PG is nil (it is ignored otherwise). Nil
	// means a LocalFence private to this runner; give runners that share an
	// in-memory store one LocalFence.
	Fence Fence
	// NodeID names this node in Status (PartitionStatus.Owner). Required.
	NodeID string
	// Logger receives the runner's logs. The zero value discards.
	Logger zerolog.Logger
	// Now reads the clock (for Status and latency figures). Nil means time.Now.
	Now func() time.Time
	// Owns is the initial ownership: whether this node should run the partition with
	// the given ring key (placement.HandlerPartitionKey). Nil means every partition
	// (a single node). Runner.SetOwnership replaces it.
	Owns func(partitionKey string) bool
	// Observer is told of handled pages, failures and state changes (metrics). Nil
	// means none.
	Observer Observer
	// PollInterval is the safety poll of an idle partition, in case a notification
	// was missed; it also notices a checkpoint moved by another node (Reset). 0 means
	// DefaultPollInterval (1s).
	PollInterval time.Duration
	// LockRetryInterval is how long a partition that could not take its lease waits
	// before trying again. 0 means DefaultLockRetryInterval (1s).
	LockRetryInterval time.Duration
	// LockHeartbeat is how often the PostgreSQL lock session is pinged while it holds
	// leases: a dead connection stops its partitions within about this long. 0 means
	// DefaultLockHeartbeat (1s).
	LockHeartbeat time.Duration
	// LagCap bounds the events counted for PartitionStatus.Lag. 0 means
	// DefaultLagCap (100000).
	LagCap int64
	// ReadInterval is the least time between two wake-ups of the partitions by
	// append notifications. The first append after a quiet spell wakes them at once;
	// appends within the interval after a wake-up are read together by one wake-up at
	// its end, so that a busy node projects pages of events instead of a transaction
	// per event (measured on 2 cores, one command at a time: PostgreSQL CPU -15 to
	// -30 %, command p99 3.2–3.7 → 1.4–1.6 ms). It adds at most this much to handler
	// lag, and to the wait of a strong-consistency command, under a steady stream of
	// appends. 0 means DefaultReadInterval (2ms); negative means none.
	ReadInterval time.Duration
	// Decode turns a recorded event into the Go value handlers receive as
	// Event.Value: a node passes its router's DecodeEvent, which knows every event
	// type its aggregate types registered. It returns nil (and no error) for an
	// event type it does not know; an error (a registered type whose data does not
	// decode) fails the event like a handler error would. Nil leaves every Value nil.
	Decode func(eventstore.RecordedEvent) (any, error)
	// OnError is the error policy of the handlers and projections whose Spec has
	// none. Nil means DefaultOnError.
	OnError OnError
	// Knobs are testing hooks; nil in production.
	Knobs *TestingKnobs
}

func (c *RunnerConfig) setDefaults() {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Observer == nil {
		c.Observer = NopObserver{}
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.LockRetryInterval == 0 {
		c.LockRetryInterval = DefaultLockRetryInterval
	}
	if c.LockHeartbeat == 0 {
		c.LockHeartbeat = DefaultLockHeartbeat
	}
	if c.LagCap == 0 {
		c.LagCap = DefaultLagCap
	}
	if c.ReadInterval == 0 {
		c.ReadInterval = DefaultReadInterval
	}
	if c.OnError == nil {
		c.OnError = DefaultOnError
	}
	if c.Knobs == nil {
		c.Knobs = &TestingKnobs{}
	}
}

// Validate reports every problem of the configuration at once (zero fields with a
// default are valid).
func (c RunnerConfig) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("handlers: config: nil Store"))
	}
	if c.NodeID == "" {
		errs = append(errs, errors.New("handlers: config: empty NodeID"))
	}
	for name, d := range map[string]time.Duration{
		"PollInterval": c.PollInterval, "LockRetryInterval": c.LockRetryInterval, "LockHeartbeat": c.LockHeartbeat,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("handlers: config: negative %s %v", name, d))
		}
	}
	if c.LagCap < 0 {
		errs = append(errs, fmt.Errorf("handlers: config: negative LagCap %d", c.LagCap))
	}
	return errors.Join(errs...)
}

// Observer is told what partitions do, for metrics. Calls come from partition
// goroutines, concurrently; they must be quick and must not block. Embed
// NopObserver to implement only some methods.
type Observer interface {
	// Handled reports a committed page: its matching events (handled or skipped),
	// the checkpoint move from → to, and how long the page took.
	Handled(handler string, partition int, events int, from, to int64, took time.Duration)
	// Failed reports a failure and the decision taken.
	Failed(f Failure, d Decision)
	// StateChanged reports a partition's new state on this node.
	StateChanged(handler string, partition int, state State)
}

// NopObserver observes nothing.
type NopObserver struct{}

// Handled implements Observer.
func (NopObserver) Handled(string, int, int, int64, int64, time.Duration) {}

// Failed implements Observer.
func (NopObserver) Failed(Failure, Decision) {}

// StateChanged implements Observer.
func (NopObserver) StateChanged(string, int, State) {}

// TestingKnobs are hooks that let tests force races and crashes deterministically.
type TestingKnobs struct {
	// AfterProject runs inside a projection's transaction after Project returned nil
	// for e; a non-nil error rolls the transaction back as if the node crashed
	// before committing (it then counts as a failure of e).
	AfterProject func(handler string, partition int, e eventstore.RecordedEvent) error
	// BeforeCommit runs before a page's checkpoint compare-and-set from → to (inside
	// the transaction for projections).
	BeforeCommit func(handler string, partition int, from, to int64)
}

// Sentinel errors.
var (
	// ErrClosed: the runner was closed.
	ErrClosed = errors.New("handlers: runner closed")
	// ErrStarted: Register after Start, or Start twice.
	ErrStarted = errors.New("handlers: runner already started")
	// ErrUnknownHandler: no handler of that name is registered.
	ErrUnknownHandler = errors.New("handlers: unknown handler")
	// ErrNoPostgres: a projection needs RunnerConfig.PG.
	ErrNoPostgres = errors.New("handlers: projections need a PostgreSQL store")
	// ErrDuplicateName: a handler of that name is already registered.
	ErrDuplicateName = errors.New("handlers: duplicate handler name")
)
