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
// lazily: the sender on the first append, the listener on the first subscription.
type notifier struct {
	pool    *pgxpool.Pool
	channel string
	origin  string // this notifier's NOTIFY payload: its own echoes are ignored
	log     zerolog.Logger

	ctx    context.Context // cancelled by close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	pending chan struct{} // capacity 1: a NOTIFY is owed to other processes

	mu          sync.Mutex
	closed      bool
	sending     bool // the sender goroutine runs
	listening   bool // the listener goroutine runs
	subscribers map[chan struct{}]struct{}
}

func newNotifier(pool *pgxpool.Pool, channel string, log zerolog.Logger) *notifier {
	ctx, cancel := context.WithCancel(context.Background())
	return &notifier{
		pool:        pool,
		channel:     channel,
		origin:      uuid.NewString(),
		log:         log,
		ctx:         ctx,
		cancel:      cancel,
		pending:     make(chan struct{}, 1),
		subscribers: make(map[chan struct{}]struct{}),
	}
}

// appended is called after every successful append: wake local subscribers and owe
// one NOTIFY (coalesced with any already owed).
func (n *notifier) appended() {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.wakeLocked()
	if !n.sending {
		n.sending = true
		n.wg.Add(1)
		go n.send()
	}
	n.mu.Unlock()
	select {
	case n.pending <- struct{}{}:
	default:
	}
}

// minNotifyInterval spaces NOTIFYs: appends in between share one. It bounds the extra
// load on PostgreSQL under heavy appending (each NOTIFY is a transaction of its own,
// and they serialise at commit) to 200 a second, and adds at most this much to the
// time another process takes to notice new events; after a quiet spell the first
// append is announced at once. This process's own subscribers are woken at the
// append, without waiting for it.
const minNotifyInterval = 5 * time.Millisecond

// send issues one NOTIFY for however many appends happened since the last one. The
// NOTIFY's transaction does not wait for its commit record to reach disk: a lost
// notification costs only latency, and waiting would double the WAL flushes of an
// append-heavy load.
func (n *notifier) send() {
	defer n.wg.Done()
	// The payload names this process, whose own subscribers were woken at the
	// append already (a uuid needs no quoting).
	notify := "BEGIN; SET LOCAL synchronous_commit TO off; NOTIFY " + pgx.Identifier{n.channel}.Sanitize() + ", '" + n.origin + "'; COMMIT"
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.pending:
		}
		// Exec without arguments uses the simple protocol, which runs the four
		// statements in one round trip.
		if _, err := n.pool.Exec(n.ctx, notify); err != nil && n.ctx.Err() == nil {
			// Other processes will still find the events when they next read; log and go on.
			n.log.Warn().Err(err).Str("channel", n.channel).Msg("pgstore: cannot send append notification")
		}
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(minNotifyInterval):
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
