package aggregate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/ringleader-go/ringleader/eventstore"
)

// load rehydrates the instance: the latest snapshot of the type's schema version (if
// the type takes snapshots), then every later event.
func (in *instance) load(ctx context.Context) error {
	in.state, in.version, in.lastSnapshot = in.typ.newState(), 0, 0
	if pol := in.typ.cfg.Snapshots; pol.Every > 0 {
		snap, err := in.d.cfg.Store.LoadSnapshot(ctx, in.target.StreamID, pol.Version)
		switch {
		case errors.Is(err, eventstore.ErrNotFound):
		case err != nil:
			return storeError(ctx, "load snapshot", err)
		default:
			if err := in.restore(snap); err != nil {
				in.d.log.Warn().Err(err).Str("stream", in.target.StreamID).Msg("ignoring unreadable snapshot")
				in.state = in.typ.newState()
			} else {
				in.version, in.lastSnapshot = snap.StreamVersion, snap.StreamVersion
			}
		}
	}
	in.cmds = newCommandLog(in.d.cfg.CommandIDMemory, in.version+1)
	replayed, err := in.replay(ctx)
	if err != nil {
		in.discard()
		return err
	}
	in.loaded = true
	if k := in.d.cfg.Knobs; k != nil && k.AfterRehydrate != nil {
		k.AfterRehydrate(in.target.StreamID, in.lastSnapshot, replayed)
	}
	return nil
}

// restore decodes a snapshot into the (fresh) state.
func (in *instance) restore(snap eventstore.Snapshot) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("snapshot decoder panicked: %v", r)
		}
	}()
	return json.Unmarshal(snap.Data, in.state)
}

// catchUp applies the events appended since in.version, after losing a race.
func (in *instance) catchUp(ctx context.Context) error {
	if _, err := in.replay(ctx); err != nil {
		in.discard()
		return err
	}
	return nil
}

// replay applies every stored event after in.version and returns how many.
func (in *instance) replay(ctx context.Context) (int, error) {
	n := 0
	for e, err := range eventstore.StreamEvents(ctx, in.d.cfg.Store, in.target.StreamID, in.version+1, 0) {
		if err != nil {
			return n, storeError(ctx, "read stream", err)
		}
		v, err := in.typ.events.decode(e.Type, e.Data)
		if err != nil {
			return n, fmt.Errorf("%w: stream %q version %d: %w", ErrUnavailable, e.StreamID, e.StreamVersion, err)
		}
		if err := in.apply(v, e); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// applyRecorded decodes events just appended and applies them, returning their values.
func (in *instance) applyRecorded(recorded []eventstore.RecordedEvent) ([]any, error) {
	values := make([]any, len(recorded))
	for i, e := range recorded {
		v, err := in.typ.events.decode(e.Type, e.Data)
		if err != nil {
			return nil, err
		}
		values[i] = v
	}
	for i, e := range recorded {
		if err := in.apply(values[i], e); err != nil {
			return values, err
		}
	}
	return values, nil
}

// apply folds one event into the state, advancing the version and remembering its
// command id. A panic in Apply becomes a *PanicError.
func (in *instance) apply(v any, e eventstore.RecordedEvent) (err error) {
	if e.StreamVersion != in.version+1 {
		return fmt.Errorf("%w: stream %q: event version %d after version %d", ErrUnavailable, e.StreamID, e.StreamVersion, in.version)
	}
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{StreamID: in.target.StreamID, Where: "apply", Value: r, Stack: debug.Stack()}
		}
	}()
	in.state.Apply(v)
	in.version = e.StreamVersion
	in.cmds.record(e.Metadata[eventstore.MetaCommandID], e.StreamVersion)
	return nil
}

// maybeSnapshot saves a snapshot when the policy says one is due. Failure is logged:
// a snapshot is an optimisation.
func (in *instance) maybeSnapshot() {
	pol := in.typ.cfg.Snapshots
	if !in.loaded || !shouldSnapshot(pol, in.version, in.lastSnapshot) {
		return
	}
	data, err := json.Marshal(in.state)
	if err != nil {
		in.d.log.Warn().Err(err).Str("stream", in.target.StreamID).Msg("cannot encode snapshot")
		in.lastSnapshot = in.version // do not retry after every command
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), in.d.cfg.Timeout)
	defer cancel()
	err = in.d.cfg.Store.SaveSnapshot(ctx, eventstore.Snapshot{
		StreamID:      in.target.StreamID,
		StreamVersion: in.version,
		SchemaVersion: pol.Version,
		Type:          in.typ.name,
		Data:          data,
	})
	if err != nil {
		in.d.log.Warn().Err(err).Str("stream", in.target.StreamID).Msg("cannot save snapshot")
	}
	in.lastSnapshot = in.version
}
