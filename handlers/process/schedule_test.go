package process_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
	"github.com/ringleader-go/ringleader/handlers/process"
	"github.com/ringleader-go/ringleader/scheduler"
)

// countingScheduler counts the calls reaching a real scheduler store.
type countingScheduler struct {
	*scheduler.Store
	mu       sync.Mutex
	schedule int
	cancel   int
}

func (c *countingScheduler) ScheduleOnce(ctx context.Context, r scheduler.Request) (scheduler.Schedule, error) {
	c.mu.Lock()
	c.schedule++
	c.mu.Unlock()
	return c.Store.ScheduleOnce(ctx, r)
}

func (c *countingScheduler) Cancel(ctx context.Context, id string) (bool, error) {
	c.mu.Lock()
	c.cancel++
	c.mu.Unlock()
	return c.Store.Cancel(ctx, id)
}

func newSchedulerStore(t *testing.T) *scheduler.Store {
	t.Helper()
	s, err := scheduler.Open(context.Background(), pgtest.NewStore(t).Pool(), "")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// timeoutConfig is the order process that, when an order is placed, schedules a
// Notify for an hour after the event and reserves stock, and cancels the reminder
// when the order closes.
func timeoutConfig(states process.StateStore, d process.Dispatcher, s process.Scheduler) process.Config[orderState] {
	cfg := orderConfig(states, d)
	cfg.Handle = func(st orderState, e process.Event) ([]process.Command, error) {
		id := e.Value.(string)
		switch e.Type {
		case "OrderPlaced":
			return []process.Command{
				process.ScheduleAt("timeout", e.CreatedAt.Add(time.Hour), Notify{id, "timed out"}),
				process.Tagged("reserve", Reserve{id}),
			}, nil
		case "OrderClosed":
			return []process.Command{process.CancelSchedule("timeout")}, nil
		}
		return nil, nil
	}
	cfg.Outcome = func(st orderState, c process.Sent, o process.Outcome) (orderState, []process.Command, error) {
		if c.Op != "" {
			return st, nil, errors.New("Outcome called for a scheduling request")
		}
		return st, nil, nil
	}
	cfg.Scheduler = s
	return cfg
}

// TestProcessScheduleIdempotentUnderRedelivery: a process schedules a command when
// its start event arrives; the event redelivered, and a crash right after the
// schedule was made, still leave one schedule with the process's deterministic id,
// and the commands around it keep their ids. The stop event cancels it.
func TestProcessScheduleIdempotentUnderRedelivery(t *testing.T) {
	ctx := context.Background()
	store := newSchedulerStore(t)
	sched := &countingScheduler{Store: store}
	d := newFake()
	// Save 1 journals [schedule, reserve]; save 2 (after the schedule is made) crashes.
	states := &flakyStore{StateStore: process.NewMemStore(), failAt: 2}
	m, err := process.New(timeoutConfig(states, d, sched))
	if err != nil {
		t.Fatal(err)
	}
	placed := event("OrderPlaced", "o1", 10)
	placed.CreatedAt = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := m.Handle(ctx, placed); err == nil {
		t.Fatal("the crash after scheduling went unnoticed")
	}
	for range 2 { // the redelivery after the crash, then a plain duplicate delivery
		if err := m.Handle(ctx, placed); err != nil {
			t.Fatal(err)
		}
	}
	if sched.schedule != 2 {
		t.Errorf("ScheduleOnce called %d times, want 2 (the crash repeats it, the duplicate does not)", sched.schedule)
	}
	got, err := store.Get(ctx, "orders:o1:timeout")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != scheduler.Pending || !got.DueAt.Equal(placed.CreatedAt.Add(time.Hour)) || got.CommandType != "Notify" ||
		got.CorrelationID != "o1" || got.CausationID != placed.ID.String() || !strings.Contains(string(got.Body), `"timed out"`) {
		t.Errorf("schedule = %+v", got)
	}
	if c, _ := store.Counts(ctx); c[scheduler.Pending] != 1 {
		t.Errorf("counts %v, want one pending schedule", c)
	}
	if n := d.effectCount("Reserve"); n != 1 {
		t.Errorf("Reserve took effect %d times", n)
	}
	if ids := d.calls; len(ids) == 0 || !strings.HasSuffix(ids[0].Opts.CommandID, ":0") {
		t.Errorf("the reserve command's id %v does not keep sequence 0", ids)
	}

	closed := event("OrderClosed", "o1", 20)
	for range 2 {
		if err := m.Handle(ctx, closed); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := store.Get(ctx, "orders:o1:timeout"); got.State != scheduler.Cancelled {
		t.Errorf("after close the schedule is %s", got.State)
	}
	if sched.cancel != 1 {
		t.Errorf("Cancel called %d times, want 1", sched.cancel)
	}
}

// TestProcessScheduleErrors: scheduling without a Scheduler is invalid; an id
// taken by other content is a refusal; a Scheduler outage is retryable; a cancel
// of a schedule that does not exist is fine.
func TestProcessScheduleErrors(t *testing.T) {
	ctx := context.Background()
	m, err := process.New(timeoutConfig(process.NewMemStore(), newFake(), nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Handle(ctx, event("OrderPlaced", "o1", 1)); !errors.Is(err, process.ErrInvalid) {
		t.Errorf("no Scheduler: %v, want ErrInvalid", err)
	}

	store := newSchedulerStore(t)
	if _, err := store.ScheduleOnce(ctx, scheduler.Request{ID: "orders:o2:timeout", CommandType: "Other", Command: map[string]any{}, DueAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	m, _ = process.New(timeoutConfig(process.NewMemStore(), newFake(), store))
	err = m.Handle(ctx, event("OrderPlaced", "o2", 1))
	var rej *process.RejectedError
	if !errors.As(err, &rej) || !errors.Is(err, scheduler.ErrConflict) {
		t.Errorf("taken id: %v, want a *RejectedError wrapping ErrConflict", err)
	}

	m, _ = process.New(timeoutConfig(process.NewMemStore(), newFake(), down{}))
	if err := m.Handle(ctx, event("OrderPlaced", "o3", 1)); !errors.Is(err, process.ErrDispatch) {
		t.Errorf("scheduler down: %v, want ErrDispatch", err)
	}

	cfg := timeoutConfig(process.NewMemStore(), newFake(), store)
	cfg.Handle = func(orderState, process.Event) ([]process.Command, error) {
		return []process.Command{process.CancelSchedule("never-made")}, nil
	}
	m, _ = process.New(cfg)
	if err := m.Handle(ctx, event("OrderPlaced", "o4", 1)); err != nil {
		t.Errorf("cancel of a missing schedule: %v", err)
	}
}

type down struct{}

func (down) ScheduleOnce(context.Context, scheduler.Request) (scheduler.Schedule, error) {
	return scheduler.Schedule{}, errors.New("connection refused")
}
func (down) Cancel(context.Context, string) (bool, error) {
	return false, errors.New("connection refused")
}
