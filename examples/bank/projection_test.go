package bank_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
	"github.com/ringleader-go/ringleader/examples/bank"
	"github.com/ringleader-go/ringleader/handlers"
	"github.com/ringleader-go/ringleader/handlers/process"
)

func accountEvent(account string, version int64, typ string, data string) eventstore.RecordedEvent {
	return eventstore.RecordedEvent{GlobalPosition: version, StreamID: bank.AccountStreamPrefix + account, StreamVersion: version,
		ID: uuid.New(), Type: typ, Data: json.RawMessage(data), Metadata: map[string]string{}, CreatedAt: time.Now()}
}

func TestReplayBalances(t *testing.T) {
	good := []eventstore.RecordedEvent{
		accountEvent("A", 1, "AccountOpened", `{"account_number":"A","initial_balance":10}`),
		accountEvent("B", 1, "AccountOpened", `{"account_number":"B","initial_balance":0}`),
		accountEvent("A", 2, "MoneyWithdrawn", `{"account_number":"A","amount":4,"balance":6}`),
		{StreamID: "transfer-x", StreamVersion: 1, Type: "TransferRequested", Data: json.RawMessage(`{}`)},
		accountEvent("B", 2, "MoneyDeposited", `{"account_number":"B","amount":4,"balance":4}`),
		accountEvent("B", 3, "MoneyWithdrawn", `{"account_number":"B","amount":4,"balance":0}`),
		accountEvent("B", 4, "AccountClosed", `{"account_number":"B"}`),
		accountEvent("A", 3, "AccountHolderForgotten", `{"account_number":"A"}`),
	}
	rows, err := bank.ReplayBalances(good)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bank.AccountRow{"A": {Balance: 6, Status: "open", Version: 3}, "B": {Balance: 0, Status: "closed", Version: 4}}
	if d := bank.DiffAccounts(rows, want); len(d) != 0 {
		t.Fatal(d)
	}
	for name, bad := range map[string][]eventstore.RecordedEvent{
		"gap":      {good[0], accountEvent("A", 3, "MoneyDeposited", `{"account_number":"A","amount":1,"balance":11}`)},
		"unopened": {accountEvent("C", 1, "MoneyDeposited", `{"account_number":"C","amount":1,"balance":1}`)},
		"negative": {good[0], accountEvent("A", 2, "MoneyWithdrawn", `{"account_number":"A","amount":11,"balance":-1}`)},
		"balance":  {good[0], accountEvent("A", 2, "MoneyDeposited", `{"account_number":"A","amount":1,"balance":99}`)},
	} {
		if _, err := bank.ReplayBalances(bad); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestDiffAccounts(t *testing.T) {
	a := map[string]bank.AccountRow{"x": {Balance: 1}, "y": {Balance: 2}}
	b := map[string]bank.AccountRow{"x": {Balance: 1}, "z": {Balance: 2}}
	if d := bank.DiffAccounts(a, b); len(d) != 2 || !strings.HasPrefix(d[0], "y:") || !strings.HasPrefix(d[1], "z:") {
		t.Fatal(d)
	}
}

// ProjectAccount applied twice changes nothing; an event past a gap fails.
func TestProjectAccountIsIdempotent(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL skipped in -short mode")
	}
	ctx := context.Background()
	store := pgtest.NewStore(t)
	d := newBank(t, store, aggregate.Config{})
	for _, c := range []any{bank.OpenAccount{AccountNumber: "A", InitialBalance: 5}, bank.DepositMoney{AccountNumber: "A", Amount: 7},
		bank.WithdrawMoney{AccountNumber: "A", Amount: 2}, bank.OpenAccount{AccountNumber: "B"}, bank.CloseAccount{AccountNumber: "B"}} {
		if _, err := d.Dispatch(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	// The global order may lag a commit while other tests' transactions run (the
	// watermark covers the whole PostgreSQL cluster): wait for all five events.
	var raw []eventstore.RecordedEvent
	waitFor(t, 15*time.Second, func() error {
		var err error
		if raw, err = bank.ReadAllEvents(ctx, store); err == nil && len(raw) != 5 {
			err = fmt.Errorf("$all holds %d events, want 5", len(raw))
		}
		return err
	})
	inTx := func(f func(tx pgx.Tx) error) error {
		return pgx.BeginFunc(ctx, store.Pool(), f)
	}
	project := func(evs []handlers.Event) error {
		return inTx(func(tx pgx.Tx) error {
			for _, e := range evs {
				if err := bank.ProjectAccount(ctx, tx, e); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := inTx(func(tx pgx.Tx) error { return bank.SetupAccounts(ctx, tx) }); err != nil {
		t.Fatal(err)
	}
	if err := inTx(func(tx pgx.Tx) error { return bank.SetupAccounts(ctx, tx) }); err != nil {
		t.Fatal(err)
	}
	// A page at once: ProjectAccounts sends the writes in one round trip.
	projectPage := func(evs []handlers.Event) error {
		return inTx(func(tx pgx.Tx) error { return bank.ProjectAccounts(ctx, tx, evs) })
	}
	events := decoded(t, raw)
	if err := project(events); err != nil {
		t.Fatal(err)
	}
	if err := projectPage(events); err != nil {
		t.Fatal(err)
	}
	// Re-delivering a prefix (a partition resuming from an older checkpoint) too.
	if err := projectPage(events[:2]); err != nil {
		t.Fatal(err)
	}
	got, err := bank.LoadAccounts(ctx, store.Pool())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bank.AccountRow{"A": {Balance: 10, Status: "open", Version: 3}, "B": {Balance: 0, Status: "closed", Version: 2}}
	if d := bank.DiffAccounts(got, want); len(d) != 0 {
		t.Fatal(d)
	}
	gap := decoded(t, []eventstore.RecordedEvent{accountEvent("A", 5, "MoneyDeposited", `{"account_number":"A","amount":1,"balance":11}`)})[0]
	if err := projectPage(append(events[1:3:3], gap)); !errors.Is(err, bank.ErrProjectionGap) {
		t.Fatalf("a page ending past a gap: %v, want ErrProjectionGap", err)
	}
	if err := project([]handlers.Event{gap}); !errors.Is(err, bank.ErrProjectionGap) {
		t.Fatalf("gap: %v", err)
	}
	if err := inTx(func(tx pgx.Tx) error { return bank.ResetAccounts(ctx, tx) }); err != nil {
		t.Fatal(err)
	}
	if got, _ := bank.LoadAccounts(ctx, store.Pool()); len(got) != 0 {
		t.Fatalf("after reset: %v", got)
	}
}

type bankNode struct {
	store  *pgstore.Store
	d      *aggregate.Dispatcher
	runner *handlers.Runner
}

// newBankNode assembles, on one PostgreSQL store, what a node runs: the aggregate
// dispatcher (waiting on the runner for strong consistency), the bank's projection
// and transfer process on a handlers.Runner, and process state in PostgreSQL.
func newBankNode(t *testing.T) *bankNode {
	t.Helper()
	ctx := context.Background()
	store := pgtest.NewStore(t)
	r, err := handlers.NewRunner(handlers.RunnerConfig{Store: store, PG: store, NodeID: "n1", Decode: decodeEvent})
	if err != nil {
		t.Fatal(err)
	}
	router := bank.NewRouter(bank.Config{})
	d := newBank(t, store, aggregate.Config{Router: router, StrongConsistency: r})
	states, err := process.OpenPGStore(ctx, store.Pool(), store.Schema())
	if err != nil {
		t.Fatal(err)
	}
	bh, err := bank.Handlers(bank.HandlersConfig{Dispatcher: &localDispatcher{d: d, r: router}, States: states,
		OnError: func(f handlers.Failure) (handlers.Decision, time.Duration) {
			if errors.Is(f.Err, bank.ErrProjectionGap) || errors.Is(f.Err, process.ErrRejected) {
				t.Errorf("%s#%d: %v", f.Handler, f.Partition, f.Err)
				return handlers.Stop, 0
			}
			return handlers.Retry, 5 * time.Millisecond
		}})
	if err != nil {
		t.Fatal(err)
	}
	if bh.Accounts.Partitions != 4 || !bh.Accounts.Strong {
		t.Fatalf("projection spec = %+v", bh.Accounts.Spec)
	}
	if err := r.Register(bh.Registrants()...); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return &bankNode{store: store, d: d, runner: r}
}

// checkProjection waits until bank_accounts equals the replay of the store and every
// transfer has finished.
func (n *bankNode) checkProjection(t *testing.T, transfers int) map[string]bank.AccountRow {
	t.Helper()
	ctx := context.Background()
	var want map[string]bank.AccountRow
	waitFor(t, 30*time.Second, func() error {
		events, err := bank.ReadAllEvents(ctx, n.store)
		if err != nil {
			return err
		}
		if finished := finishedTransfers(events); finished != transfers {
			return fmt.Errorf("%d of %d transfers finished", finished, transfers)
		}
		if want, err = bank.ReplayBalances(events); err != nil {
			t.Fatal(err)
		}
		got, err := bank.LoadAccounts(ctx, n.store.Pool())
		if err != nil {
			return err
		}
		if d := bank.DiffAccounts(got, want); len(d) > 0 {
			return fmt.Errorf("projection differs from the store: %v", d)
		}
		return nil
	})
	return want
}

func TestProjectionEqualsReplayAndRebuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL skipped in -short mode")
	}
	ctx := context.Background()
	n := newBankNode(t)
	rng := rand.New(rand.NewPCG(5, 5))
	const accounts = 10
	var total int64
	for i := range accounts {
		bal := int64(rng.IntN(100))
		total += bal
		if _, err := n.d.Dispatch(ctx, bank.OpenAccount{AccountNumber: fmt.Sprint("acc", i), InitialBalance: bal}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n.d.Dispatch(ctx, bank.OpenAccount{AccountNumber: "shut"}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.d.Dispatch(ctx, bank.CloseAccount{AccountNumber: "shut"}); err != nil {
		t.Fatal(err)
	}
	transfers := 0
	for i := range 150 {
		from := fmt.Sprint("acc", rng.IntN(accounts))
		var cmd any
		switch k := rng.IntN(10); {
		case k < 6:
			to := fmt.Sprint("acc", rng.IntN(accounts))
			if k == 0 {
				to = "shut"
			}
			if to == from {
				continue
			}
			cmd = bank.TransferMoney{TransferID: fmt.Sprint("t", i), FromAccount: from, ToAccount: to, Amount: 1 + int64(rng.IntN(60))}
			transfers++
		case k < 8:
			amt := 1 + int64(rng.IntN(20))
			total += amt
			cmd = bank.DepositMoney{AccountNumber: from, Amount: amt}
		default:
			cmd = bank.WithdrawMoney{AccountNumber: from, Amount: 1 + int64(rng.IntN(20))}
		}
		_, err := n.d.Dispatch(ctx, cmd)
		if w, ok := cmd.(bank.WithdrawMoney); ok && err == nil {
			total -= w.Amount
		}
		if err != nil && !errors.Is(err, bank.ErrInsufficientFunds) {
			t.Fatalf("%+v: %v", cmd, err)
		}
	}
	want := n.checkProjection(t, transfers)
	var sum int64
	for _, r := range want {
		sum += r.Balance
	}
	if sum != total {
		t.Errorf("sum of balances %d, want %d (money created or lost)", sum, total)
	}

	// A strong command's effect is in the projection when it returns.
	if _, err := n.d.Dispatch(ctx, bank.DepositMoney{AccountNumber: "acc0", Amount: 1000}, aggregate.WithConsistency(aggregate.Strong)); err != nil {
		t.Fatal(err)
	}
	got, err := bank.LoadAccounts(ctx, n.store.Pool())
	if err != nil {
		t.Fatal(err)
	}
	if got["acc0"].Balance != want["acc0"].Balance+1000 {
		t.Fatalf("after a strong deposit acc0 = %+v, was %+v", got["acc0"], want["acc0"])
	}

	// A reset rebuilds the projection identically.
	if err := n.runner.Reset(ctx, bank.ProjectionName); err != nil {
		t.Fatal(err)
	}
	n.checkProjection(t, transfers)
}

// decodeEvent decodes events as a node's handlers runner does.
var decodeEvent = bank.NewRouter(bank.Config{}).DecodeEvent

// decoded returns events as the runner hands them to the projection.
func decoded(t *testing.T, events []eventstore.RecordedEvent) []handlers.Event {
	t.Helper()
	out := make([]handlers.Event, len(events))
	for i, e := range events {
		v, err := decodeEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = handlers.Event{RecordedEvent: e, Value: v}
	}
	return out
}
