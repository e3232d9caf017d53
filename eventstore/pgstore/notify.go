package pgstore

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
)

// notifier fans "events were appended" out to subscribers: this process's own appends
// at once, and other processes' through PostgreSQL LISTEN/NOTIFY. Its goroutines start
// lazily: the sender on the first append that owes a NOTIFY, the listener on the first
// subscription.
//
// Other processes are told at most once per interval. The first append after
// such a spell carries the NOTIFY in its own transaction (carry), so a busy store
// sends no transactions of its own for it; appends that finish before the next carrier
// are owed a NOTIFY, which the sender sends on its own shortly after the interval if
// no append has carried one by then.
type notifier struct {
	pool    *pgxpool.Pool
	channel string
	origin  string // this notifier's NOTIFY payload: its own echoes are ignored
	log     zerolog.Logger
	every   time.Duration // at most one NOTIFY per this interval

	ctx    context.Context // cancelled by close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	owedSignal chan struct{} // capacity 1: appends are owed a NOTIFY

	mu          sync.Mutex
	closed      bool
	sending     bool // the sender goroutine runs
	listening   bool // the listener goroutine runs
	subscribers map[chan struct{}]struct{}
	lastClaim   time.Time // when the last NOTIFY was claimed by an append or the sender
	finished    int64     // appends that finished without carrying a NOTIFY
	announced   int64     // of those, how many a NOTIFY has covered
}

func newNotifier(pool *pgxpool.Pool, channel string, every time.Duration, log zerolog.Logger) *notifier {
	ctx, cancel := context.WithCancel(context.Background())
	return &notifier{
		pool:        pool,
		channel:     channel,
		origin:      uuid.NewString(),
		log:         log,
		every:       every,
		ctx:         ctx,
		cancel:      cancel,
		owedSignal:  make(chan struct{}, 1),
		subscribers: make(map[chan struct{}]struct{}),
	}
}

// DefaultNotifyInterval spaces a store's NOTIFYs: appends in between share one. It
// bounds the extra work on PostgreSQL under heavy appending (NOTIFYs serialise at
// commit) to 200 a second, and adds at most this much (plus notifyGrace) to the time
// another process takes to notice new events; after a quiet spell the first append is
// announced at once. This process's own subscribers are woken at the append, without
// waiting.
const DefaultNotifyInterval = 5 * time.Millisecond

// notifyGrace is how much longer than the interval the sender waits before it
// sends an owed NOTIFY in a transaction of its own: under steady appending the next
// append usually carries it first.
const notifyGrace = time.Millisecond

// notifyCarrySQL is the statement an append's transaction carries to announce itself
// and the appends owed before it ($1 channel, $2 origin).
const notifyCarrySQL = `SELECT pg_notify($1, $2)`

// carry is called before an append's transaction. It reports whether the transaction
// should carry a NOTIFY (notifyCarrySQL with the channel and origin), which it does
// when none was claimed for the interval; ticket is passed back to appended.
func (n *notifier) carry() (ticket int64, ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed || time.Since(n.lastClaim) < n.every {
		return 0, false
	}
	n.lastClaim = time.Now()
	// Every append finished by now committed before this one will: its NOTIFY,
	// delivered at this one's commit, covers them.
	return n.finished, true
}

// appended is called after every successful append: it wakes local subscribers and,
// unless the append carried a NOTIFY (carried, with the ticket carry gave it), owes
// other processes one.
func (n *notifier) appended(ticket int64, carried bool) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.wakeLocked()
	if carried {
		n.announced = max(n.announced, ticket)
	} else {
		n.finished++
	}
	owed := n.finished > n.announced
	if owed && !n.sending {
		n.sending = true
		n.wg.Add(1)
		go n.send()
	}
	n.mu.Unlock()
	if owed {
		select {
		case n.owedSignal <- struct{}{}:
		default:
		}
	}
}

// send issues the NOTIFYs no append carried, each in a transaction of its own that does
// not wait for its commit record to reach disk (a lost notification costs only
// latency), at most one per interval.
func (n *notifier) send() {
	defer n.wg.Done()
	// The payload names this process, whose own subscribers were woken at the
	// append already (a uuid needs no quoting).
	notify := "BEGIN; SET LOCAL synchronous_commit TO off; NOTIFY " + pgx.Identifier{n.channel}.Sanitize() + ", '" + n.origin + "'; COMMIT"
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.owedSignal:
		}
		for {
			n.mu.Lock()
			if n.finished <= n.announced {
				n.mu.Unlock()
				break // an append carried it
			}
			wait := time.Until(n.lastClaim.Add(n.every + notifyGrace))
			if wait > 0 {
				n.mu.Unlock()
				select {
				case <-n.ctx.Done():
					return
				case <-time.After(wait):
				}
				continue
			}
			n.lastClaim = time.Now()
			covers := n.finished
			n.mu.Unlock()
			// Exec without arguments uses the simple protocol, which runs the four
			// statements in one round trip.
			if _, err := n.pool.Exec(n.ctx, notify); err != nil {
				if n.ctx.Err() != nil {
					return
				}
				// Other processes will still find the events when they next read: log
				// and count these appends as told, rather than retry into an outage.
				n.log.Warn().Err(err).Str("channel", n.channel).Msg("pgstore: cannot send append notification")
			}
			n.mu.Lock()
			n.announced = max(n.announced, covers)
			n.mu.Unlock()
		}
	}
}

// subscribe registers a subscriber until ctx is done.
func (n *notifier) subscribe(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		close(ch)
		return ch
	}
	n.subscribers[ch] = struct{}{}
	if !n.listening {
		n.listening = true
		n.wg.Add(1)
		go n.listen()
	}
	n.mu.Unlock()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		select {
		case <-ctx.Done():
		case <-n.ctx.Done():
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		if _, ok := n.subscribers[ch]; ok {
			delete(n.subscribers, ch)
			close(ch)
		}
	}()
	return ch
}

// listen holds a connection that LISTENs on the channel, reconnecting with backoff.
// After every (re)connection it wakes all subscribers, since notifications sent while
// it was away are lost.
func (n *notifier) listen() {
	defer n.wg.Done()
	backoff := 50 * time.Millisecond
	for n.ctx.Err() == nil {
		err := n.listenOnce()
		if n.ctx.Err() != nil {
			return
		}
		n.log.Warn().Err(err).Dur("retry_in", backoff).Msg("pgstore: notification listener lost its connection")
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (n *notifier) listenOnce() error {
	conn, err := n.pool.Acquire(n.ctx)
	if err != nil {
		return err
	}
	// The connection is left in LISTEN state: take it out of the pool for good.
	raw := conn.Hijack()
	defer raw.Close(context.Background())
	if _, err := raw.Exec(n.ctx, "LISTEN "+pgx.Identifier{n.channel}.Sanitize()); err != nil {
		return err
	}
	n.wake()
	for {
		note, err := raw.WaitForNotification(n.ctx)
		if err != nil {
			return err
		}
		if note.Payload != n.origin {
			n.wake()
		}
	}
}

func (n *notifier) wake() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.wakeLocked()
}

// wakeLocked signals every subscriber without blocking: a full buffer already holds
// a pending signal, which is all a subscriber needs.
func (n *notifier) wakeLocked() {
	for ch := range n.subscribers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (n *notifier) isClosed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closed
}

// close stops the goroutines, waits for them and closes every subscriber's channel.
func (n *notifier) close() {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.closed = true
	n.mu.Unlock()
	n.cancel()
	n.wg.Wait()
	n.mu.Lock()
	defer n.mu.Unlock()
	for ch := range n.subscribers {
		delete(n.subscribers, ch)
		close(ch)
	}
}

// SubscribeAppends implements eventstore.Notifier.
func (s *Store) SubscribeAppends(ctx context.Context) <-chan struct{} {
	return s.notify.subscribe(ctx)
}
