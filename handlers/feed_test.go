package handlers

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/memstore"
	"github.com/ringleader-go/ringleader/placement"
)

// countingReader counts trips to the store.
type countingReader struct {
	eventstore.AllReader
	reads atomic.Int64
}

func (c *countingReader) ReadAll(ctx context.Context, from int64, limit int) ([]eventstore.RecordedEvent, error) {
	c.reads.Add(1)
	return c.AllReader.ReadAll(ctx, from, limit)
}

func appendEvents(t *testing.T, s eventstore.Appender, streams, perStream int, tag string) {
	t.Helper()
	for i := range perStream {
		for st := range streams {
			_, err := s.Append(context.Background(), fmt.Sprintf("%s-%d", tag, st), eventstore.AnyVersion,
				[]eventstore.EventData{{Type: "E", Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

func partitionFilter(k, i int) func(eventstore.RecordedEvent) bool {
	return func(e eventstore.RecordedEvent) bool { return placement.StreamPartition(e.StreamID, k) == i }
}

// readThrough reads a partition's events from position 1 to the end as a partition
// does (from Through+1 each time) and returns them.
func readThrough(t *testing.T, f *feed, limit int, want func(eventstore.RecordedEvent) bool) []eventstore.RecordedEvent {
	t.Helper()
	var got []eventstore.RecordedEvent
	next := int64(1)
	for {
		pg, err := f.read(context.Background(), next, limit, 4, want)
		if err != nil {
			t.Fatal(err)
		}
		if pg.through < next-1 {
			t.Fatalf("through %d went back before %d", pg.through, next-1)
		}
		for _, e := range pg.events {
			if e.GlobalPosition < next || e.GlobalPosition > pg.through {
				t.Fatalf("event at %d outside the page [%d, %d]", e.GlobalPosition, next, pg.through)
			}
		}
		got = append(got, pg.events...)
		if pg.through == next-1 {
			return got
		}
		next = pg.through + 1
	}
}

// TestFeedGivesEachPartitionExactlyItsEvents: whatever the window holds, a partition
// reading the feed sees exactly the events a direct filtered read of $all gives, in
// order, with small windows and pages so that every path (window, fill, direct read
// behind and ahead of the window) is taken.
func TestFeedGivesEachPartitionExactlyItsEvents(t *testing.T) {
	store := memstore.New()
	defer store.Close()
	appendEvents(t, store, 13, 40, "s")
	all, err := store.ReadAll(context.Background(), 1, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	const k = 4
	f := newFeed(store)
	f.capacity, f.fillPage = 50, 17
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		i := rng.IntN(k)
		want := partitionFilter(k, i)
		var expected []int64
		for _, e := range all {
			if want(e) {
				expected = append(expected, e.GlobalPosition)
			}
		}
		got := readThrough(t, f, 1+rng.IntN(9), want)
		if len(got) != len(expected) {
			t.Fatalf("round %d partition %d: %d events, want %d", round, i, len(got), len(expected))
		}
		for j := range got {
			if got[j].GlobalPosition != expected[j] {
				t.Fatalf("round %d partition %d: event %d at %d, want %d", round, i, j, got[j].GlobalPosition, expected[j])
			}
		}
	}
}

// TestFeedSharesReadsAtTheHead: partitions that keep up with appends share the trips
// to the store instead of each reading every event.
func TestFeedSharesReadsAtTheHead(t *testing.T) {
	store := memstore.New()
	defer store.Close()
	counter := &countingReader{AllReader: store}
	f := newFeed(counter)
	const k = 8
	next := make([]int64, k)
	for i := range next {
		next[i] = 1
	}
	seen := make([]int, k)
	for round := range 50 {
		appendEvents(t, store, 16, 1, fmt.Sprintf("r%d", round))
		var wg sync.WaitGroup
		for i := range k {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					pg, err := f.read(context.Background(), next[i], 100, k, partitionFilter(k, i))
					if err != nil {
						t.Error(err)
						return
					}
					seen[i] += len(pg.events)
					next[i] = pg.through + 1
					if !pg.more {
						return
					}
				}
			}()
		}
		wg.Wait()
	}
	total := 0
	for _, n := range seen {
		total += n
	}
	if total != 50*16 {
		t.Fatalf("partitions saw %d events in all, want %d", total, 50*16)
	}
	// Unshared, each partition reads each round at least once: 8 × 50 = 400
	// reads. Shared, a round costs one read with the events and one that finds
	// nothing more (the partitions here are told of no appends, so no read can
	// miss what they were told).
	if reads := counter.reads.Load(); reads > 50*2 {
		t.Fatalf("%d reads of $all for %d partitions over 50 rounds; the feed is not shared", reads, k)
	}
	t.Logf("%d reads of $all for %d partitions over 50 rounds", counter.reads.Load(), k)
}

// stallingReader reads the store at once; once armed, its next read then reports
// on entered and returns only when released, like a slow query whose snapshot was
// taken before later appends.
type stallingReader struct {
	eventstore.AllReader
	armed   atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func newStallingReader(r eventstore.AllReader) *stallingReader {
	return &stallingReader{AllReader: r, entered: make(chan struct{}), release: make(chan struct{})}
}

func (s *stallingReader) ReadAll(ctx context.Context, from int64, limit int) ([]eventstore.RecordedEvent, error) {
	evs, err := s.AllReader.ReadAll(ctx, from, limit)
	s.stall()
	return evs, err
}

// stall holds the armed read until release is closed.
func (s *stallingReader) stall() {
	if s.armed.CompareAndSwap(true, false) {
		s.entered <- struct{}{}
		<-s.release
	}
}

// waitSignalCtx is a background context that reports, on waiting, the first time
// somebody asks for its Done channel: a feed read does so only to wait for another
// partition's read of the store (its own reads of memstore never do).
type waitSignalCtx struct {
	context.Context
	once    sync.Once
	waiting chan struct{}
}

func newWaitSignalCtx() *waitSignalCtx {
	return &waitSignalCtx{Context: context.Background(), waiting: make(chan struct{})}
}

func (c *waitSignalCtx) Done() <-chan struct{} {
	c.once.Do(func() { close(c.waiting) })
	return c.Context.Done()
}

// TestFeedDoesNotSleepOnAReadOlderThanItsNews: a partition told of an append while
// another partition's read is under way must not take that read's "nothing new" as
// the answer — the read may have begun before the append.
func TestFeedDoesNotSleepOnAReadOlderThanItsNews(t *testing.T) {
	store := memstore.New()
	defer store.Close()
	appendEvents(t, store, 1, 1, "a")
	stall := newStallingReader(store)
	f := newFeed(stall)
	notes := make(chan struct{})
	go f.follow(notes, 0)
	defer close(notes)
	all := func(eventstore.RecordedEvent) bool { return true }

	first, err := f.read(context.Background(), 1, 10, 1, all)
	if err != nil || len(first.events) != 1 {
		t.Fatalf("first read: %v, %d events", err, len(first.events))
	}
	next := first.through + 1
	// A's read of what follows begins (and finds nothing) ...
	stall.armed.Store(true)
	aDone := make(chan page)
	go func() {
		pg, _ := f.read(context.Background(), next, 10, 1, all)
		aDone <- pg
	}()
	<-stall.entered
	// ... then an event is appended and notified ...
	appendEvents(t, store, 1, 1, "b")
	notes <- struct{}{}
	<-f.after(0)
	// ... and B, told of it, asks while A's read is still under way. B's read
	// can only wait for A's trip (the window ends at next-1 and A is filling it);
	// its context reports when B selects on it, i.e. waits for that trip.
	bCtx := newWaitSignalCtx()
	bDone := make(chan page)
	go func() {
		pg, _ := f.read(bCtx, next, 10, 1, all)
		bDone <- pg
	}()
	select {
	case <-bCtx.waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("B never waited for A's read under way")
	}
	f.mu.Lock()
	joined := f.filling != nil
	f.mu.Unlock()
	if !joined {
		t.Fatal("B waited, but A's read is no longer under way")
	}
	close(stall.release)
	<-aDone
	b := <-bDone
	if len(b.events) != 1 || b.events[0].StreamID != "b-0" {
		t.Fatalf("B got %d events (more=%v); want the event it was told of", len(b.events), b.more)
	}
}

// taggingReader stamps every event it reads with the tag current at the time of
// the read (as a transform on read would: crypto-shredding), then stalls like
// stallingReader.
type taggingReader struct {
	*stallingReader
	tag atomic.Value // string
}

func (r *taggingReader) ReadAll(ctx context.Context, from int64, limit int) ([]eventstore.RecordedEvent, error) {
	evs, err := r.AllReader.ReadAll(ctx, from, limit)
	for i := range evs {
		evs[i].Metadata = map[string]string{"tag": r.tag.Load().(string)}
	}
	r.stall()
	return evs, err
}

// TestFeedForgetBeatsAReadUnderWay: a read of the store begun before forget (a
// Reset) must neither be served nor fill the window afterwards — it was read, and
// transformed, before the Reset.
func TestFeedForgetBeatsAReadUnderWay(t *testing.T) {
	store := memstore.New()
	defer store.Close()
	appendEvents(t, store, 1, 1, "a")
	r := &taggingReader{stallingReader: newStallingReader(store)}
	r.tag.Store("before")
	f := newFeed(r)
	all := func(eventstore.RecordedEvent) bool { return true }
	first, err := f.read(context.Background(), 1, 10, 1, all)
	if err != nil || len(first.events) != 1 {
		t.Fatalf("first read: %v, %d events", err, len(first.events))
	}
	appendEvents(t, store, 1, 1, "b")
	r.armed.Store(true)
	done := make(chan page)
	go func() {
		pg, _ := f.read(context.Background(), first.through+1, 10, 1, all)
		done <- pg
	}()
	<-r.entered // the read of b has it, tagged "before", and is about to return
	f.forget()
	r.tag.Store("after")
	close(r.release)
	pg := <-done
	if len(pg.events) != 1 || pg.events[0].Metadata["tag"] != "after" {
		t.Fatalf("the reader got %+v; want b as read after forget", pg.events)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.window {
		if e.Metadata["tag"] != "after" {
			t.Fatalf("the window holds %s as read before forget", e.StreamID)
		}
	}
}

// TestFeedWakesAtMostOncePerReadInterval: the first notification after a quiet spell
// wakes the partitions at once; those within the interval after a wake-up are
// counted once, at its end; none is counted twice.
func TestFeedWakesAtMostOncePerReadInterval(t *testing.T) {
	store := memstore.New()
	defer store.Close()
	f := newFeed(store)
	notes := make(chan struct{}, 1) // as the stores' subscriptions: coalescing
	notify := func() {
		select {
		case notes <- struct{}{}:
		default:
		}
	}
	const interval = 400 * time.Millisecond
	done := make(chan struct{})
	go func() { defer close(done); f.follow(notes, interval) }()
	gen := func() int64 { f.mu.Lock(); defer f.mu.Unlock(); return f.gen }
	woken := func(want int64, within time.Duration) {
		t.Helper()
		select {
		case <-f.after(want - 1):
		case <-time.After(within):
			t.Fatalf("notification %d not counted within %s (count %d)", want, within, gen())
		}
	}

	notify()
	woken(1, interval/2) // after a quiet spell: at once
	for range 5 {
		notify()
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(interval / 4)
	if g := gen(); g != 1 {
		t.Fatalf("count %d a quarter interval after a wake-up, want 1: notifications within the interval wait", g)
	}
	woken(2, 5*interval) // the five, together, at the interval's end
	time.Sleep(3 * interval / 2)
	if g := gen(); g != 2 {
		t.Fatalf("count %d after the interval, want 2: the five must be counted once", g)
	}
	notify() // quiet for longer than the interval: at once again
	woken(3, interval/2)
	close(notes)
	<-done
}
