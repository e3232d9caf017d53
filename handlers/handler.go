package handlers

import (
	"context"
	"errors"

	"github.com/ringleader-go/ringleader/eventstore"
)

// processHandler handles a page for a Handler: each matching event in order (with
// the error policy), then one checkpoint compare-and-set to the last position
// processed, which covers the non-matching events too. A crash before that
// compare-and-set re-delivers the page: at least once.
func (p *partition) processHandler(ctx context.Context, cp int64, batch []eventstore.RecordedEvent) (int64, error) {
	began := p.r.cfg.Now()
	done, n := cp, 0
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
		_, err := p.attempt(ctx, e, func() error { return p.def.handle(ctx, e) })
		if err != nil {
			stop = err
			break
		}
		done, n = e.GlobalPosition, n+1
	}
	if done == cp {
		return cp, stop
	}
	next, err := p.commit(ctx, cp, done, n, began)
	return next, errors.Join(stop, err)
}
