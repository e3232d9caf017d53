package handlers

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/ringleader-go/ringleader/eventstore"
)

// StartFrom says where a handler starts reading the global order the first time it
// runs (when its partition has no checkpoint yet).
type StartFrom string

const (
	// Origin starts at the first event ever appended.
	Origin StartFrom = "origin"
	// Current starts after the store's head position at the moment the partition
	// first runs: history is skipped.
	Current StartFrom = "current"
)

// Defaults of Spec fields left zero.
const (
	DefaultPartitions = 1
	DefaultBatchSize  = 100
)

// Spec is what every handler kind shares: its name, partitioning, start point,
// consistency and error policy.
type Spec struct {
	// Name identifies the handler cluster-wide; it must be unique within a runner
	// and must not contain '#'. Partition i keeps its checkpoint under
	// CheckpointName(Name, i) ("handler:<Name>#<i>") and is the ring key
	// placement.HandlerPartitionKey(Name, i).
	Name string
	// Partitions is the partition count K (0 means DefaultPartitions = 1). Partition
	// i receives the events of the streams s with placement.StreamPartition(s, K) == i.
	// Changing K re-partitions the streams: keep it fixed, or Reset the handler.
	Partitions int
	// StartFrom is where a partition without a checkpoint starts ("" means Origin).
	StartFrom StartFrom
	// Strong makes dispatches with strong consistency wait for this handler (see
	// Runner.WaitFor).
	Strong bool
	// OnError decides what happens when handling an event fails (nil means the
	// runner's RunnerConfig.OnError, by default DefaultOnError: retry for ever with
	// exponential backoff).
	OnError OnError
	// BatchSize is how many events a partition reads from the global order per page
	// (0 means DefaultBatchSize = 100). A projection commits one transaction per page.
	BatchSize int
	// Filter, if set, picks the events the handler wants (by stream, type or
	// metadata); the others are passed over like other partitions' events: not
	// delivered, and no checkpoint write of their own. It runs on the node's shared
	// reader for every event of the partition, so it must be fast, pure and must
	// not modify the event. A Strong handler is waited for only for the events its
	// Filter wants.
	Filter func(eventstore.RecordedEvent) bool
}

// withDefaults returns s with its zero fields set to their defaults; onError is the
// runner's error policy.
func (s Spec) withDefaults(onError OnError) Spec {
	if s.Partitions == 0 {
		s.Partitions = DefaultPartitions
	}
	if s.StartFrom == "" {
		s.StartFrom = Origin
	}
	if s.OnError == nil {
		s.OnError = onError
	}
	if s.BatchSize == 0 {
		s.BatchSize = DefaultBatchSize
	}
	return s
}

// Validate reports every problem of the spec at once (zero fields are valid: they
// take their defaults).
func (s Spec) Validate() error {
	var errs []error
	if s.Name == "" {
		errs = append(errs, errors.New("handlers: spec: empty name"))
	}
	if strings.Contains(s.Name, "#") {
		errs = append(errs, fmt.Errorf("handlers: spec %q: name contains '#'", s.Name))
	}
	if s.Partitions < 0 {
		errs = append(errs, fmt.Errorf("handlers: spec %q: negative partition count %d", s.Name, s.Partitions))
	}
	if s.StartFrom != "" && s.StartFrom != Origin && s.StartFrom != Current {
		errs = append(errs, fmt.Errorf("handlers: spec %q: start from %q: want %q or %q", s.Name, s.StartFrom, Origin, Current))
	}
	if s.BatchSize < 0 {
		errs = append(errs, fmt.Errorf("handlers: spec %q: negative batch size %d", s.Name, s.BatchSize))
	}
	return errors.Join(errs...)
}

// CheckpointName is the checkpoint under which partition i of handler name keeps its
// position: "handler:<name>#<i>".
func CheckpointName(name string, i int) string {
	return "handler:" + name + "#" + strconv.Itoa(i)
}

// Handler is an event handler with side effects of its own (calls, messages,
// commands). Delivery is at least once: Handle may see an event again after a crash,
// a move of its partition or a lost lock, so its effects should be idempotent. The
// checkpoint advances (compare-and-set) after a page's events are handled.
type Handler struct {
	Spec
	// Handle handles one event. ctx ends when the partition loses its lock or the
	// runner closes. A returned error or a panic goes to Spec.OnError. Required.
	Handle func(ctx context.Context, e Event) error
}

// Validate reports every problem of the handler at once.
func (h Handler) Validate() error {
	err := h.Spec.Validate()
	if h.Handle == nil {
		err = errors.Join(err, fmt.Errorf("handlers: handler %q: nil Handle", h.Name))
	}
	return err
}

// Projection is a PostgreSQL read model: the rows Project writes and the partition's
// checkpoint commit in one transaction, so each event's effect is applied exactly
// once even across crashes, moves and splits. The transaction commits with
// synchronous_commit off: a PostgreSQL crash may lose its last few milliseconds of
// projection commits (rows and checkpoints together), which are then projected
// again. A runner needs RunnerConfig.PG to run projections.
type Projection struct {
	Spec
	// Setup creates the read model's tables idempotently (CREATE TABLE IF NOT
	// EXISTS …). The runner calls it once, in its own transaction, at Start.
	// Optional.
	Setup func(ctx context.Context, tx pgx.Tx) error
	// Project applies one event to the read model inside tx, which also carries the
	// checkpoint update; it must not commit or roll back tx. A returned error or a
	// panic rolls the transaction back and goes to Spec.OnError. Required unless
	// ProjectPage is set.
	Project func(ctx context.Context, tx pgx.Tx, e Event) error
	// ProjectPage, if set, is used instead of Project: it applies a page of the
	// partition's events (in global order) inside tx, e.g. sending all their writes
	// in one pgx.Batch round trip instead of one round trip each. If the page fails,
	// the runner redoes it one event at a time (one-event pages), so the error policy
	// applies to the event at fault. Optional.
	ProjectPage func(ctx context.Context, tx pgx.Tx, events []Event) error
	// Reset empties the read model for a rebuild (Runner.Reset), in the transaction
	// that also sets the checkpoints back to 0. Required for Runner.Reset, optional
	// otherwise.
	Reset func(ctx context.Context, tx pgx.Tx) error
}

// Validate reports every problem of the projection at once.
func (p Projection) Validate() error {
	err := p.Spec.Validate()
	if p.Project == nil && p.ProjectPage == nil {
		err = errors.Join(err, fmt.Errorf("handlers: projection %q: nil Project (and no ProjectPage)", p.Name))
	}
	return err
}

// Registrant is what Runner.Register accepts: a Handler or a Projection.
type Registrant interface {
	Validate() error
	registrant()
}

func (Handler) registrant()    {}
func (Projection) registrant() {}
