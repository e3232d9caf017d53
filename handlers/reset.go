package handlers

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore"
)

// Reset replays handler name from its start point (a projection is rebuilt from
// scratch). It pauses the handler's partitions on this node and waits for them to
// release their leases; then, in one PostgreSQL transaction, it calls the
// projection's Reset and sets every partition's checkpoint to 0; then it resumes them
// (a partition stopped by its error policy restarts too). Partitions running on other
// nodes are fenced by their checkpoint: their next compare-and-set fails (so nothing
// they project onto the emptied read model commits) and they follow the checkpoint
// back to 0; idle ones notice within RunnerConfig.PollInterval.
//
// A Current handler's start point is the head at its first run after the reset.
func (r *Runner) Reset(ctx context.Context, name string) error {
	d, err := r.definition(name)
	if err != nil {
		return err
	}
	if d.proj != nil && d.proj.Reset == nil {
		return fmt.Errorf("handlers: reset projection %q: it has no Reset function", name)
	}
	for _, p := range d.parts {
		p.pause()
	}
	defer func() {
		for _, p := range d.parts {
			p.resume()
		}
	}()
	for _, p := range d.parts {
		if err := p.waitInactive(ctx); err != nil {
			return fmt.Errorf("handlers: reset %q: %w", name, err)
		}
	}
	names := make([]string, len(d.parts))
	for i, p := range d.parts {
		names[i] = p.cpName
	}
	if r.cfg.PG != nil {
		err = pgx.BeginFunc(ctx, r.cfg.PG.Pool(), func(tx pgx.Tx) error {
			if d.proj != nil {
				if err := d.proj.Reset(ctx, tx); err != nil {
					return err
				}
			}
			// After the read model: a projection transaction holds read-model row locks
			// before it takes the checkpoint's, so this order cannot deadlock with it.
			return pgstore.ResetCheckpointsTx(ctx, tx, names...)
		})
	} else {
		err = resetCheckpoints(ctx, r.cfg.Store, names)
	}
	if err != nil {
		return fmt.Errorf("handlers: reset %q: %w", name, err)
	}
	for _, p := range d.parts {
		p.mu.Lock()
		p.position, p.lastErr = 0, ""
		p.mu.Unlock()
	}
	// A replay reads the store again: events as read now, not as they were read
	// before (a forgotten subject's personal data, say).
	r.feed.forget()
	r.log.Info().Str("handler", name).Msg("handlers: reset; replaying")
	return nil
}

// resetCheckpoints sets checkpoints to 0 with compare-and-set, for stores without
// transactions.
func resetCheckpoints(ctx context.Context, s eventstore.CheckpointStore, names []string) error {
	for _, name := range names {
		for {
			cur, err := s.LoadCheckpoint(ctx, name)
			if err != nil {
				return err
			}
			if cur == 0 {
				break
			}
			err = s.StoreCheckpoint(ctx, name, cur, 0)
			if err == nil {
				break
			}
			if !errors.Is(err, eventstore.ErrCheckpointConflict) {
				return err
			}
		}
	}
	return nil
}
