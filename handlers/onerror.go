package handlers

import (
	"fmt"
	"time"

	"github.com/ringleader-go/ringleader/eventstore"
)

// Decision is what an OnError callback tells a partition to do with a failed event.
type Decision int

const (
	// Retry handles the same event again after the returned delay.
	Retry Decision = iota
	// Skip advances past the event without its effect, and logs it.
	Skip
	// Stop stops the partition (state StateFailed, error kept in Status) before the
	// event; Runner.Reset or a restart of the partition resumes it.
	Stop
)

// String names the decision for logs.
func (d Decision) String() string {
	switch d {
	case Retry:
		return "retry"
	case Skip:
		return "skip"
	case Stop:
		return "stop"
	}
	return fmt.Sprintf("Decision(%d)", int(d))
}

// Failure describes an event whose handling failed.
type Failure struct {
	// Handler and Partition name the partition.
	Handler   string
	Partition int
	// Event is the event that failed.
	Event eventstore.RecordedEvent
	// Err is what Handle or Project returned, or a *PanicError.
	Err error
	// Attempts counts the failed attempts at this event so far, this one included
	// (1 on the first failure).
	Attempts int
}

// OnError decides what a partition does after a failure: Retry (after the returned
// delay), Skip or Stop. It is called on the partition's goroutine and should be a
// pure function of the failure.
type OnError func(Failure) (Decision, time.Duration)

// Backoff bounds of DefaultOnError.
const (
	DefaultRetryMin = 50 * time.Millisecond
	DefaultRetryMax = 10 * time.Second
)

// DefaultOnError retries for ever, waiting 50ms after the first failure and doubling
// up to 10s.
func DefaultOnError(f Failure) (Decision, time.Duration) {
	return Retry, Backoff(f.Attempts, DefaultRetryMin, DefaultRetryMax)
}

// Backoff returns lo doubled attempts-1 times, capped at hi: the delay after the
// attempts-th failure of an exponential backoff.
func Backoff(attempts int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 1; i < attempts && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

// PanicError is the error a Failure carries when Handle or Project panicked.
type PanicError struct {
	// Value is what was passed to panic.
	Value any
	// Stack is the panicking goroutine's stack.
	Stack []byte
}

// Error implements error.
func (e *PanicError) Error() string { return fmt.Sprintf("handlers: panic: %v", e.Value) }
