package handlers

import (
	"context"
	"errors"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/tracing"
	"go.opentelemetry.io/otel/trace"
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
			ectx, span := p.eventSpan(ctx, e)
			defer span.End()
			return p.def.handle(ectx, ev)
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

// eventSpan starts the span of handling one event: a child of the span of the
// command that recorded it (its metadata carries the trace context), so that what a
// handler or process manager does because of the event, the commands it sends
// included, continues the command's trace; linked to the page's span.
func (p *partition) eventSpan(ctx context.Context, e eventstore.RecordedEvent) (context.Context, trace.Span) {
	page := trace.SpanFromContext(ctx)
	if !page.IsRecording() {
		return ctx, page
	}
	ectx, span := tracing.Tracer().Start(tracing.ExtractMetadata(ctx, e.Metadata), "handle "+p.def.spec.Name+" "+e.Type,
		trace.WithLinks(trace.Link{SpanContext: page.SpanContext()}))
	span.SetAttributes(tracing.AttrHandler.String(p.def.spec.Name), tracing.AttrEventType.String(e.Type),
		tracing.AttrStream.String(e.StreamID), tracing.AttrPartition.Int(p.index))
	return ectx, span
}
