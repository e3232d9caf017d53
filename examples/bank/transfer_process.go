package bank

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ringleader-go/ringleader/errcode"
	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/handlers"
	"github.com/ringleader-go/ringleader/handlers/process"
)

// TransferProcessName is the name of the transfer process manager (its handler,
// its process_state rows and the prefix of its command ids).
const TransferProcessName = "bank_transfers"

// TransferStep is where a transfer process stands.
type TransferStep string

// Steps of the transfer process, in the order a transfer goes through them. Each
// names the command whose answer the process awaits.
const (
	StepWithdrawing  TransferStep = "withdrawing" // WithdrawMoney from the source
	StepMarkDebited  TransferStep = "marking_debited"
	StepDepositing   TransferStep = "depositing" // DepositMoney to the target
	StepRefunding    TransferStep = "refunding"  // DepositMoney back to the source
	StepMarkComplete TransferStep = "marking_completed"
	StepMarkFailed   TransferStep = "marking_failed"
	StepCompleted    TransferStep = "completed"
	StepFailed       TransferStep = "failed"
)

// Command tags of the transfer process.
const (
	tagWithdraw     = "withdraw"
	tagMarkDebited  = "mark_debited"
	tagDeposit      = "deposit"
	tagRefund       = "refund"
	tagMarkComplete = "mark_completed"
	tagMarkFailed   = "mark_failed"
)

// ErrTransferInconsistent: the transfer aggregate refused a mark the process sent,
// which only happens if something else marked the transfer (or the process's state
// was lost and the process replayed). The process stops making progress; the
// handler's OnError decides what happens to the event.
var ErrTransferInconsistent = errors.New("bank: transfer process: transfer refused its mark")

// TransferState is the state of one transfer process.
type TransferState struct {
	TransferID  string       `json:"transfer_id"`
	FromAccount string       `json:"from_account"`
	ToAccount   string       `json:"to_account"`
	Amount      int64        `json:"amount"`
	Step        TransferStep `json:"step"`
	// Reason says why the transfer failed.
	Reason string `json:"reason,omitempty"`
	// Unrefunded is the amount withdrawn from the source that could not be given
	// back (the source was closed meanwhile): money held by the failed transfer.
	Unrefunded int64 `json:"unrefunded,omitempty"`
}

// TransferProcess returns the definition of the transfer process manager; add
// States and Dispatcher (or use Handlers).
//
// The process runs a transfer's steps one command at a time, each chosen from the
// answer to the previous one, within the handling of TransferRequested:
//
//	WithdrawMoney(source)  refused → MarkTransferFailed{reason}
//	  ok → MarkTransferDebited → DepositMoney(target)
//	          ok → MarkTransferCompleted
//	          refused → DepositMoney(source) (refund) → MarkTransferFailed{reason}
//
// It does not wait for the transfer's own events to take the next step: a refusal
// records no event, so the steps that matter (the reaction to a refused withdrawal
// or deposit) could not be driven by events anyway, and the process framework's
// journal makes the synchronous chain crash-safe — each answer is saved before the
// next command is sent, every command has a deterministic id, and a refusal once
// saved is never retried, so a refund can never coexist with the deposit it
// replaces. TransferCompleted and TransferFailed stop the process, leaving a
// tombstone.
//
// A refused MarkTransferDebited (the transfer expired between the withdrawal and
// its mark, see ExpiringTransferProcess) is answered with the refund, then the
// (idempotent) MarkTransferFailed.
func TransferProcess() process.Config[TransferState] { return ExpiringTransferProcess(0) }

// ExpireScheduleName names the transfer process's expiry schedule; its schedule id
// is ExpireScheduleID(transfer id).
const ExpireScheduleName = "expire"

// ExpireScheduleID returns the id of the schedule that expires transfer id (and the
// Command-Id of its ExpireTransfer).
func ExpireScheduleID(transferID string) string {
	return TransferProcessName + ":" + transferID + ":" + ExpireScheduleName
}

// ExpiringTransferProcess is TransferProcess that gives up on a transfer not
// debited within timeout: when the transfer is requested it schedules
// ExpireTransfer, due timeout after the TransferRequested event was recorded (the
// process's Config needs a Scheduler), and cancels that schedule when the transfer
// completes or fails. A zero timeout schedules nothing (TransferProcess).
//
// An expiry can only fail a transfer that is still requested. If the process had
// already withdrawn the money (its mark was still to come), the refused mark makes
// it refund the source, so money is conserved and the transfer ends failed.
func ExpiringTransferProcess(timeout time.Duration) process.Config[TransferState] {
	handle := handleTransfer
	if timeout > 0 {
		handle = func(s TransferState, e process.Event) ([]process.Command, error) {
			switch v := e.Value.(type) {
			case TransferRequested:
				if s.Step == "" {
					return []process.Command{
						process.ScheduleAt(ExpireScheduleName, e.CreatedAt.Add(timeout), ExpireTransfer{TransferID: v.TransferID}),
						process.Tagged(tagWithdraw, WithdrawMoney{AccountNumber: v.FromAccount, Amount: v.Amount}),
					}, nil
				}
			case TransferCompleted, TransferFailed:
				return []process.Command{process.CancelSchedule(ExpireScheduleName)}, nil
			}
			return nil, nil
		}
	}
	return process.Config[TransferState]{
		Name:       TransferProcessName,
		Interested: transferInterest,
		Handle:     handle,
		Apply:      applyTransfer,
		Outcome:    transferOutcome,
	}
}

// isTransferEvent reports whether e is a transfer's event: the only events the
// transfer process acts on.
func isTransferEvent(e eventstore.RecordedEvent) bool {
	return strings.HasPrefix(e.StreamID, TransferStreamPrefix)
}

func transferInterest(e process.Event) process.Interest {
	id := strings.TrimPrefix(e.StreamID, TransferStreamPrefix)
	switch e.Value.(type) {
	case TransferRequested:
		return process.Start(id)
	case TransferDebited:
		return process.Continue(id)
	case TransferCompleted, TransferFailed:
		return process.Stop(id)
	}
	return process.Interest{}
}

func handleTransfer(s TransferState, e process.Event) ([]process.Command, error) {
	if r, ok := e.Value.(TransferRequested); ok && s.Step == "" {
		return []process.Command{process.Tagged(tagWithdraw, WithdrawMoney{AccountNumber: r.FromAccount, Amount: r.Amount})}, nil
	}
	return nil, nil
}

func applyTransfer(s TransferState, e process.Event) TransferState {
	switch v := e.Value.(type) {
	case TransferRequested:
		if s.Step == "" {
			s = TransferState{TransferID: v.TransferID, FromAccount: v.FromAccount, ToAccount: v.ToAccount, Amount: v.Amount, Step: StepWithdrawing}
		}
	case TransferCompleted:
		s.Step = StepCompleted
	case TransferFailed:
		s.Step = StepFailed
	}
	return s
}

func transferOutcome(s TransferState, c process.Sent, o process.Outcome) (TransferState, []process.Command, error) {
	refused := func(what string) string { return fmt.Sprintf("%s refused (%s): %s", what, o.Code, o.Message) }
	fail := func(reason string) []process.Command {
		s.Step, s.Reason = StepMarkFailed, reason
		return []process.Command{process.Tagged(tagMarkFailed, MarkTransferFailed{TransferID: s.TransferID, Reason: reason})}
	}
	switch c.Tag {
	case tagWithdraw:
		if !o.OK() {
			return s, fail(refused("withdrawal from " + s.FromAccount)), nil
		}
		s.Step = StepMarkDebited
		return s, []process.Command{process.Tagged(tagMarkDebited, MarkTransferDebited{TransferID: s.TransferID})}, nil
	case tagMarkDebited:
		// Decided on the reason; a node older than wire contract 1 (during a rolling
		// upgrade) gives none, and then its message says the same.
		finished := o.Reason == ErrTransferFinished.Reason || (o.Reason == "" && o.Message == ErrTransferFinished.Message)
		if o.Code == errcode.Rejected && finished {
			// The transfer ended (expired) after the withdrawal: give the money back.
			s.Step, s.Reason = StepRefunding, refused("debit mark of transfer "+s.TransferID)
			return s, []process.Command{process.Tagged(tagRefund, DepositMoney{AccountNumber: s.FromAccount, Amount: s.Amount})}, nil
		}
		if !o.OK() {
			return s, nil, fmt.Errorf("%w: %s", ErrTransferInconsistent, o.Message)
		}
		s.Step = StepDepositing
		return s, []process.Command{process.Tagged(tagDeposit, DepositMoney{AccountNumber: s.ToAccount, Amount: s.Amount})}, nil
	case tagDeposit:
		if !o.OK() {
			s.Step, s.Reason = StepRefunding, refused("deposit to "+s.ToAccount)
			return s, []process.Command{process.Tagged(tagRefund, DepositMoney{AccountNumber: s.FromAccount, Amount: s.Amount})}, nil
		}
		s.Step = StepMarkComplete
		return s, []process.Command{process.Tagged(tagMarkComplete, MarkTransferCompleted{TransferID: s.TransferID})}, nil
	case tagRefund:
		if !o.OK() {
			s.Unrefunded = s.Amount
			return s, fail(s.Reason + "; " + refused("refund to "+s.FromAccount) + fmt.Sprintf("; %d held by the transfer", s.Amount)), nil
		}
		return s, fail(s.Reason + "; refunded to " + s.FromAccount), nil
	case tagMarkComplete, tagMarkFailed:
		if !o.OK() {
			return s, nil, fmt.Errorf("%w: %s", ErrTransferInconsistent, o.Message)
		}
		return s, nil, nil
	}
	return s, nil, fmt.Errorf("bank: transfer process: answer to unknown command tag %q", c.Tag)
}

// HandlersConfig configures the bank's event handlers (Handlers).
type HandlersConfig struct {
	// Partitions is the bank_accounts projection's partition count K. Zero means 4.
	Partitions int
	// TransferPartitions is the transfer process's partition count. Zero means
	// Partitions.
	TransferPartitions int
	// Dispatcher sends the transfer process's commands through the node's command
	// path. Required.
	Dispatcher process.Dispatcher
	// States keeps the transfer processes' records (process.OpenPGStore in a node).
	// Required.
	States process.StateStore
	// OnError is both handlers' error policy. Nil means handlers.DefaultOnError.
	OnError handlers.OnError
	// TransferTimeout, when positive, makes transfers not debited within it expire
	// (ExpiringTransferProcess); it needs Scheduler. Zero: transfers never expire.
	TransferTimeout time.Duration
	// Scheduler keeps the transfers' expiry schedules (a *scheduler.Store in a node).
	Scheduler process.Scheduler
}

// BankHandlers are the bank's event handlers, for a node to register.
type BankHandlers struct {
	// Accounts is the bank_accounts projection (strongly consistent).
	Accounts handlers.Projection
	// Transfers runs the transfer process manager (eventually consistent: a strong
	// TransferMoney does not wait for the money to move).
	Transfers handlers.Handler
	// Process is the transfer process manager behind Transfers.
	Process *process.Manager[TransferState]
}

// Registrants returns the handlers for handlers.Runner.Register.
func (h BankHandlers) Registrants() []handlers.Registrant {
	return []handlers.Registrant{h.Accounts, h.Transfers}
}

// Handlers returns the bank's projection and transfer process.
//
// The transfer process starts from the origin and must never be reset: its
// process_state rows are its memory of what it did (a replay with them gone would
// retry withdrawals that were refused long ago).
func Handlers(cfg HandlersConfig) (BankHandlers, error) {
	if cfg.Partitions == 0 {
		cfg.Partitions = 4
	}
	if cfg.TransferPartitions == 0 {
		cfg.TransferPartitions = cfg.Partitions
	}
	if cfg.TransferTimeout < 0 {
		return BankHandlers{}, fmt.Errorf("bank: transfer timeout %s is negative", cfg.TransferTimeout)
	}
	if cfg.TransferTimeout > 0 && cfg.Scheduler == nil {
		return BankHandlers{}, fmt.Errorf("bank: a transfer timeout (%s) needs a Scheduler", cfg.TransferTimeout)
	}
	pc := ExpiringTransferProcess(cfg.TransferTimeout)
	pc.States, pc.Dispatcher, pc.Scheduler = cfg.States, cfg.Dispatcher, cfg.Scheduler
	m, err := process.New(pc)
	if err != nil {
		return BankHandlers{}, fmt.Errorf("bank: transfer process: %w", err)
	}
	return BankHandlers{
		Accounts: AccountsProjection(handlers.Spec{
			Name: ProjectionName, Partitions: cfg.Partitions, StartFrom: handlers.Origin, Strong: true, OnError: cfg.OnError,
		}),
		Transfers: m.Handler(handlers.Spec{
			Name: TransferProcessName, Partitions: cfg.TransferPartitions, StartFrom: handlers.Origin, OnError: cfg.OnError,
			// Only transfers concern it: account events pass without a checkpoint
			// write of their own.
			Filter: isTransferEvent,
		}),
		Process: m,
	}, nil
}
