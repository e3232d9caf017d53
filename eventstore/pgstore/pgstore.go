package pgstore

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader/eventstore"
)

// DefaultSchema is the schema the store uses when given none.
const DefaultSchema = "ringleader"

// DefaultMaxConns is the pool size when the DSN sets no pool_max_conns.
const DefaultMaxConns = 20

// Store is the PostgreSQL event store. Create it with Open.
type Store struct {
	pool          *pgxpool.Pool
	schema        string
	channel       string // NOTIFY channel, one per schema
	maxEventBytes int
	log           zerolog.Logger

	notify *notifier

	closeTimeout time.Duration
	closeOnce    sync.Once
}

var _ eventstore.Store = (*Store)(nil)

type options struct {
	schema        string
	migrate       bool
	maxEventBytes int
	log           zerolog.Logger
	configure     func(*pgxpool.Config)
	closeTimeout  time.Duration
	notifyEvery   time.Duration
}

// DefaultCloseTimeout is how long Close waits for connections still checked out of
// the pool.
const DefaultCloseTimeout = 10 * time.Second

// Option configures Open.
type Option func(*options)

// WithSchema sets the schema holding the store's tables (default DefaultSchema). It
// is created if missing.
func WithSchema(schema string) Option { return func(o *options) { o.schema = schema } }

// WithoutMigrations makes Open skip applying migrations; the schema must then be
// current already (see Migrate).
func WithoutMigrations() Option { return func(o *options) { o.migrate = false } }

// WithMaxEventBytes sets the size limit of one event's data plus metadata (default
// eventstore.DefaultMaxEventBytes).
func WithMaxEventBytes(n int) Option { return func(o *options) { o.maxEventBytes = n } }

// WithLogger sets the logger for background work (the notification listener). The
// default discards.
func WithLogger(l zerolog.Logger) Option { return func(o *options) { o.log = l } }

// WithCloseTimeout sets how long Close waits for connections still checked out of
// the pool (default DefaultCloseTimeout) before it gives up on them.
func WithCloseTimeout(d time.Duration) Option { return func(o *options) { o.closeTimeout = d } }

// WithNotifyInterval sets how often at most the store tells other processes (other
// nodes' SubscribeAppends) that it appended, default DefaultNotifyInterval. Appends in
// between share one notification, so this is also the longest extra time another
// process may take to notice them. A shorter interval costs PostgreSQL more
// notifications under load.
func WithNotifyInterval(d time.Duration) Option { return func(o *options) { o.notifyEvery = d } }

// WithPoolConfig lets the caller adjust the pgx pool configuration (size, timeouts,
// TLS) after it is parsed from the DSN and before the pool is created.
func WithPoolConfig(f func(*pgxpool.Config)) Option { return func(o *options) { o.configure = f } }

// Open connects to PostgreSQL at dsn (a URL or key=value string, as pgx accepts;
// pool settings such as pool_max_conns may be given in it), applies migrations and
// returns a ready store. It fails with a clear error if the database cannot be
// reached.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	o := options{schema: DefaultSchema, migrate: true, maxEventBytes: eventstore.DefaultMaxEventBytes, log: zerolog.Nop(), closeTimeout: DefaultCloseTimeout, notifyEvery: DefaultNotifyInterval}
	for _, opt := range opts {
		opt(&o)
	}
	if o.schema == "" {
		return nil, fmt.Errorf("%w: empty schema name", eventstore.ErrInvalid)
	}
	if o.notifyEvery <= 0 {
		return nil, fmt.Errorf("%w: notify interval %s is not positive", eventstore.ErrInvalid, o.notifyEvery)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgstore: parse DSN: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{o.schema}.Sanitize()
	if !strings.Contains(dsn, "pool_max_conns") {
		// pgx's default (4, or the CPU count) starves a node with many aggregates
		// appending at once: every append holds a connection for a round trip.
		cfg.MaxConns = DefaultMaxConns
	}
	if _, set := cfg.ConnConfig.RuntimeParams["plan_cache_mode"]; !set {
		// The append statement's custom plans cost more to make (~0.5 ms) than to run,
		// and PostgreSQL's heuristic keeps choosing them: that halved append
		// throughput. The store's statements are all index lookups whose generic plans
		// are as good. A DSN or WithPoolConfig may still set another mode.
		cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	}
	if o.configure != nil {
		o.configure(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: create pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgstore: cannot reach PostgreSQL at %s:%d/%s: %w",
			cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	if o.migrate {
		if err := migrate(ctx, pool, o.schema); err != nil {
			pool.Close()
			return nil, err
		}
	}
	s := &Store{
		pool:          pool,
		schema:        o.schema,
		channel:       "ringleader_appends_" + o.schema,
		maxEventBytes: o.maxEventBytes,
		log:           o.log,
		closeTimeout:  o.closeTimeout,
	}
	s.notify = newNotifier(pool, s.channel, o.notifyEvery, o.log)
	return s, nil
}

// Pool returns the store's connection pool, whose search_path is the store's schema.
// Projections use it to write their rows and their checkpoint in one transaction.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Schema returns the schema holding the store's tables.
func (s *Store) Schema() string { return s.schema }

// Close stops the notification goroutines and closes the pool. It is safe to call
// more than once. A connection still checked out (a leak elsewhere) would make
// pgxpool wait for it for ever, and a node's shutdown with it: Close waits up to the
// close timeout, then logs and returns, leaving that connection to be closed when
// it is released.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.notify.close()
		closed := make(chan struct{})
		go func() { s.pool.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(s.closeTimeout):
			s.log.Error().Dur("waited", s.closeTimeout).Int32("checked_out", s.pool.Stat().AcquiredConns()).
				Msg("pgstore: close: connections are still checked out of the pool; not waiting for them")
		}
	})
	return nil
}

// wrap names the failed operation and reports a closed store as eventstore.ErrClosed.
func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if s.notify.isClosed() {
		return fmt.Errorf("pgstore: %s: %w", op, eventstore.ErrClosed)
	}
	return fmt.Errorf("pgstore: %s: %w", op, err)
}
