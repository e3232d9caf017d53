package handlers

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"
)

// pgFence is the PostgreSQL Fence: a session advisory lock per partition
// (pg_try_advisory_lock(hashtextextended(schema.name, 0))), all held on one dedicated
// connection per runner. PostgreSQL releases a session's locks when the session
// ends, so a node that dies or is cut off from the database loses its partitions;
// a heartbeat notices a dead connection, and every lease taken on it is then lost.
type pgFence struct {
	connect   func(ctx context.Context) (*pgx.Conn, error)
	prefix    string // the store's schema and a dot: advisory locks are per database
	heartbeat time.Duration
	log       zerolog.Logger

	mu     sync.Mutex
	sess   *pgSession // nil until needed and after the session died
	closed bool

	stop chan struct{}
	done chan struct{}
}

// pgSession is one lock connection and the leases taken on it.
type pgSession struct {
	conn   *pgx.Conn
	lost   chan struct{}
	leases int
}

var _ Fence = (*pgFence)(nil)

// opTimeout bounds each statement on the lock connection.
const opTimeout = 5 * time.Second

func newPGFence(connConfig *pgx.ConnConfig, schema string, heartbeat time.Duration, log zerolog.Logger) *pgFence {
	f := &pgFence{
		connect:   func(ctx context.Context) (*pgx.Conn, error) { return pgx.ConnectConfig(ctx, connConfig.Copy()) },
		prefix:    schema + ".",
		heartbeat: heartbeat,
		log:       log,
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	go f.beat()
	return f
}

// TryAcquire implements Fence.
func (f *pgFence) TryAcquire(ctx context.Context, name string) (Lease, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, false, ErrClosed
	}
	if f.sess == nil {
		conn, err := f.connect(ctx)
		if err != nil {
			return nil, false, fmt.Errorf("handlers: connect lock session: %w", err)
		}
		f.sess = &pgSession{conn: conn, lost: make(chan struct{})}
	}
	qctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	var ok bool
	err := f.sess.conn.QueryRow(qctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`, f.prefix+name).Scan(&ok)
	if err != nil {
		f.killLocked(fmt.Errorf("try lock: %w", err))
		return nil, false, fmt.Errorf("handlers: try advisory lock %q: %w", name, err)
	}
	if !ok {
		return nil, false, nil
	}
	f.sess.leases++
	return &pgLease{fence: f, sess: f.sess, name: name}, true, nil
}

// killLocked ends the current session: its leases are lost. f.mu is held.
func (f *pgFence) killLocked(why error) {
	s := f.sess
	if s == nil {
		return
	}
	f.sess = nil
	if s.leases > 0 {
		f.log.Warn().Err(why).Int("leases", s.leases).Msg("handlers: lock session lost; its partitions stop")
	}
	close(s.lost)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = s.conn.Close(ctx)
}

// beat pings the session while it holds leases, so a dead connection is noticed
// within about one heartbeat.
func (f *pgFence) beat() {
	defer close(f.done)
	t := time.NewTicker(f.heartbeat)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
		}
		f.mu.Lock()
		if f.sess != nil && f.sess.leases > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), max(f.heartbeat, time.Second))
			if err := f.sess.conn.Ping(ctx); err != nil {
				f.killLocked(fmt.Errorf("heartbeat: %w", err))
			}
			cancel()
		}
		f.mu.Unlock()
	}
}

// close ends the session (PostgreSQL drops its locks) and the heartbeat.
func (f *pgFence) close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	close(f.stop)
	f.killLocked(ErrClosed)
	f.mu.Unlock()
	<-f.done
}

type pgLease struct {
	fence *pgFence
	sess  *pgSession
	name  string
	once  sync.Once
}

// Lost implements Lease.
func (l *pgLease) Lost() <-chan struct{} { return l.sess.lost }

// Release implements Lease: unlocks if the session is still alive.
func (l *pgLease) Release() {
	l.once.Do(func() {
		f := l.fence
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.sess != l.sess {
			return // the session died: PostgreSQL released the lock with it
		}
		l.sess.leases--
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if _, err := l.sess.conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, f.prefix+l.name); err != nil {
			f.killLocked(fmt.Errorf("unlock: %w", err))
		}
	})
}
