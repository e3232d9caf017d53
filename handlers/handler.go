package handlers

import (
	"context"
	"errors"
)

// processHandler handles the partition's events of a page for a Handler: each in
// order (with the error policy), then one checkpoint compare-and-set to how far the
// page got, which covers the other partitions' events too. A crash before that
// compare-and-set re-delivers the page: at least once.
func (p *partition) processHandler(ctx context.Context, cur cursor, pg page) (cursor, error) {
	began := p.r.cfg.Now()
	to, n := pg.through, 0
	var stop error
	for _, e := range pg.events {
		if !p.desired() {
			stop = errNotDesired
		} else if _, err := p.attempt(ctx, e, func() error {
			ev, err := p.r.decode(e)
			if err != nil {
				return err
			}
			return p.def.handle(ctx, ev)
		}); err != nil {
			stop = err
		}
		if stop != nil {
			// Everything before e is done: handled, or another partition's.
			to = e.GlobalPosition - 1
			break
		}
		n++
	}
	if to == cur.stored {
		return cur, stop
	}
	next, err := p.commit(ctx, cur.stored, to, n, began)
	return next, errors.Join(stop, err)
}
