package bank

import (
	"time"

	"github.com/ringleader-go/ringleader/aggregate"
)

// Stream prefixes of the bank's aggregates.
const (
	AccountStreamPrefix  = "account-"
	TransferStreamPrefix = "transfer-"
)

// Config tunes the bank's aggregate types. The zero value is the production setting.
type Config struct {
	// AccountSnapshots is the account's snapshot policy. Nil means a snapshot every
	// 100 events, schema version 1.
	AccountSnapshots *aggregate.SnapshotPolicy
	// Lifespan applies to both aggregate types. Nil means idle instances are
	// passivated after 10 minutes.
	Lifespan aggregate.Lifespan
}

// NewRouter returns the router of the bank domain: account and transfer commands.
func NewRouter(cfg Config) *aggregate.Router {
	snaps := aggregate.SnapshotPolicy{Every: 100, Version: 1}
	if cfg.AccountSnapshots != nil {
		snaps = *cfg.AccountSnapshots
	}
	life := cfg.Lifespan
	if life == nil {
		life = aggregate.IdleLifespan{Idle: 10 * time.Minute}
	}
	account := aggregate.NewType[Account]("account",
		aggregate.TypeConfig{StreamPrefix: AccountStreamPrefix, Snapshots: snaps, Lifespan: life},
		AccountOpened{}, MoneyDeposited{}, MoneyWithdrawn{}, AccountClosed{}, AccountHolderForgotten{})
	transfer := aggregate.NewType[Transfer]("transfer",
		aggregate.TypeConfig{StreamPrefix: TransferStreamPrefix, Lifespan: life},
		TransferRequested{}, TransferDebited{}, TransferCompleted{}, TransferFailed{})

	r := aggregate.NewRouter()
	aggregate.Route(r, account, func(c OpenAccount) string { return c.AccountNumber })
	aggregate.Route(r, account, func(c DepositMoney) string { return c.AccountNumber })
	aggregate.Route(r, account, func(c WithdrawMoney) string { return c.AccountNumber })
	aggregate.Route(r, account, func(c CloseAccount) string { return c.AccountNumber })
	aggregate.Route(r, account, func(c ForgetAccountHolder) string { return c.AccountNumber })
	aggregate.Route(r, transfer, func(c TransferMoney) string { return c.TransferID })
	aggregate.Route(r, transfer, func(c MarkTransferDebited) string { return c.TransferID })
	aggregate.Route(r, transfer, func(c MarkTransferCompleted) string { return c.TransferID })
	aggregate.Route(r, transfer, func(c MarkTransferFailed) string { return c.TransferID })
	aggregate.Route(r, transfer, func(c ExpireTransfer) string { return c.TransferID })
	return r
}
