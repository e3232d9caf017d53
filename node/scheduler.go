package node

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringleader-go/ringleader/errcode"
	"github.com/ringleader-go/ringleader/handlers/process"
	"github.com/ringleader-go/ringleader/scheduler"
	"github.com/ringleader-go/ringleader/transport"
)

// scheduleStore is what the node needs of its schedules: *scheduler.Store
// (PostgreSQL) or, on an in-memory event store, *scheduler.MemStore.
type scheduleStore interface {
	scheduler.Storage
	process.Scheduler
	Counts(ctx context.Context) (map[scheduler.State]int64, error)
}

// newScheduler opens the schedules table and creates the Firer, which fires the due
// schedules of the ring partitions this node owns through the node's NATS command
// path; Start starts it once NATS is up. On an in-memory event store the schedules
// are in memory too, private to this node, which therefore fires all of them.
func (n *Node) newScheduler(ctx context.Context) error {
	opts := []scheduler.Option{
		scheduler.WithCheck(func(commandType string, body json.RawMessage) error {
			_, err := n.router.Decode(commandType, body)
			return err
		}),
		scheduler.WithOnSchedule(func(scheduler.Schedule) {
			if n.firer != nil {
				n.firer.Wake()
			}
		}),
	}
	var err error
	if n.pg != nil {
		// The raw store: n.store may be wrapped in transforms.
		if n.schedules, err = scheduler.Open(ctx, n.pg.Pool(), "", opts...); err != nil {
			return fmt.Errorf("node: scheduler: %w", err)
		}
	} else {
		n.log.Warn().Msg("no PostgreSQL store: schedules are kept in this node's memory and lost when it stops")
		n.schedules, n.privateSchedules = scheduler.NewMemStore(nil, opts...), true
	}
	n.firer, err = scheduler.NewFirer(scheduler.FirerConfig{
		Store:           n.schedules,
		Dispatch:        n.fireSchedule,
		NodeID:          n.cfg.NodeID,
		Logger:          n.log,
		PollInterval:    n.cfg.SchedulerPoll,
		DispatchTimeout: n.cfg.CommandTimeout + time.Second,
	})
	if err != nil {
		return fmt.Errorf("node: scheduler: %w", err)
	}
	return nil
}

// fireSchedule sends a due schedule's command like any client would, with the
// schedule id as Command-Id, so the ring routes it and the aggregate deduplicates a
// second firing.
func (n *Node) fireSchedule(ctx context.Context, s scheduler.Schedule) error {
	reply, err := n.client.Send(ctx, s.CommandType, s.Body,
		transport.WithCommandID(s.ID),
		transport.WithCorrelationID(s.CorrelationID),
		transport.WithCausationID(s.CausationID))
	if err != nil {
		return err
	}
	switch code := reply.Code(); code {
	case "":
		return nil
	case errcode.Rejected, errcode.Invalid, errcode.UnknownCommand:
		return &scheduler.RejectedError{Code: code, Message: reply.Error.Message}
	default:
		return reply.Err()
	}
}

// schedulerCollector exports the schedules by state (read from the table at scrape
// time: any node may change them) and what this node's Firer did.
type schedulerCollector struct {
	n                                        *Node
	schedules, fired, failed, retried, owned *prometheus.Desc
}

func newSchedulerCollector(n *Node) *schedulerCollector {
	return &schedulerCollector{
		n:         n,
		schedules: prometheus.NewDesc("ringleader_schedules", "Schedules in the store, by state (pending, fired, failed, cancelled).", []string{"state"}, nil),
		fired:     prometheus.NewDesc("ringleader_schedules_fired_total", "Schedules this node fired (the command was accepted or a duplicate).", nil, nil),
		failed:    prometheus.NewDesc("ringleader_schedules_failed_total", "Schedules this node fired whose command was refused.", nil, nil),
		retried:   prometheus.NewDesc("ringleader_schedules_retried_total", "Dispatches of schedules that failed transiently and were postponed.", nil, nil),
		owned:     prometheus.NewDesc("ringleader_schedule_partitions_owned", "Schedule partitions this node fires.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *schedulerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.schedules, c.fired, c.failed, c.retried, c.owned} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *schedulerCollector) Collect(ch chan<- prometheus.Metric) {
	if c.n.firer == nil || c.n.schedules == nil {
		return
	}
	st := c.n.firer.Stats()
	ch <- prometheus.MustNewConstMetric(c.fired, prometheus.CounterValue, float64(st.Fired))
	ch <- prometheus.MustNewConstMetric(c.failed, prometheus.CounterValue, float64(st.Failed))
	ch <- prometheus.MustNewConstMetric(c.retried, prometheus.CounterValue, float64(st.Retried))
	ch <- prometheus.MustNewConstMetric(c.owned, prometheus.GaugeValue, float64(len(c.n.firer.Owned())))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts, err := c.n.schedules.Counts(ctx)
	if err != nil {
		return
	}
	for state, k := range counts {
		ch <- prometheus.MustNewConstMetric(c.schedules, prometheus.GaugeValue, float64(k), string(state))
	}
}
