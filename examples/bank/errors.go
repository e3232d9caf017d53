package bank

import "errors"

// Domain errors: the reasons an account or a transfer rejects a command. Dispatch
// returns them wrapped in an *aggregate.RejectedError; test with errors.Is.
var (
	ErrAccountExists        = errors.New("account already open")
	ErrAccountNotOpen       = errors.New("account not open")
	ErrAccountClosed        = errors.New("account closed")
	ErrInsufficientFunds    = errors.New("insufficient funds")
	ErrBalanceNotZero       = errors.New("account balance is not zero")
	ErrInvalidAmount        = errors.New("amount must be positive")
	ErrTransferExists       = errors.New("transfer already requested")
	ErrTransferNotRequested = errors.New("transfer not requested")
	ErrTransferFinished     = errors.New("transfer already finished")
	ErrSameAccount          = errors.New("cannot transfer to the same account")
)
