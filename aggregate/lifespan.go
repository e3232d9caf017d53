package aggregate

import (
	"fmt"
	"time"
)

// Keep is a lifespan decision: how long an instance stays live once idle. Build one
// with KeepFor, or use KeepForever or StopNow. The zero value is KeepForever.
type Keep struct {
	mode keepMode
	d    time.Duration
}

type keepMode uint8

const (
	keepForever keepMode = iota
	keepStop
	keepFor
)

var (
	// KeepForever keeps the instance live until the dispatcher's LRU cap passivates
	// it or the dispatcher closes (Commanded's :infinity).
	KeepForever = Keep{mode: keepForever}
	// StopNow stops the instance as soon as the command is answered (Commanded's
	// :stop); the next command rehydrates it.
	StopNow = Keep{mode: keepStop}
)

// KeepFor keeps the instance live for d after its last command; d <= 0 is StopNow.
func KeepFor(d time.Duration) Keep {
	if d <= 0 {
		return StopNow
	}
	return Keep{mode: keepFor, d: d}
}

// String describes the decision for logs.
func (k Keep) String() string {
	switch k.mode {
	case keepStop:
		return "stop"
	case keepFor:
		return "keep for " + k.d.String()
	default:
		return "keep forever"
	}
}

// Deadline turns the decision into what the dispatcher acts on: stop now, or the time
// after which the idle instance is passivated (the zero time meaning never). now is
// the dispatcher's clock.
func (k Keep) Deadline(now time.Time) (stop bool, at time.Time) {
	switch k.mode {
	case keepStop:
		return true, time.Time{}
	case keepFor:
		return false, now.Add(k.d)
	default:
		return false, time.Time{}
	}
}

// Lifespan decides, per aggregate type, how long an instance stays live after each
// command (Commanded's AggregateLifespan). The methods are pure and are called on the
// instance's goroutine.
type Lifespan interface {
	// AfterEvent is called with the last event a successful command recorded.
	AfterEvent(event any) Keep
	// AfterCommand is called after a successful command that recorded no event.
	AfterCommand(command any) Keep
	// AfterError is called after a command failed (rejected, conflict, expected
	// version, store error). Panics always discard the instance whatever it returns.
	AfterError(err error) Keep
}

// DefaultLifespan keeps every instance forever; the dispatcher's LRU cap bounds how
// many stay live.
type DefaultLifespan struct{}

// AfterEvent implements Lifespan.
func (DefaultLifespan) AfterEvent(any) Keep { return KeepForever }

// AfterCommand implements Lifespan.
func (DefaultLifespan) AfterCommand(any) Keep { return KeepForever }

// AfterError implements Lifespan.
func (DefaultLifespan) AfterError(error) Keep { return KeepForever }

// IdleLifespan keeps an instance for Idle after any command, then passivates it.
type IdleLifespan struct {
	// Idle is how long an unused instance stays live; <= 0 stops it after each command.
	Idle time.Duration
}

// AfterEvent implements Lifespan.
func (l IdleLifespan) AfterEvent(any) Keep { return KeepFor(l.Idle) }

// AfterCommand implements Lifespan.
func (l IdleLifespan) AfterCommand(any) Keep { return KeepFor(l.Idle) }

// AfterError implements Lifespan.
func (l IdleLifespan) AfterError(error) Keep { return KeepFor(l.Idle) }

// LifespanFuncs builds a Lifespan from functions; a nil function answers KeepForever.
type LifespanFuncs struct {
	Event   func(event any) Keep
	Command func(command any) Keep
	Error   func(err error) Keep
}

// AfterEvent implements Lifespan.
func (l LifespanFuncs) AfterEvent(e any) Keep {
	if l.Event == nil {
		return KeepForever
	}
	return l.Event(e)
}

// AfterCommand implements Lifespan.
func (l LifespanFuncs) AfterCommand(c any) Keep {
	if l.Command == nil {
		return KeepForever
	}
	return l.Command(c)
}

// AfterError implements Lifespan.
func (l LifespanFuncs) AfterError(err error) Keep {
	if l.Error == nil {
		return KeepForever
	}
	return l.Error(err)
}

// decideLifespan asks l about one command's outcome: the last event if it recorded
// any, else the command, or the error if it failed. A panic in l is reported as an
// error and the instance stops, the safe choice.
func decideLifespan(l Lifespan, command any, events []any, err error) (k Keep, perr error) {
	defer func() {
		if r := recover(); r != nil {
			k, perr = StopNow, fmt.Errorf("aggregate: lifespan panicked: %v", r)
		}
	}()
	switch {
	case err != nil:
		return l.AfterError(err), nil
	case len(events) > 0:
		return l.AfterEvent(events[len(events)-1]), nil
	default:
		return l.AfterCommand(command), nil
	}
}
