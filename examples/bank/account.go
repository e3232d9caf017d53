package bank

import "fmt"

// Account is the state of a bank account aggregate.
type Account struct {
	Number  string `json:"number"`
	Balance int64  `json:"balance"`
	Open    bool   `json:"open"`
	Closed  bool   `json:"closed"`
}

// Execute decides a command against the account.
func (a *Account) Execute(command any) ([]any, error) {
	switch c := command.(type) {
	case OpenAccount:
		if a.Open || a.Closed {
			return nil, ErrAccountExists
		}
		if c.InitialBalance < 0 {
			return nil, ErrInvalidAmount
		}
		return []any{AccountOpened{AccountNumber: c.AccountNumber, InitialBalance: c.InitialBalance}}, nil
	case DepositMoney:
		if err := a.usable(); err != nil {
			return nil, err
		}
		if c.Amount <= 0 {
			return nil, ErrInvalidAmount
		}
		return []any{MoneyDeposited{AccountNumber: a.Number, Amount: c.Amount, Balance: a.Balance + c.Amount}}, nil
	case WithdrawMoney:
		if err := a.usable(); err != nil {
			return nil, err
		}
		if c.Amount <= 0 {
			return nil, ErrInvalidAmount
		}
		if c.Amount > a.Balance {
			return nil, ErrInsufficientFunds
		}
		return []any{MoneyWithdrawn{AccountNumber: a.Number, Amount: c.Amount, Balance: a.Balance - c.Amount}}, nil
	case CloseAccount:
		if err := a.usable(); err != nil {
			return nil, err
		}
		if a.Balance != 0 {
			return nil, ErrBalanceNotZero
		}
		return []any{AccountClosed{AccountNumber: a.Number}}, nil
	default:
		return nil, fmt.Errorf("%w: %T", errNotAccountCommand, command)
	}
}

// usable reports why the account cannot take money movements, if it cannot.
func (a *Account) usable() error {
	switch {
	case a.Closed:
		return ErrAccountClosed
	case !a.Open:
		return ErrAccountNotOpen
	}
	return nil
}

// Apply folds an event into the account.
func (a *Account) Apply(event any) {
	switch e := event.(type) {
	case AccountOpened:
		a.Number, a.Balance, a.Open = e.AccountNumber, e.InitialBalance, true
	case MoneyDeposited:
		a.Balance = e.Balance
	case MoneyWithdrawn:
		a.Balance = e.Balance
	case AccountClosed:
		a.Open, a.Closed = false, true
	}
}
