package eventstore

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Store is the whole event store: appending, reading, snapshots, checkpoints and
// change notifications. Consumers should depend on the smallest of the interfaces below
// that does their job.
type Store interface {
	Appender
	StreamReader
	AllReader
	SnapshotStore
	CheckpointStore
	CommandIndex
	OutcomeStore
	Notifier
	// Close releases the store's connections and stops its goroutines. It is safe to
	// call more than once.
	Close() error
}

// Appender appends events to a stream.
type Appender interface {
	// Append writes events to the end of stream streamID if the stream's current
	// version satisfies expected, atomically: all events or none. It returns the
	// events as recorded, with their stream versions and global positions.
	//
	// Errors: *WrongVersionError (ErrWrongVersion) when expected does not hold;
	// ErrInvalid for an empty stream id, no events, an empty event type or data
	// that is not a JSON value; ErrEventTooLarge for an event over the store's limit.
	Append(ctx context.Context, streamID string, expected ExpectedVersion, events []EventData) ([]RecordedEvent, error)
}

// StreamReader reads one stream.
type StreamReader interface {
	// ReadStream returns up to limit events of stream streamID whose stream version is
	// at least fromVersion, in version order. A stream that does not exist reads as
	// empty. limit must be positive.
	ReadStream(ctx context.Context, streamID string, fromVersion int64, limit int) ([]RecordedEvent, error)
	// StreamVersion returns the version of the stream's last event, 0 if the stream
	// does not exist.
	StreamVersion(ctx context.Context, streamID string) (int64, error)
}

// AllReader reads the global order of all streams ("$all").
type AllReader interface {
	// ReadAll returns up to limit events whose global position is at least
	// fromPosition, in global order. It never returns an event while an
	// earlier-positioned event may still commit, so a reader that continues from the
	// last position it saw plus one never skips an event. limit must be positive.
	ReadAll(ctx context.Context, fromPosition int64, limit int) ([]RecordedEvent, error)
	// HeadPosition returns the highest global position ReadAll could return now
	// (0 if none): the end of the readable log, for measuring a reader's lag.
	HeadPosition(ctx context.Context) (int64, error)
}

// SnapshotStore keeps the latest snapshot of each stream.
type SnapshotStore interface {
	// SaveSnapshot stores s as the latest snapshot of s.StreamID, replacing any
	// earlier one, whatever its schema version.
	SaveSnapshot(ctx context.Context, s Snapshot) error
	// LoadSnapshot returns the latest snapshot of streamID if it was saved with
	// schemaVersion. It returns ErrNotFound if there is none or if the stored one has
	// another schema version (the state's shape changed; the snapshot is ignored).
	LoadSnapshot(ctx context.Context, streamID string, schemaVersion int) (Snapshot, error)
}

// CheckpointStore keeps named positions, such as how far an event handler partition
// has read. Stores are conditional, so two nodes cannot both advance one checkpoint.
type CheckpointStore interface {
	// LoadCheckpoint returns the position stored under name, 0 if none was stored.
	LoadCheckpoint(ctx context.Context, name string) (int64, error)
	// StoreCheckpoint sets checkpoint name to next if its current value is expected
	// (a checkpoint never stored counts as 0). Otherwise it stores nothing and returns
	// a *CheckpointConflictError (ErrCheckpointConflict) carrying the current value.
	StoreCheckpoint(ctx context.Context, name string, expected, next int64) error
}

// CommandIndex finds the events a command appended, which is what makes a retried
// command (same Command-Id) idempotent across restarts and owner changes.
type CommandIndex interface {
	// ReadCommandEvents returns the events of stream streamID whose metadata
	// MetaCommandID equals commandID, in version order; none if that command never
	// appended to the stream.
	ReadCommandEvents(ctx context.Context, streamID, commandID string) ([]RecordedEvent, error)
}

// Notifier tells readers promptly that events may have been appended, so that they
// need not poll tightly.
type Notifier interface {
	// SubscribeAppends returns a channel that receives a value soon after events are
	// appended, by this process or (for a shared store) any other. Signals are
	// coalesced: one value may stand for many appends, and a signal may come with no
	// new event, so the reader always reads to find out. The channel is closed when
	// ctx is done or the store is closed.
	SubscribeAppends(ctx context.Context) <-chan struct{}
}

// ExpectedVersion is what an append expects of the stream's current version: one of
// AnyVersion, NoStream, StreamExists, or Exact(n).
type ExpectedVersion int64

const (
	// AnyVersion appends whatever the stream's version, creating it if needed.
	AnyVersion ExpectedVersion = -1
	// StreamExists appends only to a stream that has at least one event.
	StreamExists ExpectedVersion = -2
	// NoStream appends only if the stream has no event yet. It equals Exact(0).
	NoStream ExpectedVersion = 0
)

// Exact expects the stream to be at exactly version v (0 meaning no stream).
func Exact(v int64) ExpectedVersion { return ExpectedVersion(v) }

// String names the expectation for errors and logs.
func (e ExpectedVersion) String() string {
	switch {
	case e == AnyVersion:
		return "any version"
	case e == StreamExists:
		return "stream exists"
	case e == NoStream:
		return "no stream"
	case e > 0:
		return "version " + itoa(int64(e))
	default:
		return "invalid expected version " + itoa(int64(e))
	}
}

// Satisfied reports whether a stream at version actual meets the expectation.
func (e ExpectedVersion) Satisfied(actual int64) bool {
	switch {
	case e == AnyVersion:
		return true
	case e == StreamExists:
		return actual > 0
	default:
		return int64(e) == actual
	}
}

// Metadata keys that Ringleader itself writes into every event's metadata.
const (
	MetaCommandID     = "command_id"
	MetaCausationID   = "causation_id"
	MetaCorrelationID = "correlation_id"
)

// Metadata keys that Ringleader writes into some events: the payload version
// (package upcast) and crypto-shredding's subject and forgotten fields (package
// shred).
const (
	MetaEventVersion = "event_version"
	MetaPIISubject   = "pii_subject"
	MetaPIIForgotten = "pii_forgotten"
)

// ReservedMetadataPrefix starts the metadata keys kept for Ringleader's future use.
const ReservedMetadataPrefix = "rl_"

// ReservedMetadataKey reports whether key is Ringleader's to write: one of the Meta*
// keys above or a key starting with ReservedMetadataPrefix. A command's metadata
// from outside (the wire's Meta- headers) may not use these keys.
func ReservedMetadataKey(key string) bool {
	switch key {
	case MetaCommandID, MetaCausationID, MetaCorrelationID, MetaEventVersion, MetaPIISubject, MetaPIIForgotten:
		return true
	}
	return strings.HasPrefix(key, ReservedMetadataPrefix)
}

// EventData is an event to be appended.
type EventData struct {
	// ID identifies the event uniquely; the store generates one when zero.
	ID uuid.UUID
	// Type names the event, e.g. "MoneyDeposited". Required.
	Type string
	// Data is the event's body: any JSON value. Required.
	Data json.RawMessage
	// Metadata is stored beside the event, holding at least MetaCommandID,
	// MetaCausationID and MetaCorrelationID when the runtime appends it. May be nil.
	Metadata map[string]string
}

// RecordedEvent is an event as stored.
type RecordedEvent struct {
	// GlobalPosition is the event's place in the global order (see AllReader).
	GlobalPosition int64
	// StreamID is the stream the event belongs to.
	StreamID string
	// StreamVersion is the event's 1-based version within its stream.
	StreamVersion int64
	// ID is the event's unique id.
	ID uuid.UUID
	// Type names the event.
	Type string
	// Data is the event's JSON body.
	Data json.RawMessage
	// Metadata is what was stored beside the event; never nil.
	Metadata map[string]string
	// CreatedAt is when the store recorded the event.
	CreatedAt time.Time
}

// Snapshot is a serialised aggregate state taken at a stream version.
type Snapshot struct {
	// StreamID is the stream the state was built from.
	StreamID string
	// StreamVersion is the version of the last event folded into the state.
	StreamVersion int64
	// SchemaVersion is the version of the state's serialised shape; a snapshot is
	// only loaded by a reader that asks for the same schema version.
	SchemaVersion int
	// Type names the state's type, for operators.
	Type string
	// Data is the serialised state: any JSON value.
	Data json.RawMessage
	// CreatedAt is when the snapshot was saved (set by the store).
	CreatedAt time.Time
}
