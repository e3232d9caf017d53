package bank

import "fmt"

// TransferStatus is where a transfer stands.
type TransferStatus string

// Transfer statuses. A transfer goes requested → debited → completed, or ends failed
// from requested or debited.
const (
	TransferNone      TransferStatus = ""
	TransferPending   TransferStatus = "requested"
	TransferDebitDone TransferStatus = "debited"
	TransferDone      TransferStatus = "completed"
	TransferFail      TransferStatus = "failed"
)

// ExpiredReason is the reason of a transfer that ExpireTransfer failed.
const ExpiredReason = "expired: not debited within the transfer timeout"

// Transfer is the state of a money transfer aggregate.
type Transfer struct {
	ID          string         `json:"id"`
	FromAccount string         `json:"from_account"`
	ToAccount   string         `json:"to_account"`
	Amount      int64          `json:"amount"`
	Status      TransferStatus `json:"status"`
	Reason      string         `json:"reason,omitempty"`
}

// Execute decides a command against the transfer. Repeating the mark of the state the
// transfer is already in records nothing and succeeds, so a process manager may
// safely retry.
func (t *Transfer) Execute(command any) ([]any, error) {
	switch c := command.(type) {
	case TransferMoney:
		if t.Status != TransferNone {
			return nil, ErrTransferExists
		}
		if c.Amount <= 0 {
			return nil, ErrInvalidAmount
		}
		if c.FromAccount == c.ToAccount {
			return nil, ErrSameAccount
		}
		return []any{TransferRequested(c)}, nil
	case MarkTransferDebited:
		switch t.Status {
		case TransferNone:
			return nil, ErrTransferNotRequested
		case TransferDebitDone:
			return nil, nil
		case TransferDone, TransferFail:
			return nil, ErrTransferFinished
		}
		return []any{TransferDebited{TransferID: t.ID}}, nil
	case MarkTransferCompleted:
		switch t.Status {
		case TransferNone:
			return nil, ErrTransferNotRequested
		case TransferDone:
			return nil, nil
		case TransferFail:
			return nil, ErrTransferFinished
		}
		return []any{TransferCompleted{TransferID: t.ID}}, nil
	case MarkTransferFailed:
		switch t.Status {
		case TransferNone:
			return nil, ErrTransferNotRequested
		case TransferFail:
			return nil, nil
		case TransferDone:
			return nil, ErrTransferFinished
		}
		return []any{TransferFailed{TransferID: t.ID, Reason: c.Reason}}, nil
	case ExpireTransfer:
		switch t.Status {
		case TransferNone:
			return nil, ErrTransferNotRequested
		case TransferPending:
			return []any{TransferFailed{TransferID: t.ID, Reason: ExpiredReason, Expired: true}}, nil
		}
		return nil, nil // debited, completed or failed: nothing to expire
	default:
		return nil, fmt.Errorf("%w: %T", errNotTransferCommand, command)
	}
}

// Apply folds an event into the transfer.
func (t *Transfer) Apply(event any) {
	switch e := event.(type) {
	case TransferRequested:
		t.ID, t.FromAccount, t.ToAccount, t.Amount = e.TransferID, e.FromAccount, e.ToAccount, e.Amount
		t.Status = TransferPending
	case TransferDebited:
		t.Status = TransferDebitDone
	case TransferCompleted:
		t.Status = TransferDone
	case TransferFailed:
		t.Status, t.Reason = TransferFail, e.Reason
	}
}
