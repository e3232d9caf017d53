package node

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
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
}

func newMetrics(n *Node) *metrics {
	m := &metrics{
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
	live := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ringleader_live_aggregates",
		Help: "Aggregate instances live in this node's memory.",
	}, func() float64 {
		if n.dispatcher == nil {
			return 0
		}
		return float64(n.dispatcher.Stats().Live)
	})
	m.registry.MustRegister(m.commands, m.latency, m.forwards, m.conflicts, m.members, m.moves, live,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// CommandDone implements transport.Observer.
func (m *metrics) CommandDone(commandType, code string, forwarded bool, elapsed time.Duration) {
	if code == "" {
		code = "ok"
	}
	m.commands.WithLabelValues(commandType, code).Inc()
	m.latency.WithLabelValues(commandType).Observe(elapsed.Seconds())
}

// Forwarded implements transport.Observer.
func (m *metrics) Forwarded(toNode string) { m.forwards.WithLabelValues(toNode).Inc() }
