package aggregate

import (
	"time"
)

// lruScan is how many instances from the cold end of the LRU list eviction inspects
// looking for an idle one before it settles for the coldest.
const lruScan = 64

// acquire returns the live instance of target's stream, starting one if needed, and
// marks it busy so that neither the LRU cap nor the lifespan sweeper passivates it
// while the caller uses it. Pair with release.
func (d *Dispatcher) acquire(t *Type, target Target) (*instance, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrClosed
	}
	in := d.live[target.StreamID]
	if in == nil {
		in = newInstance(d, t, target)
		d.live[target.StreamID] = in
		in.elem = d.lru.PushFront(in)
		d.wg.Add(1)
		go in.run()
		d.evictOverCapLocked()
	} else {
		d.lru.MoveToFront(in.elem)
	}
	in.busy++
	return in, nil
}

// release undoes acquire.
func (d *Dispatcher) release(in *instance) {
	d.mu.Lock()
	in.busy--
	d.mu.Unlock()
}

// evictOverCapLocked passivates instances while more than MaxLive are live: the least
// recently used idle one among the coldest lruScan, else the coldest outright (a
// hard cap: its in-progress command finishes, its waiting commands move to a new
// instance).
func (d *Dispatcher) evictOverCapLocked() {
	for len(d.live) > d.cfg.MaxLive {
		victim := d.lru.Back().Value.(*instance)
		for e, n := d.lru.Back(), 0; e != nil && n < lruScan; e, n = e.Prev(), n+1 {
			if in := e.Value.(*instance); in.busy == 0 {
				victim = in
				break
			}
		}
		d.removeLocked(victim)
	}
}

// removeLocked takes in out of the live set and asks its goroutine to stop once its
// in-progress command (if any) is done. Idempotent.
func (d *Dispatcher) removeLocked(in *instance) {
	if in.removed {
		return
	}
	in.removed = true
	delete(d.live, in.target.StreamID)
	d.lru.Remove(in.elem)
	close(in.stop)
}

// remove is removeLocked for callers not holding d.mu.
func (d *Dispatcher) remove(in *instance) {
	d.mu.Lock()
	d.removeLocked(in)
	d.mu.Unlock()
}

// setDeadline records when in may be passivated if idle (zero: never).
func (d *Dispatcher) setDeadline(in *instance, at time.Time) {
	d.mu.Lock()
	in.deadline = at
	d.mu.Unlock()
}

// sweep passivates instances whose lifespan ran out, every SweepInterval, until Close.
func (d *Dispatcher) sweep() {
	defer d.wg.Done()
	tick := time.NewTicker(d.cfg.SweepInterval)
	defer tick.Stop()
	for {
		select {
		case <-d.quit:
			return
		case <-tick.C:
			d.passivateExpired(d.cfg.Now())
		}
	}
}

// passivateExpired removes idle instances whose deadline is not after now and
// returns how many.
func (d *Dispatcher) passivateExpired(now time.Time) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, in := range d.live {
		if in.busy == 0 && expired(in.deadline, now) {
			d.removeLocked(in)
			n++
		}
	}
	return n
}

// expired reports whether a passivation deadline (zero: none) has come at now.
func expired(deadline, now time.Time) bool {
	return !deadline.IsZero() && !now.Before(deadline)
}
