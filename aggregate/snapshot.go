package aggregate

import (
	"errors"
)

// SnapshotPolicy says when an aggregate type's state is snapshotted.
type SnapshotPolicy struct {
	// Every takes a snapshot once at least Every events were recorded (or replayed)
	// since the last one. Zero takes none.
	Every int
	// Version is the schema version of the serialised state. Bump it whenever the
	// state's JSON shape changes: snapshots of other versions are then ignored and
	// the state is rebuilt from events (and snapshotted anew).
	Version int
}

func (p SnapshotPolicy) validate() error {
	var errs []error
	if p.Every < 0 {
		errs = append(errs, errors.New("snapshot Every must not be negative"))
	}
	if p.Version < 0 {
		errs = append(errs, errors.New("snapshot Version must not be negative"))
	}
	return errors.Join(errs...)
}

// shouldSnapshot reports whether a state at version, last snapshotted at
// lastSnapshot (0 if never), is due a snapshot under p.
func shouldSnapshot(p SnapshotPolicy, version, lastSnapshot int64) bool {
	return p.Every > 0 && version-lastSnapshot >= int64(p.Every)
}
