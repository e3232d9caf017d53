package scheduler

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ringleader-go/ringleader/placement"
)

// Partitions is the number of ring partitions schedules are spread over. It is part
// of the table's format (each row stores its partition) and will not change.
const Partitions = 64

// PartitionName is the name whose ring keys ("schedules#0" … "schedules#63") own
// the schedules.
const PartitionName = "schedules"

// PartitionOf returns the partition of schedule id.
func PartitionOf(id string) int { return placement.StreamPartition(id, Partitions) }

// PartitionKey returns the ring key of partition p.
func PartitionKey(p int) string { return placement.HandlerPartitionKey(PartitionName, p) }

// Sentinel errors. Test with errors.Is.
var (
	// ErrInvalid: a Request or Config is unusable (empty id, unknown command type,
	// a body that is not a JSON object, no due time, …).
	ErrInvalid = errors.New("scheduler: invalid")
	// ErrConflict: a schedule with the same id but different content exists. The
	// error is a *ConflictError.
	ErrConflict = errors.New("scheduler: schedule exists with different content")
	// ErrNotFound: no schedule has that id.
	ErrNotFound = errors.New("scheduler: no such schedule")
	// ErrRejected: a dispatch got a definite refusal; the schedule fails.
	ErrRejected = errors.New("scheduler: command refused")
	// ErrClosed: the Firer was closed.
	ErrClosed = errors.New("scheduler: closed")
)

// State is where a schedule stands.
type State string

// States of a schedule.
const (
	// Pending: not fired yet (not due, or due and being tried).
	Pending State = "pending"
	// Fired: the command was accepted (or was a duplicate of one that was).
	Fired State = "fired"
	// Failed: the command was refused; LastError says why.
	Failed State = "failed"
	// Cancelled: withdrawn before it fired.
	Cancelled State = "cancelled"
)

// Request asks for a command to be dispatched once, at or after DueAt.
type Request struct {
	// ID is the schedule's id and the fired command's Command-Id. Required; at most
	// 256 bytes.
	ID string
	// CommandType is the command's wire type (the last token of its NATS subject).
	// Required.
	CommandType string
	// Command is the command: a json.RawMessage or []byte holding a JSON object, or a
	// value encoded with encoding/json. Required.
	Command any
	// DueAt is when the command should run. Required; a time in the past means as
	// soon as possible. Stored with microsecond precision.
	DueAt time.Time
	// CorrelationID and CausationID are sent as the command's headers. Optional.
	CorrelationID string
	CausationID   string
}

// Schedule is a stored schedule.
type Schedule struct {
	ID          string          `json:"schedule_id"`
	Partition   int             `json:"partition"`
	CommandType string          `json:"command_type"`
	Body        json.RawMessage `json:"body"`
	// CorrelationID and CausationID are the headers the command is sent with.
	CorrelationID string    `json:"correlation_id,omitempty"`
	CausationID   string    `json:"causation_id,omitempty"`
	DueAt         time.Time `json:"due_at"`
	// NextAttemptAt is DueAt until a transient failure postpones the next try.
	NextAttemptAt time.Time `json:"next_attempt_at"`
	State         State     `json:"state"`
	// Attempts counts dispatches that got an answer or a transient error.
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error,omitempty"`
	// FiredBy is the node that marked it fired or failed.
	FiredBy   string     `json:"fired_by,omitempty"`
	FiredAt   *time.Time `json:"fired_at,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
}

// headers is the JSON of the headers column.
type headers struct {
	CorrelationID string `json:"correlation_id,omitempty"`
	CausationID   string `json:"causation_id,omitempty"`
}

// ConflictError reports a ScheduleOnce whose id is taken by a different schedule.
// Reusing an id for a different command could never work: the id is the command's
// Command-Id, so once either ran the other would be answered as its duplicate.
type ConflictError struct {
	ID       string
	Existing Schedule
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("scheduler: schedule %q exists (%s %s due %s, %s) with different content",
		e.ID, e.Existing.CommandType, e.Existing.Body, e.Existing.DueAt.Format(time.RFC3339Nano), e.Existing.State)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// RejectedError is a definite refusal of a fired command, as a Dispatch function
// returns it: the schedule fails with it and is not retried.
type RejectedError struct {
	// Code is the wire error code (rejected, invalid, unknown_command).
	Code    string
	Message string
}

func (e *RejectedError) Error() string {
	return "scheduler: command refused: " + e.Code + ": " + e.Message
}

// Is makes errors.Is(err, ErrRejected) true.
func (e *RejectedError) Is(target error) bool { return target == ErrRejected }

// maxIDLen bounds a schedule id (it travels as a NATS header).
const maxIDLen = 256

// normalize validates r and returns its body, headers and due time as stored.
func (r Request) normalize(check func(string, json.RawMessage) error) (json.RawMessage, []byte, time.Time, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...))
	}
	if r.ID == "" {
		bad("schedule id is required")
	} else if len(r.ID) > maxIDLen {
		bad("schedule id is %d bytes, at most %d", len(r.ID), maxIDLen)
	}
	if r.CommandType == "" {
		bad("command type is required")
	} else if strings.ContainsAny(r.CommandType, ".*> \t\r\n") {
		bad("command type %q is not a NATS subject token", r.CommandType)
	}
	if r.DueAt.IsZero() {
		bad("due time is required")
	}
	var body json.RawMessage
	switch c := r.Command.(type) {
	case nil:
		bad("command is required")
	case json.RawMessage:
		body = c
	case []byte:
		body = c
	default:
		b, err := json.Marshal(c)
		if err != nil {
			bad("encode command %s: %v", r.CommandType, err)
		}
		body = b
	}
	if body != nil {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
			bad("command %s is not a JSON object: %.80s", r.CommandType, body)
			body = nil
		}
	}
	if len(errs) == 0 && check != nil {
		if err := check(r.CommandType, body); err != nil {
			bad("command %s: %v", r.CommandType, err)
		}
	}
	if len(errs) > 0 {
		return nil, nil, time.Time{}, errors.Join(errs...)
	}
	h, _ := json.Marshal(headers{CorrelationID: r.CorrelationID, CausationID: r.CausationID})
	return body, h, r.DueAt.UTC().Truncate(time.Microsecond), nil
}
