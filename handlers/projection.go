package handlers

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore"
)

// processProjection handles the partition's events of a page for a Projection. The
// usual path is one transaction for all of them: Project each (or ProjectPage them
// all), then the checkpoint compare-and-set to how far the page got, then commit. If
// any event fails, the transaction is rolled back and the events are redone one per
// transaction, so the error policy applies to exactly the failing event and the
// events before it keep their effect.
func (p *partition) processProjection(ctx context.Context, cur cursor, pg page) (cursor, error) {
	began := p.r.cfg.Now()
	err := recovered(func() error { return p.projectTx(ctx, cur.stored, pg.through, pg.events) })
	if err == nil {
		return p.committed(cur.stored, pg.through, len(pg.events), began, nil)
	}
	if ctx.Err() != nil {
		return cur, ctx.Err()
	}
	var infra *infraError
	if errors.As(err, &infra) {
		return p.committed(cur.stored, pg.through, 0, began, infra.err) // follows a conflict
	}
	return p.processOneByOne(ctx, cur, pg, began)
}

// processOneByOne redoes a page with one transaction per event, applying the error
// policy to each.
func (p *partition) processOneByOne(ctx context.Context, cur cursor, pg page, began time.Time) (cursor, error) {
	stored, to, skips := cur.stored, pg.through, 0
	var stop error
	for _, e := range pg.events {
		if !p.desired() {
			stop, to = errNotDesired, e.GlobalPosition-1
			break
		}
		from := stored
		out, err := p.attempt(ctx, e, func() error {
			return p.projectTx(ctx, from, e.GlobalPosition, []eventstore.RecordedEvent{e})
		})
		var conflict *eventstore.CheckpointConflictError
		if errors.As(err, &conflict) {
			return p.committed(stored, e.GlobalPosition, 0, began, err)
		}
		if err != nil {
			stop, to = err, e.GlobalPosition-1
			break
		}
		if out == skipped {
			// Nothing stored; the next transaction's compare-and-set passes over it.
			skips++
			continue
		}
		if _, err := p.committed(stored, e.GlobalPosition, 1, began, nil); err != nil {
			return at(stored), err
		}
		stored = e.GlobalPosition
	}
	if to == stored {
		return at(stored), stop
	}
	next, err := p.commit(ctx, stored, to, skips, began)
	return next, errors.Join(stop, err)
}

// projectTx projects evs and moves the checkpoint from → to in one transaction. A
// returned *infraError is not the projection's failure (no transaction, checkpoint
// conflict); any other error is (Project's error or panic, or the commit's).
func (p *partition) projectTx(ctx context.Context, from, to int64, evs []eventstore.RecordedEvent) error {
	// Decoded before the transaction begins, so that it holds its connection only
	// for the writes.
	decoded := make([]Event, len(evs))
	for i, e := range evs {
		var err error
		if decoded[i], err = p.r.decode(e); err != nil {
			return err
		}
	}
	// The commit does not wait for its WAL record to reach disk. Rows and
	// checkpoint commit together, so a PostgreSQL crash can only lose the last few
	// milliseconds of both, and those events are projected again; in exchange a
	// projection's commits stop competing with the event store's appends for WAL
	// flushes. (One round trip: the begin query runs on the simple protocol.)
	tx, err := p.r.cfg.PG.Pool().BeginTx(ctx, pgx.TxOptions{BeginQuery: "BEGIN; SET LOCAL synchronous_commit TO off"})
	if err != nil {
		return &infraError{err}
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
		defer cancel()
		_ = tx.Rollback(rctx) // a no-op after Commit
	}()
	spec, knobs := p.def.spec, p.r.cfg.Knobs
	page := p.def.proj.ProjectPage
	if page != nil {
		if err := page(ctx, tx, decoded); err != nil {
			return err
		}
	}
	for _, e := range decoded {
		if page == nil {
			if err := p.def.proj.Project(ctx, tx, e); err != nil {
				return err
			}
		}
		if knobs.AfterProject != nil {
			if err := knobs.AfterProject(spec.Name, p.index, e.RecordedEvent); err != nil {
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
