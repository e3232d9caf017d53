package bank

import "fmt"

// TransferMoney requests moving Amount (> 0) from FromAccount to ToAccount. The
// transfer process manager carries it out.
type TransferMoney struct {
	TransferID  string `json:"transfer_id"`
	FromAccount string `json:"from_account"`
	ToAccount   string `json:"to_account"`
	Amount      int64  `json:"amount"`
}

// MarkTransferDebited records that the source account was debited.
type MarkTransferDebited struct {
	TransferID string `json:"transfer_id"`
}

// MarkTransferCompleted records that the destination account was credited.
type MarkTransferCompleted struct {
	TransferID string `json:"transfer_id"`
}

// MarkTransferFailed records that the transfer failed (and, if the source had been
// debited, that the process manager refunded it).
type MarkTransferFailed struct {
	TransferID string `json:"transfer_id"`
	Reason     string `json:"reason"`
}

// Validate rejects a non-positive amount and a transfer to the source account.
func (c TransferMoney) Validate() error {
	if err := positive(c.Amount); err != nil {
		return err
	}
	if c.FromAccount == "" || c.ToAccount == "" {
		return fmt.Errorf("from_account and to_account are required")
	}
	if c.FromAccount == c.ToAccount {
		return ErrSameAccount
	}
	return nil
}

// ExpireTransfer gives up on a transfer that has not been debited yet: the transfer
// process schedules it, TransferTimeout after the transfer was requested, and cancels
// it when the transfer ends. A transfer still requested fails with Expired set; one
// that was debited, completed or failed is left alone (the command succeeds and
// records nothing): once money left the source the process must finish the transfer
// (deposit, or refund) rather than abandon money in flight.
type ExpireTransfer struct {
	TransferID string `json:"transfer_id"`
}

// TransferRequested records a requested transfer.
type TransferRequested struct {
	TransferID  string `json:"transfer_id"`
	FromAccount string `json:"from_account"`
	ToAccount   string `json:"to_account"`
	Amount      int64  `json:"amount"`
}

// TransferDebited records that the source account was debited.
type TransferDebited struct {
	TransferID string `json:"transfer_id"`
}

// TransferCompleted records a completed transfer.
type TransferCompleted struct {
	TransferID string `json:"transfer_id"`
}

// TransferFailed records a failed transfer.
type TransferFailed struct {
	TransferID string `json:"transfer_id"`
	Reason     string `json:"reason"`
	// Expired is set when the transfer failed because ExpireTransfer found it not
	// yet debited.
	Expired bool `json:"expired,omitempty"`
}
