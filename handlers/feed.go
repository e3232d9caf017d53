package handlers

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/ringleader-go/ringleader/eventstore"
)

// feed is a runner's one reader of the global order, shared by all its partitions.
//
// Without it every partition of every handler reads the whole of $all and throws
// away the events of other partitions: with the bank's two handlers of four
// partitions each, a node read (and decoded) every event eight times. The feed keeps
// the most recently read stretch of $all in memory; partitions near the head are
// served from it, and only one of them at a time goes to the store for more. A
// partition far behind (catching up, after a Reset) reads the store directly, as
// before, until it reaches the window.
//
// Events in the window are shared between partitions: handlers must not modify an
// event's Data or Metadata.
type feed struct {
	store    eventstore.AllReader
	capacity int // events kept (up to twice as many between trims)
	fillPage int // events read per trip to the store

	mu sync.Mutex
	// window holds every visible event with a position in [lo, hi], in order:
	// the store's watermark guarantees nothing can later commit inside that range.
	window []eventstore.RecordedEvent
	lo, hi int64
	valid  bool
	// gen counts the store's append notifications; wake is closed at the next.
	gen  int64
	wake chan struct{}
	// filling is the read extending the window now (nil if none).
	filling *trip
	// atEnd is set when the last read found the end of what was visible and the
	// window still ends there; endGen is gen when that read began.
	atEnd  bool
	endGen int64
	// epoch counts forget calls: a read begun before one must not fill the window.
	epoch int64
}

// trip is one read of the store that extends the window. Partitions that arrive
// while it is under way wait for it instead of reading the same events again.
type trip struct {
	gen   int64         // feed.gen when the read began
	epoch int64         // feed.epoch when the read began
	done  chan struct{} // closed when the read has ended
	// found: it extended the window, or the window was dropped meanwhile (either
	// way the waiters look again); set before done is closed.
	found bool
}

// Feed sizes: a window a few pages deep keeps partitions that run a little apart
// (one committing a projection page while another reads) on the shared path.
const (
	feedCapacity = 16384
	feedFillPage = 1000
)

func newFeed(store eventstore.AllReader) *feed {
	return &feed{store: store, capacity: feedCapacity, fillPage: feedFillPage, wake: make(chan struct{})}
}

// follow counts the notifications of notes until it is closed, at most one per
// interval: a notification within interval of the last counted one is counted at the
// interval's end (one count standing for all that came meanwhile), so that waking
// partitions read pages rather than an event each. interval <= 0 counts each at once.
func (f *feed) follow(notes <-chan struct{}, interval time.Duration) {
	var last time.Time
	for open := true; open; {
		if _, open = <-notes; !open {
			return
		}
		if wait := interval - time.Since(last); wait > 0 {
			time.Sleep(wait)
			// A notification that came while sleeping is covered by this wake-up.
			select {
			case _, open = <-notes:
			default:
			}
		}
		last = time.Now()
		f.mu.Lock()
		f.gen++
		close(f.wake)
		f.wake = make(chan struct{})
		f.mu.Unlock()
	}
}

// after returns a channel that is closed once an append notification newer than
// gen has arrived (at once if one has).
func (f *feed) after(gen int64) <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gen > gen {
		return closedChan
	}
	return f.wake
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// page is what a partition gets from the feed: the events it wants, in order, and
// how far it has looked. Through is at least from-1; every event between from and
// Through that is not in events was not wanted. More is false when a read of the
// store found nothing beyond Through although it began after every append the
// partition was told of when it asked: the partition may then sleep until
// after(gen) fires.
type page struct {
	events  []eventstore.RecordedEvent
	through int64
	more    bool
	gen     int64
}

// forget drops the window: the next reads go to the store. A replay calls it, so
// that it sees events as the store gives them now — the store may transform them on
// read (crypto-shredding: a subject forgotten since the window was read).
func (f *feed) forget() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.window, f.valid, f.atEnd = nil, false, false
	f.epoch++ // reads under way were transformed before: they must not refill it
}

// read returns up to limit events at position ≥ from that want accepts. About one
// event in spread is wanted (a handler with K partitions: K); a read that misses the
// window fetches about limit × spread events, so that it neither returns a short
// page nor reads much that is thrown away.
func (f *feed) read(ctx context.Context, from int64, limit, spread int, want func(eventstore.RecordedEvent) bool) (page, error) {
	f.mu.Lock()
	// Only a read begun after the appends the caller was told of can prove there
	// is nothing newer: an earlier one may have missed them.
	asked := f.gen
	for {
		switch {
		case f.valid && from >= f.lo && from <= f.hi:
			pg := f.serveLocked(from, limit, want)
			pg.more = pg.through < f.hi || !f.atEnd || f.endGen < asked
			pg.gen = f.endGen
			f.mu.Unlock()
			return pg, nil
		case f.valid && from == f.hi+1:
			// At the head of the window: extend it, or wait for whoever is.
			t := f.filling
			if t == nil {
				t = &trip{gen: f.gen, epoch: f.epoch, done: make(chan struct{})}
				f.filling = t
				f.mu.Unlock()
				evs, err := f.store.ReadAll(ctx, from, f.fillPage)
				f.mu.Lock()
				f.filling = nil
				if t.epoch != f.epoch {
					t.found = true // dropped meanwhile: everyone looks again
				} else {
					t.found = err == nil && f.extendLocked(from, evs, t.gen)
				}
				close(t.done)
				if err != nil {
					f.mu.Unlock()
					return page{through: from - 1, more: true}, err
				}
			} else {
				f.mu.Unlock()
				select {
				case <-t.done:
				case <-ctx.Done():
					return page{through: from - 1, more: true}, ctx.Err()
				}
				f.mu.Lock()
			}
			if !t.found && t.gen >= asked {
				f.mu.Unlock()
				return page{through: from - 1, gen: t.gen}, nil
			}
		default:
			// Behind the window, or ahead of it (a checkpoint another node moved),
			// or no window yet: read the store directly.
			gen, epoch := f.gen, f.epoch
			f.mu.Unlock()
			return f.readStore(ctx, from, limit, min(f.fillPage, limit*max(spread, 1)), want, gen, epoch)
		}
	}
}

// extendLocked appends a read that began at hi+1 to the window and reports whether
// it held any event. f.mu is held.
func (f *feed) extendLocked(from int64, evs []eventstore.RecordedEvent, gen int64) bool {
	f.atEnd, f.endGen = len(evs) < f.fillPage, gen
	if len(evs) == 0 {
		return false
	}
	if !f.valid || from != f.hi+1 {
		// The window was replaced meanwhile; these events are still a contiguous
		// stretch, so they become the window.
		f.window, f.lo, f.valid = nil, from, true
	}
	f.window = append(f.window, evs...)
	f.hi = evs[len(evs)-1].GlobalPosition
	if len(f.window) > 2*f.capacity {
		// Keep the newest capacity events. Trimming only at twice the capacity
		// makes the copy cost O(1) per event; copying rather than reslicing lets
		// the dropped events be collected.
		over := len(f.window) - f.capacity
		f.lo = f.window[over-1].GlobalPosition + 1
		f.window = append(make([]eventstore.RecordedEvent, 0, 2*f.capacity), f.window[over:]...)
	}
	return true
}

// serveLocked answers from the window; from is within [lo, hi]. f.mu is held.
func (f *feed) serveLocked(from int64, limit int, want func(eventstore.RecordedEvent) bool) page {
	i := sort.Search(len(f.window), func(i int) bool { return f.window[i].GlobalPosition >= from })
	return collect(f.window[i:], f.hi, limit, want)
}

// collect picks up to limit wanted events of evs, which cover up to through.
func collect(evs []eventstore.RecordedEvent, through int64, limit int, want func(eventstore.RecordedEvent) bool) page {
	pg := page{through: through}
	for _, e := range evs {
		if !want(e) {
			continue
		}
		pg.events = append(pg.events, e)
		if len(pg.events) == limit {
			pg.through = e.GlobalPosition
			break
		}
	}
	return pg
}

// readStore serves a partition outside the window straight from the store. A read
// that starts past the window's end (or when there is no window) becomes the new
// window, so partitions that follow it share it.
func (f *feed) readStore(ctx context.Context, from int64, limit, n int, want func(eventstore.RecordedEvent) bool, gen, epoch int64) (page, error) {
	evs, err := f.store.ReadAll(ctx, from, n)
	if err != nil || len(evs) == 0 {
		return page{through: from - 1, more: err != nil, gen: gen}, err
	}
	last := evs[len(evs)-1].GlobalPosition
	pg := collect(evs, last, limit, want)
	pg.more = pg.through < last || len(evs) == n
	pg.gen = gen
	f.mu.Lock()
	if (!f.valid || from > f.hi) && f.filling == nil && epoch == f.epoch {
		f.window, f.lo, f.hi, f.valid = evs, from, last, true
		f.atEnd, f.endGen = len(evs) < n, gen
	}
	f.mu.Unlock()
	return pg, nil
}
