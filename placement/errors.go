package placement

import (
	"errors"
	"fmt"
)

var (
	// ErrNoMembers is returned by New when the member set is empty: an empty
	// ring has no owner for anything.
	ErrNoMembers = errors.New("placement: no members")

	// ErrInvalidConfig is wrapped by every error Config.Validate reports.
	ErrInvalidConfig = errors.New("placement: invalid config")

	// ErrInvalidMember is wrapped by New's errors about the member set:
	// an empty ID or an ID given twice.
	ErrInvalidMember = errors.New("placement: invalid member")

	// ErrInsufficientCapacity is wrapped by *CapacityError.
	ErrInsufficientCapacity = errors.New("placement: members cannot hold every partition")

	// ErrIncompatibleRings is returned by Moved when the two rings have
	// different partition counts, so partition numbers mean different things.
	ErrIncompatibleRings = errors.New("placement: rings have different partition counts")
)

// CapacityError is returned by New when the bounded-load rule leaves no room
// for some partition: Members × MaxPerMember < Partitions. With the default
// Load this happens only when there are more members than partitions; with
// Load close to 1 it can happen for ordinary sizes. Raise Load, or Partitions
// (a cluster-wide change), or run fewer members.
type CapacityError struct {
	Members      int     // number of members given to New
	Partitions   int     // Config.Partitions
	Load         float64 // Config.Load
	MaxPerMember int     // ceil(floor(Partitions/Members) × Load)
}

// Error implements error.
func (e *CapacityError) Error() string {
	return fmt.Sprintf("placement: %d members × at most %d partitions each (load %v) cannot hold %d partitions",
		e.Members, e.MaxPerMember, e.Load, e.Partitions)
}

// Unwrap makes errors.Is(err, ErrInsufficientCapacity) true.
func (e *CapacityError) Unwrap() error { return ErrInsufficientCapacity }
