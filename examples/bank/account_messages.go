package bank

import (
	"errors"

	"github.com/ringleader-go/ringleader/aggregate"
)

// OpenAccount opens account AccountNumber with InitialBalance (>= 0). HolderName is
// optional personal data: it is stored encrypted with the account's own key (see
// ShredConfig) and can be forgotten with ForgetAccountHolder.
type OpenAccount struct {
	AccountNumber  string `json:"account_number"`
	InitialBalance int64  `json:"initial_balance"`
	HolderName     string `json:"holder_name,omitempty"`
}

// ForgetAccountHolder erases the personal data of account AccountNumber's holder
// ("right to be forgotten"): the account's data key is deleted, so every event of the
// account reads with the holder name replaced by "[forgotten]". The account itself
// (balance, history) stays. Forgetting twice records nothing the second time.
type ForgetAccountHolder struct {
	AccountNumber string `json:"account_number"`
}

// DepositMoney adds Amount (> 0) to an open account.
type DepositMoney struct {
	AccountNumber string `json:"account_number"`
	Amount        int64  `json:"amount"`
}

// WithdrawMoney takes Amount (> 0) from an open account holding at least that much.
type WithdrawMoney struct {
	AccountNumber string `json:"account_number"`
	Amount        int64  `json:"amount"`
}

// CloseAccount closes an open account whose balance is zero.
type CloseAccount struct {
	AccountNumber string `json:"account_number"`
}

// Validate rejects a negative initial balance.
func (c OpenAccount) Validate() error {
	if c.InitialBalance < 0 {
		return aggregate.InvalidField("initial_balance", "must not be negative, got %d", c.InitialBalance)
	}
	return nil
}

// Validate rejects a non-positive amount.
func (c DepositMoney) Validate() error { return positive(c.Amount) }

// Validate rejects a non-positive amount.
func (c WithdrawMoney) Validate() error { return positive(c.Amount) }

func positive(amount int64) error {
	if amount <= 0 {
		return aggregate.InvalidField("amount", "must be positive, got %d", amount)
	}
	return nil
}

// AccountOpened records an opened account. HolderName (personal data) is stored
// encrypted when present.
type AccountOpened struct {
	AccountNumber  string `json:"account_number"`
	InitialBalance int64  `json:"initial_balance"`
	HolderName     string `json:"holder_name,omitempty"`
}

// AccountHolderForgotten records that the holder's personal data was erased. Its
// append deletes the account's data key first (see ShredConfig).
type AccountHolderForgotten struct {
	AccountNumber string `json:"account_number"`
}

// MoneyDeposited records a deposit and the balance after it.
type MoneyDeposited struct {
	AccountNumber string `json:"account_number"`
	Amount        int64  `json:"amount"`
	Balance       int64  `json:"balance"`
}

// MoneyWithdrawn records a withdrawal and the balance after it.
type MoneyWithdrawn struct {
	AccountNumber string `json:"account_number"`
	Amount        int64  `json:"amount"`
	Balance       int64  `json:"balance"`
}

// AccountClosed records a closed account.
type AccountClosed struct {
	AccountNumber string `json:"account_number"`
}

var (
	errNotAccountCommand  = errors.New("not an account command")
	errNotTransferCommand = errors.New("not a transfer command")
)
