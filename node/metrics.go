package node

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel/trace"

	"github.com/ringleader-go/ringleader/handlers"
)

// metrics are the node's Prometheus metrics, in a registry of its own (no global
// state: several nodes may run in one process).
type metrics struct {
	registry  *prometheus.Registry
	commands  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	forwards  *prometheus.CounterVec
	conflicts prometheus.Counter
	members   prometheus.Gauge
	moves     prometheus.Counter
	handled   *prometheus.CounterVec
	failures  *prometheus.CounterVec
	// natsErrors counts the asynchronous errors the NATS server reports to this
	// node's connection, such as permission violations.
	natsErrors *prometheus.CounterVec
	// counts and moveCount feed /stats.
	counts    commandCounts
	moveCount atomic.Int64
	// known holds the router's command types: any other type a client names (the
	// subject is the client's choice) is counted as unknownType, so that neither
	// the metrics nor /stats grow a series per invented name.
	known map[string]bool
}

// unknownType is the type label of commands whose type the router does not know.
const unknownType = "(unknown)"

func newMetrics(n *Node, commandTypes []string) *metrics {
	m := &metrics{
		known:    make(map[string]bool, len(commandTypes)),
		registry: prometheus.NewRegistry(),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringleader_commands_total",
			Help: "Commands answered by this node (including forwarded ones), by command type and outcome code (ok on success).",
		}, []string{"type", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ringleader_command_duration_seconds",
			Help:    "Time from receiving a command to answering it, by command type.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"type"}),
		forwards: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringleader_commands_forwarded_total",
			Help: "Commands this node forwarded to their owner, by owner node.",
		}, []string{"to"}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ringleader_occ_conflicts_total",
			Help: "Commands that failed after exhausting optimistic-concurrency retries.",
		}),
		members: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ringleader_cluster_members",
			Help: "Members of the cluster as this node sees them.",
		}),
		moves: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ringleader_ring_partitions_moved_total",
			Help: "Ring partitions that changed owner on membership changes.",
		}),
	}
	m.handled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ringleader_handler_events_total",
		Help: "Events handled by handler partitions on this node.",
	}, []string{"handler"})
	m.failures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ringleader_handler_failures_total",
		Help: "Handler failures on this node, by the decision taken (retry, skip, stop).",
	}, []string{"handler", "decision"})
	m.natsErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ringleader_nats_errors_total",
		Help: "Asynchronous errors the NATS server reported to this node's connection, by kind (permission, slow_consumer, other).",
	}, []string{"kind"})
	live := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ringleader_live_aggregates",
		Help: "Aggregate instances live in this node's memory.",
	}, func() float64 {
		if n.dispatcher == nil {
			return 0
		}
		return float64(n.dispatcher.Stats().Live)
	})
	for _, t := range commandTypes {
		m.known[t] = true
	}
	m.registry.MustRegister(m.commands, m.latency, m.forwards, m.conflicts, m.members, m.moves, live,
		m.handled, m.failures, m.natsErrors, newHandlerCollector(n), newSchedulerCollector(n), newPoolCollector(n),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// CommandDone implements transport.Observer.
func (m *metrics) CommandDone(ctx context.Context, commandType, code string, forwarded bool, elapsed time.Duration) {
	if code == "" {
		code = "ok"
	}
	if !m.known[commandType] {
		commandType = unknownType
	}
	m.commands.WithLabelValues(commandType, code).Inc()
	if !forwarded { // the owner reports it too: count each command once per cluster
		m.counts.add(commandType, code)
	}
	latency := m.latency.WithLabelValues(commandType)
	// A sampled trace becomes the sample's exemplar: a slow bucket links to a trace
	// that shows where the time went (served in the OpenMetrics format).
	if sc := trace.SpanContextFromContext(ctx); sc.IsSampled() {
		if e, ok := latency.(prometheus.ExemplarObserver); ok {
			e.ObserveWithExemplar(elapsed.Seconds(), prometheus.Labels{"trace_id": sc.TraceID().String()})
			return
		}
	}
	latency.Observe(elapsed.Seconds())
}

// Handled implements handlers.Observer.
func (m *metrics) Handled(handler string, _ int, events int, _, _ int64, _ time.Duration) {
	m.handled.WithLabelValues(handler).Add(float64(events))
}

// Failed implements handlers.Observer.
func (m *metrics) Failed(f handlers.Failure, d handlers.Decision) {
	m.failures.WithLabelValues(f.Handler, decisionName(d)).Inc()
}

// StateChanged implements handlers.Observer; states are exported at scrape time.
func (m *metrics) StateChanged(string, int, handlers.State) {}

func decisionName(d handlers.Decision) string {
	switch d {
	case handlers.Retry:
		return "retry"
	case handlers.Skip:
		return "skip"
	default:
		return "stop"
	}
}

// Forwarded implements transport.Observer.
func (m *metrics) Forwarded(toNode string) { m.forwards.WithLabelValues(toNode).Inc() }

// commandCounts counts the commands a node answered, by type and outcome code, for
// /stats (the same numbers as ringleader_commands_total, without a scrape parser).
type commandCounts struct {
	mu     sync.Mutex
	counts map[string]map[string]int64 // type → code → count
}

// maxCountedTypes bounds the command types /stats tells apart: the type comes from
// the subject a client chose, so past this many the rest count as "(other)".
const maxCountedTypes = 100

func (c *commandCounts) add(commandType, code string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]map[string]int64{}
	}
	if _, seen := c.counts[commandType]; !seen && len(c.counts) >= maxCountedTypes {
		commandType = "(other)"
	}
	m := c.counts[commandType]
	if m == nil {
		m = map[string]int64{}
		c.counts[commandType] = m
	}
	m[code]++
}

func (c *commandCounts) snapshot() (byType map[string]map[string]int64, ok, failed int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	byType = make(map[string]map[string]int64, len(c.counts))
	for typ, codes := range c.counts {
		cp := make(map[string]int64, len(codes))
		for code, n := range codes {
			cp[code] = n
			if code == "ok" {
				ok += n
			} else {
				failed += n
			}
		}
		byType[typ] = cp
	}
	return byType, ok, failed
}

// poolCollector exports the event store's PostgreSQL connection pool at scrape
// time: a connection that is taken and never given back shows as acquired
// connections that do not fall when the node is idle.
type poolCollector struct {
	n    *Node
	desc *prometheus.Desc
}

func newPoolCollector(n *Node) *poolCollector {
	return &poolCollector{n: n, desc: prometheus.NewDesc("ringleader_pg_pool_connections",
		"Connections of the event store's PostgreSQL pool, by state (acquired, idle, max).", []string{"state"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector; nothing without a PostgreSQL store.
func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	if c.n.pg == nil {
		return
	}
	st := c.n.pg.Pool().Stat()
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(st.AcquiredConns()), "acquired")
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(st.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(st.MaxConns()), "max")
}
