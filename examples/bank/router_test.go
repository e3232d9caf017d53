package bank_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/errcode"
	"github.com/ringleader-go/ringleader/eventstore/memstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
	"github.com/ringleader-go/ringleader/examples/bank"
)

// storeNames are the event stores every test body runs against.
func storeNames() []string { return []string{"mem", "pg"} }

func openStore(t testing.TB, name string) aggregate.Store {
	t.Helper()
	if name == "mem" {
		s := memstore.New()
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	if testing.Short() {
		t.Skip("PostgreSQL skipped in -short mode")
	}
	return pgtest.NewStore(t)
}

func newBank(t testing.TB, store aggregate.Store, cfg aggregate.Config) *aggregate.Dispatcher {
	t.Helper()
	cfg.Store = store
	if cfg.Router == nil {
		cfg.Router = bank.NewRouter(bank.Config{})
	}
	d, err := aggregate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func TestRouterValidates(t *testing.T) {
	if err := bank.NewRouter(bank.Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeFromWire(t *testing.T) {
	r := bank.NewRouter(bank.Config{})
	cmd, err := r.Decode("DepositMoney", []byte(`{"account_number":"A1","amount":10}`))
	if err != nil || cmd != (bank.DepositMoney{AccountNumber: "A1", Amount: 10}) {
		t.Fatalf("Decode = %#v, %v", cmd, err)
	}
	tgt, err := r.Identify(cmd)
	if err != nil || tgt.StreamID != "account-A1" || tgt.AggregateType != "account" {
		t.Fatalf("Identify = %+v, %v", tgt, err)
	}
	for body, code := range map[string]string{
		`{"account_number":"A1","amount":0}`:   errcode.Invalid,
		`{"account_number":"A1","amount":-5}`:  errcode.Invalid,
		`{"amount":5}`:                         errcode.Invalid,
		`{"account_number":"A1","amount":1.5}`: errcode.Invalid,
	} {
		if _, err := r.Decode("DepositMoney", []byte(body)); aggregate.CodeOf(err) != code {
			t.Errorf("%s: %v", body, err)
		}
	}
	if _, err := r.Decode("TransferMoney", []byte(`{"transfer_id":"T","from_account":"A","to_account":"A","amount":1}`)); !errors.Is(err, bank.ErrSameAccount) {
		t.Errorf("same account: %v", err)
	}
	if _, err := r.Decode("Rob", []byte(`{}`)); aggregate.CodeOf(err) != errcode.UnknownCommand {
		t.Errorf("unknown: %v", err)
	}
}

func TestAccountLifecycle(t *testing.T) {
	for _, sn := range storeNames() {
		t.Run(sn, func(t *testing.T) {
			d := newBank(t, openStore(t, sn), aggregate.Config{})
			ctx := context.Background()
			mustOK := func(cmd any) *aggregate.Result {
				t.Helper()
				res, err := d.Dispatch(ctx, cmd)
				if err != nil {
					t.Fatalf("%T: %v", cmd, err)
				}
				return res
			}
			rejected := func(cmd any, want error) {
				t.Helper()
				_, err := d.Dispatch(ctx, cmd)
				if !errors.Is(err, want) || aggregate.CodeOf(err) != errcode.Rejected {
					t.Fatalf("%T: err %v, want rejected %v", cmd, err, want)
				}
			}
			rejected(bank.DepositMoney{AccountNumber: "A1", Amount: 5}, bank.ErrAccountNotOpen)
			mustOK(bank.OpenAccount{AccountNumber: "A1", InitialBalance: 100})
			rejected(bank.OpenAccount{AccountNumber: "A1"}, bank.ErrAccountExists)
			mustOK(bank.DepositMoney{AccountNumber: "A1", Amount: 20})
			rejected(bank.WithdrawMoney{AccountNumber: "A1", Amount: 121}, bank.ErrInsufficientFunds)
			res := mustOK(bank.WithdrawMoney{AccountNumber: "A1", Amount: 120})
			if res.AggregateVersion != 3 || res.Events[0].Type != "MoneyWithdrawn" || res.Events[0].Value.(bank.MoneyWithdrawn).Balance != 0 {
				t.Fatalf("withdraw result %+v", res)
			}
			if string(res.Events[0].Data) != `{"account_number":"A1","amount":120,"balance":0}` {
				t.Fatalf("stored data %s", res.Events[0].Data)
			}
			mustOK(bank.CloseAccount{AccountNumber: "A1"})
			rejected(bank.DepositMoney{AccountNumber: "A1", Amount: 5}, bank.ErrAccountClosed)
			if _, err := d.Dispatch(ctx, bank.DepositMoney{AccountNumber: "A1", Amount: 0}); aggregate.CodeOf(err) != errcode.Invalid {
				t.Fatalf("zero amount: %v", err)
			}

			mustOK(bank.TransferMoney{TransferID: "T1", FromAccount: "A", ToAccount: "B", Amount: 5})
			mustOK(bank.MarkTransferDebited{TransferID: "T1"})
			res = mustOK(bank.MarkTransferDebited{TransferID: "T1"}) // a process manager's retry
			if len(res.Events) != 0 || res.AggregateVersion != 2 {
				t.Fatalf("repeated mark %+v", res)
			}
			mustOK(bank.MarkTransferCompleted{TransferID: "T1"})
			rejected(bank.MarkTransferFailed{TransferID: "T1"}, bank.ErrTransferFinished)
		})
	}
}

func TestConcurrentDepositsOnOneAccount(t *testing.T) {
	for _, sn := range storeNames() {
		t.Run(sn, func(t *testing.T) {
			store := openStore(t, sn)
			d := newBank(t, store, aggregate.Config{Timeout: 30 * time.Second})
			ctx := context.Background()
			if _, err := d.Dispatch(ctx, bank.OpenAccount{AccountNumber: "hot"}); err != nil {
				t.Fatal(err)
			}
			const n = 200
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := range n {
				wg.Go(func() {
					_, err := d.Dispatch(ctx, bank.DepositMoney{AccountNumber: "hot", Amount: 1}, aggregate.WithCommandID(fmt.Sprint("dep-", i)))
					if err != nil {
						errs <- err
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("deposit: %v (code %s)", err, aggregate.CodeOf(err))
			}
			res, err := d.Dispatch(ctx, bank.WithdrawMoney{AccountNumber: "hot", Amount: n}, aggregate.ReturnState())
			if err != nil {
				t.Fatalf("withdraw all: %v", err)
			}
			if a := res.State.(*bank.Account); a.Balance != 0 || res.AggregateVersion != n+2 {
				t.Fatalf("balance %d version %d, want 0 and %d", a.Balance, res.AggregateVersion, n+2)
			}
			if v, err := store.StreamVersion(ctx, "account-hot"); err != nil || v != n+2 {
				t.Fatalf("stream version %d, %v", v, err)
			}
		})
	}
}

// TestNoRefusalFromStaleState: two nodes own one account at once (a split). The
// second's copy is behind; a withdrawal it would refuse on its stale balance must be
// decided on the stored one. A refusal appends nothing, so the store's version check
// alone would never notice.
func TestNoRefusalFromStaleState(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	a := newBank(t, store, aggregate.Config{})
	b := newBank(t, store, aggregate.Config{})
	if _, err := a.Dispatch(ctx, bank.OpenAccount{AccountNumber: "S", InitialBalance: 10}); err != nil {
		t.Fatal(err)
	}
	// b loads the account at balance 10.
	if _, err := b.Dispatch(ctx, bank.DepositMoney{AccountNumber: "S", Amount: 1}); err != nil {
		t.Fatal(err)
	}
	// a, whose copy is now behind, catches up through its append; b's copy falls behind.
	if _, err := a.Dispatch(ctx, bank.DepositMoney{AccountNumber: "S", Amount: 50}); err != nil {
		t.Fatal(err)
	}
	// b holds 11 but the account holds 61.
	res, err := b.Dispatch(ctx, bank.WithdrawMoney{AccountNumber: "S", Amount: 30})
	if err != nil {
		t.Fatalf("withdraw 30 of 61 refused from a stale copy: %v", err)
	}
	if res.AggregateVersion != 4 {
		t.Fatalf("version %d, want 4", res.AggregateVersion)
	}
	// And a refusal that is right stays a refusal.
	if _, err := a.Dispatch(ctx, bank.WithdrawMoney{AccountNumber: "S", Amount: 100}); !errors.Is(err, aggregate.ErrRejected) {
		t.Fatalf("withdraw 100 of 31: %v, want rejected", err)
	}
}
