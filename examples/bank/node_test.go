package bank_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader"
	"github.com/ringleader-go/ringleader/config"
	"github.com/ringleader-go/ringleader/eventstore/memstore"
	"github.com/ringleader-go/ringleader/examples/bank"
	"github.com/ringleader-go/ringleader/handlers"
	"github.com/ringleader-go/ringleader/handlers/process"
	"github.com/ringleader-go/ringleader/internal/testport"
	"github.com/ringleader-go/ringleader/internal/testwait"
	"github.com/ringleader-go/ringleader/node"
	"github.com/ringleader-go/ringleader/scheduler"
	"github.com/ringleader-go/ringleader/transport"
	"github.com/ringleader-go/ringleader/transport/natstest"
)

// metricValue reads one unlabelled metric from a node's admin /metrics.
func metricValue(admin, name string) (float64, error) {
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /metrics", name)
}

// TestInMemoryNodeSchedules: a bank node on an in-memory event store keeps its
// schedules in memory and fires them all: a scheduled deposit takes effect once
// under its schedule id, and transfers racing a 1ms expiry end completed or failed
// with money conserved and no expiry left pending.
func TestInMemoryNodeSchedules(t *testing.T) {
	nc := natstest.Connect(t)
	prefix := natstest.Prefix(t)
	admin := fmt.Sprintf("127.0.0.1:%d", testport.Free(t))
	app := bank.App()
	cfg, err := config.Load([]string{"--node-id=m1", "--nats=" + natstest.URL(), "--prefix=" + prefix, "--dsn=memory",
		"--cluster=none", "--admin-addr=" + admin, "--transfer-timeout=1ms", "--scheduler-poll=100ms"}, func(string) string { return "" }, io.Discard, app.Settings...)
	if err != nil {
		t.Fatal(err)
	}
	// The node's scheduler, as the node hands it to the bank's handlers.
	var (
		mu    sync.Mutex
		sched process.Scheduler
	)
	bankHandlers := app.Handlers
	app.Handlers = func(h ringleader.Host) ([]handlers.Registrant, error) {
		mu.Lock()
		sched = h.Scheduler
		mu.Unlock()
		return bankHandlers(h)
	}
	store := memstore.New()
	t.Cleanup(func() { _ = store.Close() })
	ctx := context.Background()
	n, err := node.Start(ctx, node.Options{App: app, Config: cfg, Logger: zerolog.Nop(), Store: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown(context.Background()) })
	mu.Lock()
	schedules, private := sched.(*scheduler.MemStore)
	mu.Unlock()
	if !private {
		t.Fatalf("the node's schedules are a %T, want a *scheduler.MemStore beside an in-memory store", sched)
	}
	testwait.For(t, 10*time.Second, func() error {
		owned, err := metricValue(n.AdminAddr(), "ringleader_schedule_partitions_owned")
		if err == nil && owned != scheduler.Partitions {
			err = fmt.Errorf("the node fires %v schedule partitions, want all %d", owned, scheduler.Partitions)
		}
		return err
	})

	client := transport.NewClient(nc, transport.WithPrefix(prefix))
	send := func(typ string, cmd any, id string) {
		t.Helper()
		r, err := client.Send(ctx, typ, cmd, transport.WithCommandID(id))
		if err != nil || !r.OK {
			t.Fatalf("%s: %v %+v", typ, err, r.Error)
		}
	}
	send("OpenAccount", bank.OpenAccount{AccountNumber: "A", InitialBalance: 100}, "open-A")
	send("OpenAccount", bank.OpenAccount{AccountNumber: "B", InitialBalance: 100}, "open-B")

	if _, err := schedules.ScheduleOnce(ctx, scheduler.Request{ID: "gift", CommandType: "DepositMoney",
		Command: bank.DepositMoney{AccountNumber: "B", Amount: 5}, DueAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := schedules.ScheduleOnce(ctx, scheduler.Request{ID: "bad", CommandType: "NoSuchCommand",
		Command: map[string]any{}, DueAt: time.Now()}); err == nil {
		t.Fatal("an unknown command type was scheduled")
	}
	const transfers = 20
	for i := range transfers {
		from, to := "A", "B"
		if i%2 == 1 {
			from, to = to, from
		}
		send("TransferMoney", bank.TransferMoney{TransferID: fmt.Sprintf("t%d", i), FromAccount: from, ToAccount: to, Amount: int64(10 + i)}, fmt.Sprintf("t%d", i))
	}
	testwait.For(t, 30*time.Second, func() error {
		for i := range transfers {
			s, err := schedules.Get(ctx, bank.ExpireScheduleID(fmt.Sprintf("t%d", i)))
			if err != nil {
				return err
			}
			if s.State == scheduler.Pending {
				return fmt.Errorf("%s pending", s.ID)
			}
		}
		if s, _ := schedules.Get(ctx, "gift"); s.State != scheduler.Fired {
			return fmt.Errorf("gift is %s", s.State)
		}
		events, err := bank.ReadAllEvents(ctx, store)
		if err != nil {
			return err
		}
		ended := 0
		for _, e := range events {
			if e.Type == "TransferCompleted" || e.Type == "TransferFailed" {
				ended++
			}
		}
		if ended != transfers {
			return fmt.Errorf("%d of %d transfers ended", ended, transfers)
		}
		// A transfer that expired after its withdrawal ends failed first and is refunded
		// after: wait for the refunds too.
		rows, err := bank.ReplayBalances(events)
		if err != nil {
			return err
		}
		if sum := rows["A"].Balance + rows["B"].Balance; sum != 205 {
			return fmt.Errorf("balances sum to %d, want 205: refunds still in flight", sum)
		}
		return nil
	})
	events, err := bank.ReadAllEvents(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := bank.ReplayBalances(events)
	if err != nil {
		t.Fatal(err)
	}
	if rows["A"].Balance+rows["B"].Balance != 205 {
		t.Fatalf("balances %+v: money not conserved (want 205 with the gift)", rows)
	}
	gifts := 0
	for _, e := range events {
		if e.Metadata["command_id"] == "gift" {
			gifts++
		}
	}
	if gifts != 1 {
		t.Fatalf("%d events of the scheduled deposit, want 1", gifts)
	}
}
