package handlers

import (
	"context"
	"errors"
	"time"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore"
)

// processProjection handles a page for a Projection. The usual path is one
// transaction for the whole page: Project every matching event, then the checkpoint
// compare-and-set to the page's last position, then commit. If any event fails, the
// transaction is rolled back and the page is redone one event per transaction, so the
// error policy applies to exactly the failing event and the events before it keep
// their effect.
func (p *partition) processProjection(ctx context.Context, cp int64, batch []eventstore.RecordedEvent) (int64, error) {
	began := p.r.cfg.Now()
	last := batch[len(batch)-1].GlobalPosition
	var matching []eventstore.RecordedEvent
	for _, e := range batch {
		if p.def.partitionOf(e.StreamID) == p.index {
			matching = append(matching, e)
		}
	}
	if len(matching) == 0 {
		return p.commit(ctx, cp, last, 0, began)
	}
	err := recovered(func() error { return p.projectTx(ctx, cp, last, matching) })
	if err == nil {
		return p.committed(cp, last, len(matching), began, nil)
	}
	if ctx.Err() != nil {
		return cp, ctx.Err()
	}
	var infra *infraError
	if errors.As(err, &infra) {
		return p.committed(cp, last, 0, began, infra.err) // follows a conflict
	}
	return p.processOneByOne(ctx, cp, batch, began)
}

// processOneByOne redoes a page with one transaction per matching event, applying the
// error policy to each.
func (p *partition) processOneByOne(ctx context.Context, cp int64, batch []eventstore.RecordedEvent, began time.Time) (int64, error) {
	cur, done, skips := cp, cp, 0
	var stop error
	for _, e := range batch {
		if p.def.partitionOf(e.StreamID) != p.index {
			done = e.GlobalPosition
			continue
		}
		if !p.desired() {
			stop = errNotDesired
			break
		}
		out, err := p.attempt(ctx, e, func() error {
			return p.projectTx(ctx, cur, e.GlobalPosition, []eventstore.RecordedEvent{e})
		})
		var conflict *eventstore.CheckpointConflictError
		if errors.As(err, &conflict) {
			return p.committed(cur, e.GlobalPosition, 0, began, err)
		}
		if err != nil {
			stop = err
			break
		}
		done = e.GlobalPosition
		if out == skipped {
			skips++
			continue
		}
		if _, err := p.committed(cur, done, 1, began, nil); err != nil {
			return cur, err
		}
		cur = done
	}
	if done == cur {
		return cur, stop
	}
	next, err := p.commit(ctx, cur, done, skips, began)
	return next, errors.Join(stop, err)
}

// projectTx projects evs and moves the checkpoint from → to in one transaction. A
// returned *infraError is not the projection's failure (no transaction, checkpoint
// conflict); any other error is (Project's error or panic, or the commit's).
func (p *partition) projectTx(ctx context.Context, from, to int64, evs []eventstore.RecordedEvent) error {
	tx, err := p.r.cfg.PG.Pool().Begin(ctx)
	if err != nil {
		return &infraError{err}
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
		defer cancel()
		_ = tx.Rollback(rctx) // a no-op after Commit
	}()
	spec, knobs := p.def.spec, p.r.cfg.Knobs
	for _, e := range evs {
		if err := p.def.proj.Project(ctx, tx, e); err != nil {
			return err
		}
		if knobs.AfterProject != nil {
			if err := knobs.AfterProject(spec.Name, p.index, e); err != nil {
				return err
			}
		}
	}
	if knobs.BeforeCommit != nil {
		knobs.BeforeCommit(spec.Name, p.index, from, to)
	}
	if err := pgstore.StoreCheckpointTx(ctx, tx, p.cpName, from, to); err != nil {
		return &infraError{err}
	}
	return tx.Commit(ctx)
}
