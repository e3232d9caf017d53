package bank

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/handlers"
)

// ProjectionName is the handler name of the bank_accounts projection.
const ProjectionName = "bank_accounts"

// Account statuses in bank_accounts.status.
const (
	AccountStatusOpen   = "open"
	AccountStatusClosed = "closed"
)

// ErrProjectionGap: the projection met an account event whose stream version is not
// the next after the row's; an earlier event of the stream was never projected.
var ErrProjectionGap = errors.New("bank: projection: stream version gap")

// AccountRow is one account as the projection keeps it (and ReplayBalances computes
// it).
type AccountRow struct {
	Balance int64
	Status  string
	// Version is the stream version of the last event applied.
	Version int64
}

// accountChange is what one account event does to its account's row.
type accountChange struct {
	accountNumber string
	opened        bool  // AccountOpened: a new row with balance
	balance       int64 // the opening balance, or the balance an event recorded after it (recorded)
	recorded      bool  // balance is the balance the event recorded
	holderName    string
	delta         int64 // a deposit (+) or a withdrawal (-)
	closed        bool
	forgotten     bool // AccountHolderForgotten
}

// accountChangeOf reports whether v, a decoded event of stream streamID, is an
// account event and what it changes.
func accountChangeOf(streamID string, v any) (accountChange, bool) {
	account, ok := strings.CutPrefix(streamID, AccountStreamPrefix)
	if !ok {
		return accountChange{}, false
	}
	var c accountChange
	switch e := v.(type) {
	case AccountOpened:
		c = accountChange{accountNumber: e.AccountNumber, opened: true, balance: e.InitialBalance, holderName: e.HolderName}
	case MoneyDeposited:
		c = accountChange{accountNumber: e.AccountNumber, delta: e.Amount, balance: e.Balance, recorded: true}
	case MoneyWithdrawn:
		c = accountChange{accountNumber: e.AccountNumber, delta: -e.Amount, balance: e.Balance, recorded: true}
	case AccountClosed:
		c = accountChange{accountNumber: e.AccountNumber, closed: true}
	case AccountHolderForgotten:
		c = accountChange{accountNumber: e.AccountNumber, forgotten: true}
	default:
		return accountChange{}, false
	}
	if c.accountNumber == "" {
		c.accountNumber = account // the stream names the account too
	}
	return c, true
}

const accountsDDL = `CREATE TABLE IF NOT EXISTS bank_accounts (
	account_number text PRIMARY KEY,
	balance        bigint      NOT NULL,
	status         text        NOT NULL,
	version        bigint      NOT NULL,
	updated_at     timestamptz NOT NULL DEFAULT now(),
	holder_name    text)`

// accountsHolderDDL adds holder_name to a bank_accounts made before it existed.
const accountsHolderDDL = `ALTER TABLE bank_accounts ADD COLUMN IF NOT EXISTS holder_name text`

// SetupAccounts creates bank_accounts if it is missing (and adds holder_name to an
// older one). The table is unqualified: it lives in the connection's search_path
// (the event store's schema).
//
// holder_name is the holder's name as the events read: NULL when none was given or
// after AccountHolderForgotten, "[forgotten]" (shred.Forgotten) when the account's
// key was deleted without that event.
func SetupAccounts(ctx context.Context, tx pgx.Tx) error {
	for _, ddl := range []string{accountsDDL, accountsHolderDDL} {
		if _, err := tx.Exec(ctx, ddl); err != nil {
			return fmt.Errorf("bank: create bank_accounts: %w", err)
		}
	}
	return nil
}

// ResetAccounts empties bank_accounts for a rebuild.
func ResetAccounts(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `TRUNCATE bank_accounts`); err != nil {
		return fmt.Errorf("bank: truncate bank_accounts: %w", err)
	}
	return nil
}

// ProjectAccount applies one event to bank_accounts inside tx. Other events are
// ignored. Each write applies only if the event's stream version is the row's
// version + 1 (1 for a new row): an event projected before is skipped, and a gap
// fails with ErrProjectionGap.
func ProjectAccount(ctx context.Context, tx pgx.Tx, e handlers.Event) error {
	return ProjectAccounts(ctx, tx, []handlers.Event{e})
}

// ProjectAccounts applies events (in global order) to bank_accounts inside tx like
// ProjectAccount does one by one, sending all their writes in one round trip.
func ProjectAccounts(ctx context.Context, tx pgx.Tx, events []handlers.Event) error {
	type write struct {
		e             eventstore.RecordedEvent
		accountNumber string
	}
	var writes []write
	b := &pgx.Batch{}
	for _, e := range events {
		c, ok := accountChangeOf(e.StreamID, e.Value)
		if !ok {
			continue
		}
		switch {
		case c.opened:
			if e.StreamVersion != 1 {
				return gapError(e.RecordedEvent, 0)
			}
			b.Queue(`INSERT INTO bank_accounts (account_number, balance, status, version, updated_at, holder_name)
VALUES ($1, $2, $3, $4, $5, NULLIF($6, '')) ON CONFLICT (account_number) DO NOTHING`,
				c.accountNumber, c.balance, AccountStatusOpen, e.StreamVersion, e.CreatedAt, c.holderName)
		case c.forgotten:
			b.Queue(`UPDATE bank_accounts SET holder_name = NULL, version = $2, updated_at = $3
WHERE account_number = $1 AND version = $2 - 1`, c.accountNumber, e.StreamVersion, e.CreatedAt)
		case c.closed:
			b.Queue(`UPDATE bank_accounts SET status = $2, version = $3, updated_at = $4
WHERE account_number = $1 AND version = $3 - 1`, c.accountNumber, AccountStatusClosed, e.StreamVersion, e.CreatedAt)
		default:
			b.Queue(`UPDATE bank_accounts SET balance = balance + $2, version = $3, updated_at = $4
WHERE account_number = $1 AND version = $3 - 1`, c.accountNumber, c.delta, e.StreamVersion, e.CreatedAt)
		}
		writes = append(writes, write{e: e.RecordedEvent, accountNumber: c.accountNumber})
	}
	if len(writes) == 0 {
		return nil
	}
	var notApplied []write
	err := func() error {
		br := tx.SendBatch(ctx, b)
		defer br.Close()
		for _, w := range writes {
			tag, err := br.Exec()
			if err != nil {
				return fmt.Errorf("bank: project %s of %s: %w", w.e.Type, w.accountNumber, err)
			}
			if tag.RowsAffected() != 1 {
				notApplied = append(notApplied, w)
			}
		}
		return br.Close()
	}()
	if err != nil {
		return err
	}
	// Not applied: projected before (fine), or a gap (a bug upstream). Asking after
	// the whole page is as good as asking at once: a stream's events come in version
	// order, so once one does not apply for a gap none of its stream's later ones do.
	for _, w := range notApplied {
		var have int64
		err := tx.QueryRow(ctx, `SELECT version FROM bank_accounts WHERE account_number = $1`, w.accountNumber).Scan(&have)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("bank: project %s of %s: %w", w.e.Type, w.accountNumber, err)
		}
		if have < w.e.StreamVersion {
			return gapError(w.e, have)
		}
	}
	return nil
}

func gapError(e eventstore.RecordedEvent, have int64) error {
	return fmt.Errorf("%w: %s %s version %d, projected up to %d", ErrProjectionGap, e.StreamID, e.Type, e.StreamVersion, have)
}

// AccountsProjection returns the bank_accounts projection with spec (Name defaults
// to ProjectionName).
func AccountsProjection(spec handlers.Spec) handlers.Projection {
	if spec.Name == "" {
		spec.Name = ProjectionName
	}
	return handlers.Projection{Spec: spec, Setup: SetupAccounts, ProjectPage: ProjectAccounts, Reset: ResetAccounts}
}

// Querier is what LoadAccounts needs: *pgxpool.Pool, *pgx.Conn and pgx.Tx satisfy it.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// LoadAccounts reads bank_accounts, by account number.
func LoadAccounts(ctx context.Context, q Querier) (map[string]AccountRow, error) {
	rows, err := q.Query(ctx, `SELECT account_number, balance, status, version FROM bank_accounts`)
	if err != nil {
		return nil, fmt.Errorf("bank: read bank_accounts: %w", err)
	}
	defer rows.Close()
	out := make(map[string]AccountRow)
	for rows.Next() {
		var n string
		var r AccountRow
		if err := rows.Scan(&n, &r.Balance, &r.Status, &r.Version); err != nil {
			return nil, fmt.Errorf("bank: read bank_accounts: %w", err)
		}
		out[n] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("bank: read bank_accounts: %w", err)
	}
	return out, nil
}

// LoadHolderNames reads bank_accounts' holder names, by account number; accounts
// without one (none given, or forgotten by AccountHolderForgotten) are absent.
func LoadHolderNames(ctx context.Context, q Querier) (map[string]string, error) {
	rows, err := q.Query(ctx, `SELECT account_number, holder_name FROM bank_accounts WHERE holder_name IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("bank: read bank_accounts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct{ n, h string }, error) {
		var v struct{ n, h string }
		err := r.Scan(&v.n, &v.h)
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("bank: read bank_accounts: %w", err)
	}
	names := make(map[string]string, len(out))
	for _, v := range out {
		names[v.n] = v.h
	}
	return names, nil
}

// ReplayBalances computes every account's row from raw events, in any order of
// streams but each stream's events in version order (the global order qualifies).
// Non-account events are ignored. It is the reference the projection is checked
// against, and it checks the store too: a version gap, an event before its account
// was opened, a balance that disagrees with the event's recorded balance or that goes
// negative is an error.
func ReplayBalances(events []eventstore.RecordedEvent) (map[string]AccountRow, error) {
	out := make(map[string]AccountRow)
	var errs []error
	for _, e := range events {
		v, err := decoder.DecodeEvent(e)
		if err != nil {
			errs = append(errs, fmt.Errorf("bank: replay: %s at %d: %w", e.Type, e.GlobalPosition, err))
			continue
		}
		c, ok := accountChangeOf(e.StreamID, v)
		if !ok {
			continue
		}
		r, exists := out[c.accountNumber]
		if e.StreamVersion != r.Version+1 {
			errs = append(errs, gapError(e, r.Version))
			continue
		}
		if !exists && !c.opened {
			errs = append(errs, fmt.Errorf("bank: replay: %s of %s before AccountOpened", e.Type, c.accountNumber))
			continue
		}
		switch {
		case c.opened:
			r = AccountRow{Balance: c.balance, Status: AccountStatusOpen}
		case c.closed:
			r.Status = AccountStatusClosed
		default:
			r.Balance += c.delta
		}
		r.Version = e.StreamVersion
		if c.recorded && c.balance != r.Balance {
			errs = append(errs, fmt.Errorf("bank: replay: %s v%d records balance %d, replay gives %d", e.StreamID, e.StreamVersion, c.balance, r.Balance))
		}
		if r.Balance < 0 {
			errs = append(errs, fmt.Errorf("bank: replay: %s v%d: negative balance %d", e.StreamID, e.StreamVersion, r.Balance))
		}
		out[c.accountNumber] = r
	}
	return out, errors.Join(errs...)
}

// decoder decodes raw events for ReplayBalances, as a node's handlers runner does
// for the projection.
var decoder = NewRouter(Config{})

// ReadAllEvents reads the whole global order of r, for checkers.
func ReadAllEvents(ctx context.Context, r eventstore.AllReader) ([]eventstore.RecordedEvent, error) {
	var all []eventstore.RecordedEvent
	from := int64(0)
	for {
		page, err := r.ReadAll(ctx, from, eventstore.DefaultPageSize)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < eventstore.DefaultPageSize {
			return all, nil
		}
		from = page[len(page)-1].GlobalPosition + 1
	}
}

// DiffAccounts describes the differences between two sets of account rows (e.g.
// the projection and ReplayBalances), sorted; empty when they are equal.
func DiffAccounts(got, want map[string]AccountRow) []string {
	var diffs []string
	for n, w := range want {
		if g, ok := got[n]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: missing, want %+v", n, w))
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("%s: %+v, want %+v", n, g, w))
		}
	}
	for n, g := range got {
		if _, ok := want[n]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: %+v, not in the store", n, g))
		}
	}
	sort.Strings(diffs)
	return diffs
}
