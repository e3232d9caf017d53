package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader"
	"github.com/ringleader-go/ringleader/admin"
	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/cluster"
	"github.com/ringleader-go/ringleader/config"
	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore"
	"github.com/ringleader-go/ringleader/eventstore/shred"
	"github.com/ringleader-go/ringleader/handlers"
	"github.com/ringleader-go/ringleader/placement"
	"github.com/ringleader-go/ringleader/scheduler"
	"github.com/ringleader-go/ringleader/transport"
)

// Options are what Start needs.
type Options struct {
	// App is the application the node hosts. Required.
	App ringleader.App
	// Config is the validated node configuration; its App values are the
	// application's settings (config.Load with App.Settings).
	Config config.Config
	// Logger receives the node's logs.
	Logger zerolog.Logger
	// Store, if set, is used instead of opening PostgreSQL at Config.DSN (the demo's
	// in-memory fallback, tests). The node does not close a store it was given.
	Store eventstore.Store
	// KeyTable, with a Store that is not PostgreSQL, keeps the crypto-shredding data
	// keys (share one between nodes that share the Store). Nil means an in-memory
	// table of this node alone. With PostgreSQL the keys live in its pii_keys table.
	KeyTable shred.Table
	// Version is the build version gossiped to other nodes and shown in /cluster.
	Version string
	// WithoutHandlers starts the node without the application's event handlers,
	// projections and process managers, so that benchmarks can measure the command
	// path alone.
	WithoutHandlers bool
}

// Node is a running Ringleader node.
type Node struct {
	cfg     config.Config
	app     ringleader.App
	log     zerolog.Logger
	version string
	// noHandlers: Options.WithoutHandlers.
	noHandlers bool

	store      eventstore.Store // raw store wrapped in upcasting and crypto-shredding
	pg         *pgstore.Store   // the raw PostgreSQL store, nil when none (projections' SQL)
	ownsStore  bool
	router     *aggregate.Router
	dispatcher *aggregate.Dispatcher
	nc         *nats.Conn
	server     *transport.Server
	cluster    *cluster.Cluster // nil in ClusterNone mode
	metrics    *metrics
	runner     *handlers.Runner  // event handlers, projections, process managers
	client     *transport.Client // for process managers' commands
	schedules  scheduleStore     // PostgreSQL, or memory beside an in-memory event store
	firer      *scheduler.Firer  // fires this node's due schedules
	pruner     *outcomePruner    // deletes old command outcomes; nil without a retention
	// privateSchedules: the schedules are in this node's memory, so it fires them all.
	privateSchedules bool

	ring    atomic.Pointer[placement.Ring]
	members atomic.Pointer[[]placement.Member]
	// rebalance serialises passivations after ring changes.
	rebalance sync.Mutex

	admin     *admin.Server // nil when disabled
	adminAddr string
	// ready is set once the node takes commands; /healthz reports it.
	ready atomic.Bool

	shutdownOnce sync.Once
	shutdownErr  error
}

// Start brings a node up. On error everything started so far is stopped again.
func Start(ctx context.Context, opts Options) (_ *Node, err error) {
	cfg := opts.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := opts.App.Validate(); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if cfg.App, err = cfg.App.WithDefaults(opts.App.Settings...); err != nil {
		return nil, fmt.Errorf("node: app %q: %w", opts.App.Name, err)
	}
	n := &Node{
		cfg:        cfg,
		app:        opts.App,
		log:        opts.Logger.With().Str("node", cfg.NodeID).Logger(),
		version:    opts.Version,
		store:      opts.Store,
		noHandlers: opts.WithoutHandlers,
	}
	defer func() {
		if err != nil {
			_ = n.Shutdown(context.Background())
		}
	}()

	if n.store == nil {
		store, err := pgstore.Open(ctx, cfg.DSN, pgstore.WithSchema(cfg.Schema), pgstore.WithLogger(n.log))
		if err != nil {
			return nil, fmt.Errorf("node: event store: %w", err)
		}
		n.store, n.ownsStore = store, true
	}
	n.pg, _ = n.store.(*pgstore.Store)
	if n.store, err = n.transformStore(ctx, n.store, n.pg, opts.KeyTable); err != nil {
		if n.ownsStore && n.pg != nil {
			_ = n.pg.Close()
		}
		n.ownsStore = false
		return nil, err
	}
	n.router = opts.App.Router
	n.metrics = newMetrics(n, n.router.CommandTypes())

	if err := n.newScheduler(ctx); err != nil {
		return nil, err
	}
	if err := n.newRunner(ctx); err != nil {
		return nil, err
	}
	n.store = unsafeStore(n.store, n.log) // test-only switch, see unsafe.go; after newRunner so projections keep PostgreSQL
	dispatcherLog := n.log
	n.dispatcher, err = aggregate.New(aggregate.Config{
		Store:                 n.store,
		Router:                n.router,
		Logger:                &dispatcherLog,
		Timeout:               cfg.CommandTimeout,
		MaxLive:               cfg.MaxLiveAggregates,
		MaxAppendBatch:        cfg.MaxAppendBatch,
		AppendBatchesInFlight: cfg.AppendBatchesInFlight,
		StrongConsistency:     n.runner,
	})
	if err != nil {
		return nil, fmt.Errorf("node: aggregate dispatcher: %w", err)
	}

	// Until membership says otherwise this node owns everything.
	n.setMembers([]placement.Member{{ID: cfg.NodeID}})

	if err := n.startAdmin(); err != nil {
		return nil, err
	}

	secOpts, err := natsOptions(cfg)
	if err != nil {
		return nil, err
	}
	n.nc, err = nats.Connect(joinURLs(cfg.NATSURLs), append(secOpts,
		nats.Name("ringleader-"+cfg.NodeID),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			n.log.Warn().Err(err).Msg("NATS disconnected; reconnecting")
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			n.log.Info().Str("url", c.ConnectedUrlRedacted()).Msg("NATS reconnected")
		}),
		nats.ErrorHandler(n.natsError),
	)...)
	if err != nil {
		return nil, fmt.Errorf("node: connect to NATS at %s: %w", joinURLs(cfg.NATSURLs), err)
	}

	if cfg.Cluster == config.ClusterGossip {
		host, port, _ := net.SplitHostPort(cfg.GossipAddr)
		cc := cluster.Config{
			NodeID:        cfg.NodeID,
			BindAddr:      host,
			BindPort:      atoi(port),
			Seeds:         cfg.Seeds,
			SecretKey:     cfg.GossipKeyBytes(),
			SecondaryKeys: cfg.GossipKeysExtraBytes(),
			AllowedCIDRs:  cfg.GossipAllowedCIDRs,
			Label:         cfg.ClusterLabel,
			Meta:          cluster.Meta{NodeID: cfg.NodeID, AdminAddr: advertisedAdmin(n.adminAddr, cfg.AdvertiseAddr, cfg.GossipAddr), Version: n.version},
			OnChange:      n.setMembers,
			Logger:        n.log,
		}
		if cfg.AdvertiseAddr != "" {
			ahost, aport, _ := net.SplitHostPort(cfg.AdvertiseAddr)
			cc.AdvertiseAddr, cc.AdvertisePort = ahost, atoi(aport)
		}
		if n.cluster, err = cluster.Start(ctx, cc); err != nil {
			return nil, fmt.Errorf("node: cluster: %w", err)
		}
	}

	n.server, err = transport.NewServer(transport.ServerConfig{
		Conn:           n.nc,
		Prefix:         cfg.Prefix,
		NodeID:         cfg.NodeID,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		DefaultTimeout: cfg.CommandTimeout,
		LocateCommand:  n.locate,
		Executor:       n,
		Observer:       n.metrics,
		Logger:         n.log,
	})
	if err != nil {
		return nil, fmt.Errorf("node: transport: %w", err)
	}
	if err := n.server.Start(); err != nil {
		return nil, fmt.Errorf("node: transport: %w", err)
	}
	if err := n.serveRing(); err != nil {
		return nil, fmt.Errorf("node: serve the ring: %w", err)
	}
	n.announceRing(n.ring.Load())
	n.client = transport.NewClient(n.nc, transport.WithPrefix(cfg.Prefix))
	// The runner lives until Shutdown, not until the start-up context ends.
	if err := n.runner.Start(context.WithoutCancel(ctx)); err != nil {
		return nil, fmt.Errorf("node: handlers: %w", err)
	}
	if n.firer != nil {
		if err := n.firer.Start(context.WithoutCancel(ctx)); err != nil {
			return nil, fmt.Errorf("node: scheduler: %w", err)
		}
	}
	if cfg.OutcomeRetention > 0 {
		n.pruner = newOutcomePruner(n.store, cfg.OutcomeRetention, pruneInterval(cfg.OutcomeRetention), n.ownsKey(outcomeRetentionKey), n.log)
		n.pruner.start()
	}
	n.ready.Store(true)
	n.log.Info().Str("app", n.app.Name).Str("prefix", cfg.Prefix).Str("cluster", cfg.Cluster).Str("admin", n.adminAddr).
		Str("version", n.version).Msg("node started")
	return n, nil
}

// ID returns the node's id.
func (n *Node) ID() string { return n.cfg.NodeID }

// AdminAddr returns the admin listener's actual address ("" when disabled).
func (n *Node) AdminAddr() string { return n.adminAddr }

// Ring returns the current ring.
func (n *Node) Ring() *placement.Ring { return n.ring.Load() }

// Members returns the current member set.
func (n *Node) Members() []placement.Member {
	if m := n.members.Load(); m != nil {
		return *m
	}
	return nil
}

// setMembers installs a new member set and ring and passivates the aggregates this
// node no longer owns. The cluster calls it serially.
func (n *Node) setMembers(members []placement.Member) {
	if n.cfg.Cluster == config.ClusterNone {
		members = []placement.Member{{ID: n.cfg.NodeID}}
	}
	ring, err := placement.New(placement.Config{}, members)
	if err != nil {
		n.log.Error().Err(err).Int("members", len(members)).Msg("cannot build the ring; keeping the previous one")
		return
	}
	n.members.Store(&members)
	old := n.ring.Swap(ring)
	owns := func(key string) bool { return n.ownsOn(ring, key) }
	if n.runner != nil {
		n.runner.SetOwnership(owns)
	}
	if n.firer != nil {
		if n.privateSchedules {
			n.firer.SetOwnership(func(string) bool { return true })
		} else {
			n.firer.SetOwnership(owns)
		}
	}
	if n.metrics != nil {
		n.metrics.members.Set(float64(len(members)))
	}
	if old == nil {
		return
	}
	n.announceRing(ring)
	moves, err := placement.Moved(old, ring)
	if err != nil {
		n.log.Error().Err(err).Msg("cannot compare rings")
		return
	}
	ids := make([]string, len(members))
	for i, m := range members {
		ids[i] = m.ID
	}
	n.log.Info().Strs("members", ids).Int("partitions_moved", len(moves)).Str("ring", ring.Fingerprint()).Msg("membership changed")
	if n.metrics != nil {
		n.metrics.moves.Add(float64(len(moves)))
		n.metrics.moveCount.Add(int64(len(moves)))
	}
	if len(moves) > 0 && n.dispatcher != nil {
		go n.passivateMoved()
	}
}

// ownsOn reports whether ring (nil: none yet) makes this node the owner of key.
func (n *Node) ownsOn(ring *placement.Ring, key string) bool {
	if ring == nil {
		return false
	}
	owner, ok := ring.Owner(key)
	return ok && owner.ID == n.cfg.NodeID
}

// ownsKey returns a test of whether this node owns ring key key on the current ring.
func (n *Node) ownsKey(key string) func() bool {
	return func() bool { return n.ownsOn(n.ring.Load(), key) }
}

// passivateMoved stops the live aggregates whose owner is now another node, each
// after its in-progress command.
func (n *Node) passivateMoved() {
	n.rebalance.Lock()
	defer n.rebalance.Unlock()
	ring := n.ring.Load()
	stopped := 0
	for _, stream := range n.dispatcher.LiveStreams() {
		owner, ok := ring.Owner(stream)
		if !ok || owner.ID == n.cfg.NodeID {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.CommandTimeout)
		if err := n.dispatcher.Passivate(ctx, stream); err != nil {
			n.log.Warn().Err(err).Str("stream", stream).Msg("passivating a moved aggregate took too long")
		}
		cancel()
		stopped++
	}
	if stopped > 0 {
		n.log.Info().Int("aggregates", stopped).Msg("passivated aggregates now owned elsewhere")
	}
}

// Shutdown stops the node gracefully: no new commands, in-flight ones finish (within
// ctx), then the cluster is left and everything closed. It is idempotent.
func (n *Node) Shutdown(ctx context.Context) error {
	n.shutdownOnce.Do(func() {
		n.ready.Store(false)
		var errs []error
		if n.firer != nil {
			// No new firings; one in flight is abandoned and fired again by the
			// partition's next owner (its Command-Id makes that harmless).
			_ = n.firer.Close()
		}
		if n.pruner != nil {
			n.pruner.close()
		}
		if n.server != nil {
			if err := n.server.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("transport: %w", err))
			}
		}
		if n.cluster != nil {
			// A leave nobody acknowledged (the others stopped too) is not a failure of
			// this node: they will declare it dead instead.
			if err := n.cluster.Close(); err != nil {
				n.log.Warn().Err(err).Msg("leaving the cluster")
			}
		}
		if n.runner != nil {
			_ = n.runner.Close()
		}
		if n.dispatcher != nil {
			_ = n.dispatcher.Close()
		}
		if n.nc != nil {
			if err := n.nc.Drain(); err != nil {
				n.nc.Close()
			}
		}
		if n.admin != nil {
			actx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = n.admin.Shutdown(actx)
			cancel()
		}
		if n.ownsStore && n.store != nil {
			_ = n.store.Close()
		}
		n.shutdownErr = errors.Join(errs...)
		n.log.Info().Err(n.shutdownErr).Msg("node stopped")
	})
	return n.shutdownErr
}

// registry returns the node's Prometheus registry.
func (n *Node) registry() *prometheus.Registry { return n.metrics.registry }
