// Package bank is Ringleader's reference domain: bank accounts and money transfers,
// hosted by cmd/node and driven by the end-to-end tests.
//
// An Account is opened (OpenAccount), receives deposits (DepositMoney), pays
// withdrawals (WithdrawMoney, rejected with ErrInsufficientFunds rather than going
// negative) and is closed (CloseAccount, only when empty). A Transfer records a
// request to move money between two accounts (TransferMoney) and its progress as the
// transfer process manager reports it (MarkTransferDebited, MarkTransferCompleted,
// MarkTransferFailed); the process manager itself withdraws from one account and
// deposits into the other.
//
// Commands and events are plain structs with snake_case JSON fields, named on the
// wire by their Go type names (subject rl.cmd.DepositMoney). Amounts are integers
// in the smallest currency unit. Commands with a non-positive amount fail
// validation (code invalid); commands the state refuses are rejected with one of
// the Err variables below.
//
// Handlers returns the bank's event handlers for a node's handlers.Runner: the
// bank_accounts projection (AccountsProjection; K = 4 partitions by default,
// strongly consistent) and the transfer process manager (TransferProcess), which
// dispatches its commands through a process.Dispatcher. ReplayBalances computes the
// accounts from raw events, the reference the projection is checked against.
//
// NewRouter returns the router to give aggregate.Config:
//
//	d, err := aggregate.New(aggregate.Config{Store: store, Router: bank.NewRouter(bank.Config{})})
//	res, err := d.Dispatch(ctx, bank.DepositMoney{AccountNumber: "A1", Amount: 10})
package bank
