package node

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader/config"
	"github.com/ringleader-go/ringleader/eventstore/memstore"
	"github.com/ringleader-go/ringleader/examples/bank"
	"github.com/ringleader-go/ringleader/internal/testwait"
	"github.com/ringleader-go/ringleader/scheduler"
	"github.com/ringleader-go/ringleader/transport"
	"github.com/ringleader-go/ringleader/transport/natstest"
)

// TestInMemoryNodeSchedules: a node on an in-memory event store keeps its
// schedules in memory and fires them all: a scheduled deposit takes effect once
// under its schedule id, and transfers racing a 1ms expiry end completed or failed
// with money conserved and no expiry left pending.
func TestInMemoryNodeSchedules(t *testing.T) {
	nc := natstest.Connect(t)
	prefix := natstest.Prefix(t)
	cfg, err := config.Load([]string{"--node-id=m1", "--nats=" + natstest.URL(), "--prefix=" + prefix, "--dsn=memory",
		"--cluster=none", "--admin-addr=off", "--transfer-timeout=1ms", "--scheduler-poll=100ms"}, func(string) string { return "" }, io.Discard, bank.App().Settings...)
	if err != nil {
		t.Fatal(err)
	}
	store := memstore.New()
	t.Cleanup(func() { _ = store.Close() })
	ctx := context.Background()
	n, err := Start(ctx, Options{App: bank.App(), Config: cfg, Logger: zerolog.Nop(), Store: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown(context.Background()) })
	if !n.privateSchedules || len(n.firer.Owned()) != scheduler.Partitions {
		t.Fatalf("private %v, owns %d partitions", n.privateSchedules, len(n.firer.Owned()))
	}

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

	if _, err := n.schedules.ScheduleOnce(ctx, scheduler.Request{ID: "gift", CommandType: "DepositMoney",
		Command: bank.DepositMoney{AccountNumber: "B", Amount: 5}, DueAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.schedules.ScheduleOnce(ctx, scheduler.Request{ID: "bad", CommandType: "NoSuchCommand",
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
	waitFor(t, 30*time.Second, func() error {
		for i := range transfers {
			s, err := n.schedules.(*scheduler.MemStore).Get(ctx, bank.ExpireScheduleID(fmt.Sprintf("t%d", i)))
			if err != nil {
				return err
			}
			if s.State == scheduler.Pending {
				return fmt.Errorf("%s pending", s.ID)
			}
		}
		if s, _ := n.schedules.(*scheduler.MemStore).Get(ctx, "gift"); s.State != scheduler.Fired {
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

// waitFor polls cond until it returns nil, failing t after total.
func waitFor(t testing.TB, total time.Duration, cond func() error) {
	t.Helper()
	testwait.For(t, total, cond)
}
