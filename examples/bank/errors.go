package bank

import "github.com/ringleader-go/ringleader/aggregate"

// Domain errors: why an account or a transfer rejects a command. Each has a reason a
// program can act on (the wire reply's error.reason, process.Outcome.Reason);
// Dispatch returns them wrapped in an *aggregate.RejectedError; test with errors.Is.
var (
	ErrAccountExists        = aggregate.Reject("account_exists", "account already open")
	ErrAccountNotOpen       = aggregate.Reject("account_not_open", "account not open")
	ErrAccountClosed        = aggregate.Reject("account_closed", "account closed")
	ErrInsufficientFunds    = aggregate.Reject("insufficient_funds", "insufficient funds")
	ErrBalanceNotZero       = aggregate.Reject("balance_not_zero", "account balance is not zero")
	ErrInvalidAmount        = aggregate.Reject("invalid_amount", "amount must be positive")
	ErrTransferExists       = aggregate.Reject("transfer_exists", "transfer already requested")
	ErrTransferNotRequested = aggregate.Reject("transfer_not_requested", "transfer not requested")
	ErrTransferFinished     = aggregate.Reject("transfer_finished", "transfer already finished")
	ErrSameAccount          = aggregate.Reject("same_account", "cannot transfer to the same account")
)
