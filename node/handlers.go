package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringleader-go/ringleader"
	"github.com/ringleader-go/ringleader/handlers"
	"github.com/ringleader-go/ringleader/handlers/process"
	"github.com/ringleader-go/ringleader/transport"
)

// newRunner creates the event-handler runner and registers the application's
// handlers, projections (PostgreSQL only) and process managers, which dispatch their
// commands through NATS like any client.
func (n *Node) newRunner(ctx context.Context) error {
	pg := n.pg // the raw store: projections write SQL; n.store (wrapped) is what they read
	var err error
	n.runner, err = handlers.NewRunner(handlers.RunnerConfig{
		Store:    n.store,
		PG:       pg,
		NodeID:   n.cfg.NodeID,
		Logger:   n.log,
		Owns:     func(string) bool { return false }, // until the ring says otherwise
		Observer: n.metrics,
		Decode:   n.router.DecodeEvent,
		OnError:  handlerOnError,
		// 0 in the node's settings means every append: the runner's "none" is negative.
		ReadInterval: cmp.Or(n.cfg.HandlerReadInterval, -1),
	})
	if err != nil {
		return fmt.Errorf("node: handlers: %w", err)
	}
	if n.noHandlers || n.app.Handlers == nil {
		return nil
	}
	var states process.StateStore = process.NewMemStore()
	if pg != nil {
		if states, err = process.OpenPGStore(ctx, pg.Pool(), ""); err != nil {
			return fmt.Errorf("node: process state: %w", err)
		}
	}
	host := ringleader.Host{
		NodeID:        n.cfg.NodeID,
		Router:        n.router,
		Commands:      &natsDispatcher{n: n},
		ProcessStates: states,
		Settings:      n.cfg.App,
		Logger:        n.log,
	}
	if n.schedules != nil {
		host.Scheduler = n.schedules
	}
	registrants, err := appHandlers(n.app, host)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	var kept []handlers.Registrant
	for _, r := range registrants {
		if p, ok := r.(handlers.Projection); ok && pg == nil {
			n.log.Warn().Str("projection", p.Name).Msg("no PostgreSQL store: the projection is not run")
			continue
		}
		kept = append(kept, r)
	}
	if err := n.runner.Register(kept...); err != nil {
		return fmt.Errorf("node: handlers: %w", err)
	}
	return nil
}

// appHandlers calls the application's Handlers function, turning a panic (such as
// asking config.Values for an undeclared setting) into an error.
func appHandlers(app ringleader.App, host ringleader.Host) (rs []handlers.Registrant, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("app %q: Handlers panicked: %v", app.Name, p)
		}
	}()
	if rs, err = app.Handlers(host); err != nil {
		return nil, fmt.Errorf("app %q: handlers: %w", app.Name, err)
	}
	return rs, nil
}

// handlerOnError stops a partition on a refusal a process cannot handle (it would
// fail the same way for ever, so stopping makes it visible in /handlers) and retries
// everything else with backoff.
func handlerOnError(f handlers.Failure) (handlers.Decision, time.Duration) {
	if errors.Is(f.Err, process.ErrRejected) {
		return handlers.Stop, 0
	}
	return handlers.DefaultOnError(f)
}

// natsDispatcher sends process managers' commands through the node's NATS command
// path, so they are routed to their owners like any other command.
type natsDispatcher struct{ n *Node }

// Dispatch implements process.Dispatcher.
func (d *natsDispatcher) Dispatch(ctx context.Context, commandType string, command any, o process.DispatchOptions) (process.Outcome, error) {
	reply, err := d.n.client.Send(ctx, commandType, command,
		transport.WithCommandID(o.CommandID),
		transport.WithCorrelationID(o.CorrelationID),
		transport.WithCausationID(o.CausationID))
	if err != nil {
		return process.Outcome{}, err
	}
	out := process.Outcome{Code: reply.Code(), Duplicate: reply.Duplicate}
	if reply.Error != nil {
		out.Message, out.Reason = reply.Error.Message, reply.Error.Reason
	}
	return out, nil
}

// handlerCollector exports each handler partition's checkpoint and lag at scrape
// time (they live in the store and may be advanced by other nodes).
type handlerCollector struct {
	n                      *Node
	position, lag, running *prometheus.Desc
}

func newHandlerCollector(n *Node) *handlerCollector {
	labels := []string{"handler", "partition"}
	return &handlerCollector{
		n:        n,
		position: prometheus.NewDesc("ringleader_handler_checkpoint", "Global position a handler partition has processed up to.", labels, nil),
		lag:      prometheus.NewDesc("ringleader_handler_lag_events", "Events in the global order after a handler partition's checkpoint (capped).", labels, nil),
		running:  prometheus.NewDesc("ringleader_handler_running", "1 when the handler partition runs on this node.", labels, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *handlerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.position
	ch <- c.lag
	ch <- c.running
}

// Collect implements prometheus.Collector.
func (c *handlerCollector) Collect(ch chan<- prometheus.Metric) {
	if c.n.runner == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	statuses, err := c.n.runner.Status(ctx)
	if err != nil {
		return
	}
	for _, s := range statuses {
		p := fmt.Sprint(s.Partition)
		running := 0.0
		if s.State == handlers.StateRunning {
			running = 1
		}
		ch <- prometheus.MustNewConstMetric(c.position, prometheus.GaugeValue, float64(s.Position), s.Handler, p)
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(s.Lag), s.Handler, p)
		ch <- prometheus.MustNewConstMetric(c.running, prometheus.GaugeValue, running, s.Handler, p)
	}
}
