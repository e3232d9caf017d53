package node

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader/eventstore"
)

// outcomeRetentionKey is the ring key whose owner prunes old command outcomes, so
// that one node does it (two for a while after a split, which is harmless).
const outcomeRetentionKey = "ringleader:outcome-retention"

// pruneInterval is how often the owner prunes: a tenth of the retention, between a
// second and an hour.
func pruneInterval(retention time.Duration) time.Duration {
	return min(max(retention/10, time.Second), time.Hour)
}

// outcomePruner deletes the command outcomes recorded more than retention ago
// (--outcome-retention), at once and then every interval, whenever owns says this
// node is the one to do it.
type outcomePruner struct {
	store     eventstore.OutcomeStore
	retention time.Duration
	interval  time.Duration
	owns      func() bool
	now       func() time.Time
	log       zerolog.Logger

	ctx    context.Context // cancelled by close: a prune in progress stops
	cancel context.CancelFunc
	done   chan struct{}
}

// newOutcomePruner returns a pruner; start starts it and close stops it.
func newOutcomePruner(store eventstore.OutcomeStore, retention, interval time.Duration, owns func() bool, log zerolog.Logger) *outcomePruner {
	ctx, cancel := context.WithCancel(context.Background())
	return &outcomePruner{store: store, retention: retention, interval: interval, owns: owns, now: time.Now,
		log: log, ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

// start starts the pruning goroutine.
func (p *outcomePruner) start() { go p.run() }

func (p *outcomePruner) run() {
	defer close(p.done)
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	for {
		p.prune()
		select {
		case <-p.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// prune deletes the outcomes older than the retention if this node is the pruner.
func (p *outcomePruner) prune() {
	if !p.owns() {
		return
	}
	before := p.now().Add(-p.retention)
	n, err := p.store.PruneOutcomes(p.ctx, before)
	switch {
	case err != nil && p.ctx.Err() == nil:
		// The next round tries again; the table only grows meanwhile.
		p.log.Warn().Err(err).Msg("pruning old command outcomes failed")
	case n > 0:
		p.log.Info().Int64("outcomes", n).Time("before", before).Msg("pruned old command outcomes")
	}
}

// close stops the pruner and waits for it.
func (p *outcomePruner) close() {
	p.cancel()
	<-p.done
}
