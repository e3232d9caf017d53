package bank_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/errcode"
	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
	"github.com/ringleader-go/ringleader/examples/bank"
	"github.com/ringleader-go/ringleader/handlers/process"
	"github.com/ringleader-go/ringleader/scheduler"
)

func TestExpireTransferOnlyExpiresRequested(t *testing.T) {
	for status, wantEvents := range map[bank.TransferStatus]int{
		bank.TransferPending: 1, bank.TransferDebitDone: 0, bank.TransferDone: 0, bank.TransferFail: 0,
	} {
		tr := &bank.Transfer{ID: "t", Status: status}
		events, err := tr.Execute(bank.ExpireTransfer{TransferID: "t"})
		if err != nil || len(events) != wantEvents {
			t.Errorf("%s: events %v, err %v", status, events, err)
		}
		if wantEvents == 1 {
			if f, ok := events[0].(bank.TransferFailed); !ok || !f.Expired || f.Reason != bank.ExpiredReason {
				t.Errorf("%s: %+v", status, events[0])
			}
		}
	}
	if _, err := (&bank.Transfer{}).Execute(bank.ExpireTransfer{TransferID: "t"}); !errors.Is(err, bank.ErrTransferNotRequested) {
		t.Errorf("unknown transfer: %v", err)
	}
}

// blockingDispatcher fails the command types in block before they reach the
// aggregate, like a node that cannot be reached.
type blockingDispatcher struct {
	inner process.Dispatcher
	mu    sync.Mutex
	block map[string]bool
}

func (b *blockingDispatcher) set(types ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.block = map[string]bool{}
	for _, t := range types {
		b.block[t] = true
	}
}

func (b *blockingDispatcher) Dispatch(ctx context.Context, typ string, cmd any, o process.DispatchOptions) (process.Outcome, error) {
	b.mu.Lock()
	blocked := b.block[typ]
	b.mu.Unlock()
	if blocked {
		return process.Outcome{}, errors.New("injected: unreachable")
	}
	return b.inner.Dispatch(ctx, typ, cmd, o)
}

// fireLocally is the Firer's dispatch for a single process: the aggregate
// dispatcher, with the schedule id as Command-Id.
func fireLocally(d *aggregate.Dispatcher, r *aggregate.Router) scheduler.DispatchFunc {
	return func(ctx context.Context, s scheduler.Schedule) error {
		cmd, err := r.Decode(s.CommandType, s.Body)
		if err == nil {
			_, err = d.Dispatch(ctx, cmd, aggregate.WithCommandID(s.ID),
				aggregate.WithCorrelationID(s.CorrelationID), aggregate.WithCausationID(s.CausationID))
		}
		switch code := aggregate.CodeOf(err); {
		case err == nil:
			return nil
		case code == errcode.Rejected || code == errcode.Invalid || code == errcode.UnknownCommand:
			return &scheduler.RejectedError{Code: string(code), Message: err.Error()}
		default:
			return err
		}
	}
}

// TestTransferExpiryCompensatesAndConservesMoney: a transfer stuck before its
// withdrawal and one stuck between the withdrawal and its mark both expire (fired by
// a real Firer from PostgreSQL), the second is refunded, a completed transfer's
// expiry is cancelled, and money is conserved.
func TestTransferExpiryCompensatesAndConservesMoney(t *testing.T) {
	ctx := context.Background()
	w := newTransferWorld(t, 1)
	r := bank.NewRouter(bank.Config{})
	sched, err := scheduler.Open(ctx, pgtest.NewStore(t).Pool(), "", scheduler.WithCheck(func(typ string, body json.RawMessage) error {
		_, err := r.Decode(typ, body)
		return err
	}))
	if err != nil {
		t.Fatal(err)
	}
	blocker := &blockingDispatcher{inner: w.disp}
	const timeout = 500 * time.Millisecond
	cfg := bank.ExpiringTransferProcess(timeout)
	cfg.States, cfg.Dispatcher, cfg.Scheduler = w.state, blocker, sched
	if w.proc, err = process.New(cfg); err != nil {
		t.Fatal(err)
	}
	firer, err := scheduler.NewFirer(scheduler.FirerConfig{Store: sched, Dispatch: fireLocally(w.d, r), NodeID: "n1", PollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	firer.SetOwnership(func(string) bool { return true })
	if err := firer.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = firer.Close() })

	w.must(t, bank.OpenAccount{AccountNumber: "A", InitialBalance: 100})
	w.must(t, bank.OpenAccount{AccountNumber: "B", InitialBalance: 0})
	var from int64
	w.drive(t, &from, nil, 0)

	requested := func(id string) process.Event {
		t.Helper()
		events, err := bank.ReadAllEvents(ctx, w.store)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if e.StreamID == bank.TransferStreamPrefix+id && e.Type == "TransferRequested" {
				return decoded(t, []eventstore.RecordedEvent{e})[0]
			}
		}
		t.Fatalf("no TransferRequested for %s", id)
		return process.Event{}
	}
	waitSchedule := func(id string, want scheduler.State) {
		t.Helper()
		waitFor(t, 10*time.Second, func() error {
			s, err := sched.Get(ctx, bank.ExpireScheduleID(id))
			if err != nil {
				return err
			}
			if s.State != want {
				return fmt.Errorf("expiry of %s is %s (%s)", id, s.State, s.LastError)
			}
			return nil
		})
	}
	// stuck runs transfer id with the given command type unreachable until its
	// expiry fired, then lets the process resume.
	stuck := func(id string, amount int64, blocked string) {
		t.Helper()
		w.must(t, bank.TransferMoney{TransferID: id, FromAccount: "A", ToAccount: "B", Amount: amount})
		e := requested(id)
		blocker.set(blocked)
		if err := w.proc.Handle(ctx, e); !errors.Is(err, process.ErrDispatch) {
			t.Fatalf("%s: handling with %s unreachable: %v", id, blocked, err)
		}
		waitSchedule(id, scheduler.Fired)
		blocker.set()
		if err := w.proc.Handle(ctx, e); err != nil {
			t.Fatalf("%s: resuming: %v", id, err)
		}
		from = e.GlobalPosition + 1
		w.drive(t, &from, nil, 0)
	}
	stuck("before-withdraw", 30, "WithdrawMoney")
	stuck("after-withdraw", 40, "MarkTransferDebited")

	w.must(t, bank.TransferMoney{TransferID: "quick", FromAccount: "A", ToAccount: "B", Amount: 10})
	w.drive(t, &from, nil, 0)
	waitSchedule("quick", scheduler.Cancelled)
	// An expiry that reaches a completed transfer anyway changes nothing.
	if res, err := w.d.Dispatch(ctx, bank.ExpireTransfer{TransferID: "quick"}); err != nil || len(res.Events) != 0 {
		t.Fatalf("late expiry of a completed transfer: %+v, %v", res, err)
	}

	events, err := bank.ReadAllEvents(ctx, w.store)
	if err != nil {
		t.Fatal(err)
	}
	got := transferOutcomes(events)
	want := map[string]string{"before-withdraw": "TransferFailed", "after-withdraw": "TransferFailed", "quick": "TransferCompleted"}
	for id, typ := range want {
		if got[id] != typ {
			t.Errorf("transfer %s ended with %s, want %s", id, got[id], typ)
		}
	}
	expiries := 0
	for _, e := range events {
		if e.Type == "TransferFailed" {
			if !strings.Contains(string(e.Data), `"expired":true`) {
				t.Errorf("%s failed, not expired: %s", e.StreamID, e.Data)
			}
			if id := strings.TrimPrefix(e.StreamID, bank.TransferStreamPrefix); e.Metadata[eventstore.MetaCommandID] != bank.ExpireScheduleID(id) {
				t.Errorf("%s failed by command %s, want the schedule id", e.StreamID, e.Metadata[eventstore.MetaCommandID])
			}
			expiries++
		}
	}
	if expiries != 2 {
		t.Errorf("%d expiries recorded, want 2", expiries)
	}
	rows := balances(t, events)
	if rows["A"].Balance != 90 || rows["B"].Balance != 10 {
		t.Errorf("balances A %d, B %d; want 90, 10 (money conserved, the expired transfers refunded or never debited)", rows["A"].Balance, rows["B"].Balance)
	}
	for id := range want {
		if rec := w.state.Records(bank.TransferProcessName)[id]; rec.Status != process.Done {
			t.Errorf("process %s is %s", id, rec.Status)
		}
	}
}
