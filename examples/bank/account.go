package bank

import "fmt"

// Account is the state of a bank account aggregate.
type Account struct {
	Number  string `json:"number"`
	Balance int64  `json:"balance"`
	Open    bool   `json:"open"`
	Closed  bool   `json:"closed"`
	// HolderName is the holder's name: personal data, "" once forgotten (and
	// shred.Forgotten while replaying events of a forgotten holder).
	HolderName string `json:"holder_name,omitempty"`
	// HolderForgotten is set once the holder's personal data was erased.
	HolderForgotten bool `json:"holder_forgotten,omitempty"`
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
		return []any{AccountOpened{AccountNumber: c.AccountNumber, InitialBalance: c.InitialBalance, HolderName: c.HolderName}}, nil
	case ForgetAccountHolder:
		if !a.Open && !a.Closed {
			return nil, ErrAccountNotOpen
		}
		if a.HolderForgotten {
			return nil, nil
		}
		return []any{AccountHolderForgotten{AccountNumber: a.Number}}, nil
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
		a.Number, a.Balance, a.Open, a.HolderName = e.AccountNumber, e.InitialBalance, true, e.HolderName
	case AccountHolderForgotten:
		a.HolderName, a.HolderForgotten = "", true
	case MoneyDeposited:
		a.Balance = e.Balance
	case MoneyWithdrawn:
		a.Balance = e.Balance
	case AccountClosed:
		a.Open, a.Closed = false, true
	}
}
