package bank

import (
	"errors"
	"testing"
)

// run executes cmd against a fresh state built from history, applying what it records.
func run(t *testing.T, s interface {
	Execute(any) ([]any, error)
	Apply(any)
}, history []any, cmd any) ([]any, error) {
	t.Helper()
	for _, e := range history {
		s.Apply(e)
	}
	events, err := s.Execute(cmd)
	for _, e := range events {
		s.Apply(e)
	}
	return events, err
}

func TestAccountDecisions(t *testing.T) {
	opened := AccountOpened{AccountNumber: "A1", InitialBalance: 50}
	closed := AccountClosed{AccountNumber: "A1"}
	forgot := AccountHolderForgotten{AccountNumber: "A1"}
	cases := []struct {
		name    string
		history []any
		cmd     any
		want    []any
		err     error
		balance int64
	}{
		{"open", nil, OpenAccount{AccountNumber: "A1", InitialBalance: 50}, []any{opened}, nil, 50},
		{"open twice", []any{opened}, OpenAccount{AccountNumber: "A1"}, nil, ErrAccountExists, 50},
		{"reopen closed", []any{AccountOpened{AccountNumber: "A1"}, closed}, OpenAccount{AccountNumber: "A1"}, nil, ErrAccountExists, 0},
		{"open negative", nil, OpenAccount{AccountNumber: "A1", InitialBalance: -1}, nil, ErrInvalidAmount, 0},
		{"deposit", []any{opened}, DepositMoney{AccountNumber: "A1", Amount: 5}, []any{MoneyDeposited{AccountNumber: "A1", Amount: 5, Balance: 55}}, nil, 55},
		{"deposit unopened", nil, DepositMoney{AccountNumber: "A1", Amount: 5}, nil, ErrAccountNotOpen, 0},
		{"deposit closed", []any{AccountOpened{AccountNumber: "A1"}, closed}, DepositMoney{AccountNumber: "A1", Amount: 5}, nil, ErrAccountClosed, 0},
		{"deposit zero", []any{opened}, DepositMoney{AccountNumber: "A1"}, nil, ErrInvalidAmount, 50},
		{"withdraw", []any{opened}, WithdrawMoney{AccountNumber: "A1", Amount: 50}, []any{MoneyWithdrawn{AccountNumber: "A1", Amount: 50, Balance: 0}}, nil, 0},
		{"overdraw", []any{opened}, WithdrawMoney{AccountNumber: "A1", Amount: 51}, nil, ErrInsufficientFunds, 50},
		{"withdraw negative", []any{opened}, WithdrawMoney{AccountNumber: "A1", Amount: -1}, nil, ErrInvalidAmount, 50},
		{"withdraw unopened", nil, WithdrawMoney{AccountNumber: "A1", Amount: 1}, nil, ErrAccountNotOpen, 0},
		{"close non-empty", []any{opened}, CloseAccount{AccountNumber: "A1"}, nil, ErrBalanceNotZero, 50},
		{"close empty", []any{AccountOpened{AccountNumber: "A1"}}, CloseAccount{AccountNumber: "A1"}, []any{closed}, nil, 0},
		{"close twice", []any{AccountOpened{AccountNumber: "A1"}, closed}, CloseAccount{AccountNumber: "A1"}, nil, ErrAccountClosed, 0},
		{"foreign command", nil, TransferMoney{}, nil, errNotAccountCommand, 0},
		{"open with holder", nil, OpenAccount{AccountNumber: "A1", InitialBalance: 50, HolderName: "Ann"}, []any{AccountOpened{AccountNumber: "A1", InitialBalance: 50, HolderName: "Ann"}}, nil, 50},
		{"forget holder", []any{opened}, ForgetAccountHolder{AccountNumber: "A1"}, []any{forgot}, nil, 50},
		{"forget holder of closed", []any{AccountOpened{AccountNumber: "A1"}, closed}, ForgetAccountHolder{AccountNumber: "A1"}, []any{forgot}, nil, 0},
		{"forget twice", []any{opened, forgot}, ForgetAccountHolder{AccountNumber: "A1"}, nil, nil, 50},
		{"forget unopened", nil, ForgetAccountHolder{AccountNumber: "A1"}, nil, ErrAccountNotOpen, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var a Account
			got, err := run(t, &a, c.history, c.cmd)
			if _, forget := c.cmd.(ForgetAccountHolder); forget && err == nil && (a.HolderName != "" || !a.HolderForgotten) {
				t.Fatalf("after forgetting: %+v", a)
			}
			if !errors.Is(err, c.err) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if len(got) != len(c.want) || (len(got) == 1 && got[0] != c.want[0]) {
				t.Fatalf("events = %#v, want %#v", got, c.want)
			}
			if a.Balance != c.balance || a.Balance < 0 {
				t.Fatalf("balance = %d, want %d", a.Balance, c.balance)
			}
		})
	}
}

func TestTransferDecisions(t *testing.T) {
	req := TransferRequested{TransferID: "T1", FromAccount: "A", ToAccount: "B", Amount: 5}
	debited, completed, failed := TransferDebited{TransferID: "T1"}, TransferCompleted{TransferID: "T1"}, TransferFailed{TransferID: "T1", Reason: "x"}
	cases := []struct {
		name    string
		history []any
		cmd     any
		events  int
		err     error
		status  TransferStatus
	}{
		{"request", nil, TransferMoney{TransferID: "T1", FromAccount: "A", ToAccount: "B", Amount: 5}, 1, nil, TransferPending},
		{"request twice", []any{req}, TransferMoney{TransferID: "T1", FromAccount: "A", ToAccount: "B", Amount: 5}, 0, ErrTransferExists, TransferPending},
		{"same account", nil, TransferMoney{TransferID: "T1", FromAccount: "A", ToAccount: "A", Amount: 5}, 0, ErrSameAccount, TransferNone},
		{"zero amount", nil, TransferMoney{TransferID: "T1", FromAccount: "A", ToAccount: "B"}, 0, ErrInvalidAmount, TransferNone},
		{"debit", []any{req}, MarkTransferDebited{TransferID: "T1"}, 1, nil, TransferDebitDone},
		{"debit again", []any{req, debited}, MarkTransferDebited{TransferID: "T1"}, 0, nil, TransferDebitDone},
		{"debit unrequested", nil, MarkTransferDebited{TransferID: "T1"}, 0, ErrTransferNotRequested, TransferNone},
		{"complete", []any{req, debited}, MarkTransferCompleted{TransferID: "T1"}, 1, nil, TransferDone},
		{"complete again", []any{req, debited, completed}, MarkTransferCompleted{TransferID: "T1"}, 0, nil, TransferDone},
		{"complete failed", []any{req, failed}, MarkTransferCompleted{TransferID: "T1"}, 0, ErrTransferFinished, TransferFail},
		{"fail after debit", []any{req, debited}, MarkTransferFailed{TransferID: "T1", Reason: "x"}, 1, nil, TransferFail},
		{"fail completed", []any{req, debited, completed}, MarkTransferFailed{TransferID: "T1"}, 0, ErrTransferFinished, TransferDone},
		{"debit completed", []any{req, debited, completed}, MarkTransferDebited{TransferID: "T1"}, 0, ErrTransferFinished, TransferDone},
		{"foreign", nil, DepositMoney{}, 0, errNotTransferCommand, TransferNone},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var tr Transfer
			got, err := run(t, &tr, c.history, c.cmd)
			if !errors.Is(err, c.err) || len(got) != c.events || tr.Status != c.status {
				t.Fatalf("events %v err %v status %q; want %d, %v, %q", got, err, tr.Status, c.events, c.err, c.status)
			}
		})
	}
}
