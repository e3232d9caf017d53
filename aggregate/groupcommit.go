package aggregate

import (
	"context"
	"sync"
	"time"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/tracing"
	"go.opentelemetry.io/otel/trace"
)

// groupAppender batches the appends of different instances (group commit) when the
// store is an eventstore.BatchAppender. It never waits to fill a batch: an append
// that finds fewer than maxInFlight batches in flight is sent at once, alone, on the
// caller's goroutine — so an idle node appends exactly as without batching. Appends
// that arrive while maxInFlight batches are in flight queue up, and when a batch
// returns, everything queued (up to maxBatch) goes out as the next one: the busier the
// store, the bigger the batches. Each request keeps its own expected-version check;
// a wrong version comes back to its instance alone, which catches up and retries.
type groupAppender struct {
	store       Store
	batch       eventstore.BatchAppender
	maxBatch    int
	maxInFlight int
	timeout     time.Duration
	wg          *sync.WaitGroup // the dispatcher's: Close waits for batches in flight

	mu       sync.Mutex
	inFlight int
	queue    []*appendCall
}

// appendCall is one queued append and where its result goes.
type appendCall struct {
	ctx  context.Context
	req  eventstore.AppendRequest
	done chan eventstore.AppendResult // buffered: the batch never blocks delivering
	// batchSize is how many appends went out with this one; set before done.
	batchSize int
}

// newGroupAppender returns nil when store cannot append in batches or batching is off.
func newGroupAppender(store Store, cfg Config, wg *sync.WaitGroup) *groupAppender {
	b, ok := store.(eventstore.BatchAppender)
	if !ok || cfg.MaxAppendBatch <= 1 {
		return nil
	}
	return &groupAppender{
		store:       store,
		batch:       b,
		maxBatch:    cfg.MaxAppendBatch,
		maxInFlight: cfg.AppendBatchesInFlight,
		timeout:     cfg.Timeout,
		wg:          wg,
	}
}

// append appends events to streamID at version expected, alone or in a batch.
func (g *groupAppender) append(ctx context.Context, streamID string, expected int64, events []eventstore.EventData) ([]eventstore.RecordedEvent, error) {
	g.mu.Lock()
	if g.inFlight < g.maxInFlight {
		g.inFlight++
		g.mu.Unlock()
		recorded, err := g.store.Append(ctx, streamID, eventstore.Exact(expected), events)
		g.finished()
		recordBatchSize(ctx, 1)
		return recorded, err
	}
	c := &appendCall{
		ctx:  ctx,
		req:  eventstore.AppendRequest{StreamID: streamID, Expected: eventstore.Exact(expected), Events: events},
		done: make(chan eventstore.AppendResult, 1),
	}
	g.queue = append(g.queue, c)
	g.mu.Unlock()
	select {
	case r := <-c.done:
		recordBatchSize(ctx, c.batchSize)
		return r.Events, r.Err
	case <-ctx.Done():
		// The append may still go out with a batch taken before now; the caller treats
		// this like any failed append whose outcome is unknown.
		return nil, ctx.Err()
	}
}

// finished is called when a batch (or lone append) returns: its slot goes to the
// queued appends, if any, as the next batch.
func (g *groupAppender) finished() {
	g.mu.Lock()
	var next []*appendCall
	for len(g.queue) > 0 && len(next) < g.maxBatch {
		c := g.queue[0]
		g.queue[0] = nil
		g.queue = g.queue[1:]
		if err := c.ctx.Err(); err != nil {
			c.done <- eventstore.AppendResult{Err: err} // its caller gave up: do not append
			continue
		}
		next = append(next, c)
	}
	if len(g.queue) == 0 {
		g.queue = nil // let the backing array go
	}
	if len(next) == 0 {
		g.inFlight--
		g.mu.Unlock()
		return
	}
	g.wg.Add(1) // this goroutine is counted until it returns, so the count is positive
	g.mu.Unlock()
	go g.run(next)
}

// run sends one batch and delivers its results.
func (g *groupAppender) run(calls []*appendCall) {
	defer g.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	if len(calls) == 1 {
		c := calls[0]
		// One call: its own context, and the single-stream statement.
		recorded, err := g.store.Append(c.ctx, c.req.StreamID, c.req.Expected, c.req.Events)
		c.batchSize = 1
		c.done <- eventstore.AppendResult{Events: recorded, Err: err}
	} else {
		reqs := make([]eventstore.AppendRequest, len(calls))
		for i, c := range calls {
			reqs[i] = c.req
		}
		for i, r := range g.batch.AppendMany(ctx, reqs) {
			calls[i].batchSize = len(calls)
			calls[i].done <- r
		}
	}
	cancel()
	g.finished()
}

// recordBatchSize puts the size of the group commit an append went out in on the
// append's span, if it is traced.
func recordBatchSize(ctx context.Context, n int) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(tracing.AttrBatchSize.Int(n))
	}
}
