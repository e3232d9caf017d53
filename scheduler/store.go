package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ringleader-go/ringleader/eventstore/pgstore"
)

// DB is what a Store needs of PostgreSQL: *pgxpool.Pool satisfies it.
type DB interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Option configures a Store or a MemStore.
type Option func(*options)

type options struct {
	check      func(string, json.RawMessage) error
	onSchedule func(Schedule)
}

func apply(opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	return o
}

// WithCheck makes ScheduleOnce refuse (with ErrInvalid) a command check rejects,
// e.g. an unknown command type or a body the router cannot decode. A node passes its
// router's decoder, so a schedule that could never run is refused when it is made.
func WithCheck(check func(commandType string, body json.RawMessage) error) Option {
	return func(o *options) { o.check = check }
}

// WithOnSchedule calls f after every ScheduleOnce that stored a new schedule (a
// node wakes its Firer with it, so a schedule due soon is not left to the next poll).
func WithOnSchedule(f func(Schedule)) Option {
	return func(o *options) { o.onSchedule = f }
}

// Store keeps schedules in PostgreSQL. It is safe for concurrent use.
type Store struct {
	db    DB
	table string
	opts  options
}

var _ Storage = (*Store)(nil)

// TableName is the table of the schedules, created (with its index of pending
// schedules) by the event store's migrations (pgstore.Migrate, `node migrate`) in the
// store's schema.
const TableName = "schedules"

// Open returns the store of the schedules table in schema. An empty schema means
// the connection's search_path (the event store's pool is set to the event store's
// schema). The table comes from the event store's migrations, which pgstore.Open
// applies unless told not to: if it is missing, Open fails with an error wrapping
// pgstore.ErrNotMigrated that says to run `node migrate`.
func Open(ctx context.Context, db DB, schema string, opts ...Option) (*Store, error) {
	table := pgx.Identifier{TableName}
	if schema != "" {
		table = pgx.Identifier{schema, TableName}
	}
	if err := pgstore.RequireTable(ctx, db, schema, TableName); err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	return &Store{db: db, table: table.Sanitize(), opts: apply(opts)}, nil
}

const columns = `schedule_id, partition, command_type, body, headers, due_at, next_attempt_at, state,
	attempts, last_error, fired_by, fired_at, created_at`

func scan(row pgx.Row) (Schedule, error) {
	var s Schedule
	var body, hdrs []byte
	var state string
	if err := row.Scan(&s.ID, &s.Partition, &s.CommandType, &body, &hdrs, &s.DueAt, &s.NextAttemptAt, &state,
		&s.Attempts, &s.LastError, &s.FiredBy, &s.FiredAt, &s.CreatedAt); err != nil {
		return Schedule{}, err
	}
	var h headers
	_ = json.Unmarshal(hdrs, &h)
	s.Body, s.State, s.CorrelationID, s.CausationID = body, State(state), h.CorrelationID, h.CausationID
	return s, nil
}

// ScheduleOnce stores r as a pending schedule and returns it.
//
// It is idempotent by id: if a schedule with r.ID exists with the same command type,
// body (compared as JSON values), headers and due time, nothing changes and the
// existing schedule is returned, whatever its state (so re-scheduling a fired or
// cancelled schedule does not bring it back). If it exists with different content the
// error is a *ConflictError (ErrConflict): to change a schedule, cancel it and
// schedule a new id. A request that is not valid fails with ErrInvalid.
func (s *Store) ScheduleOnce(ctx context.Context, r Request) (Schedule, error) {
	body, hdrs, due, err := r.normalize(s.opts.check)
	if err != nil {
		return Schedule{}, err
	}
	row := s.db.QueryRow(ctx, `INSERT INTO `+s.table+` (schedule_id, partition, command_type, body, headers, due_at, next_attempt_at, state)
VALUES ($1, $2, $3, $4, $5, $6, $6, 'pending') ON CONFLICT (schedule_id) DO NOTHING RETURNING `+columns,
		r.ID, PartitionOf(r.ID), r.CommandType, string(body), string(hdrs), due)
	created, err := scan(row)
	if err == nil {
		if s.opts.onSchedule != nil {
			s.opts.onSchedule(created)
		}
		return created, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Schedule{}, fmt.Errorf("scheduler: schedule %q: %w", r.ID, err)
	}
	var same bool
	var existing Schedule
	row = s.db.QueryRow(ctx, `SELECT `+columns+`, command_type = $2 AND body = $3::jsonb AND headers = $4::jsonb AND due_at = $5
FROM `+s.table+` WHERE schedule_id = $1`, r.ID, r.CommandType, string(body), string(hdrs), due)
	var b, h []byte
	var state string
	err = row.Scan(&existing.ID, &existing.Partition, &existing.CommandType, &b, &h, &existing.DueAt, &existing.NextAttemptAt, &state,
		&existing.Attempts, &existing.LastError, &existing.FiredBy, &existing.FiredAt, &existing.CreatedAt, &same)
	if err != nil {
		return Schedule{}, fmt.Errorf("scheduler: schedule %q: %w", r.ID, err)
	}
	var hh headers
	_ = json.Unmarshal(h, &hh)
	existing.Body, existing.State, existing.CorrelationID, existing.CausationID = b, State(state), hh.CorrelationID, hh.CausationID
	if !same {
		return Schedule{}, &ConflictError{ID: r.ID, Existing: existing}
	}
	return existing, nil
}

// Cancel withdraws a pending schedule. It returns true if the schedule was pending
// and is now cancelled, false if it had already been fired, failed or cancelled, and
// ErrNotFound if there is no such schedule.
//
// A cancel committed before the schedule is due prevents it. A cancel that races
// with its firing may lose: the command runs and the Firer then records the schedule
// as fired (the state says what happened).
func (s *Store) Cancel(ctx context.Context, id string) (bool, error) {
	tag, err := s.db.Exec(ctx, `UPDATE `+s.table+` SET state = 'cancelled', updated_at = now() WHERE schedule_id = $1 AND state = 'pending'`, id)
	if err != nil {
		return false, fmt.Errorf("scheduler: cancel %q: %w", id, err)
	}
	if tag.RowsAffected() == 1 {
		return true, nil
	}
	if _, err := s.Get(ctx, id); err != nil {
		return false, err
	}
	return false, nil
}

// Get returns the schedule id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Schedule, error) {
	sc, err := scan(s.db.QueryRow(ctx, `SELECT `+columns+` FROM `+s.table+` WHERE schedule_id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Schedule{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err != nil {
		return Schedule{}, fmt.Errorf("scheduler: get %q: %w", id, err)
	}
	return sc, nil
}

// Due returns up to limit pending schedules of the given partitions whose next
// attempt is due by the database's clock, earliest first. The database's clock,
// not the node's, decides, so nodes with skewed clocks agree.
func (s *Store) Due(ctx context.Context, partitions []int, limit int) ([]Schedule, error) {
	if len(partitions) == 0 {
		return nil, nil
	}
	rows, err := s.db.Query(ctx, `SELECT `+columns+` FROM `+s.table+`
WHERE state = 'pending' AND partition = ANY($1) AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT $2`, partitions, limit)
	if err != nil {
		return nil, fmt.Errorf("scheduler: due: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Schedule, error) { return scan(r) })
	if err != nil {
		return nil, fmt.Errorf("scheduler: due: %w", err)
	}
	return out, nil
}

// NextDue returns how long until the earliest pending schedule of the given
// partitions is due (zero or negative if one is due now), and false if there is none.
func (s *Store) NextDue(ctx context.Context, partitions []int) (time.Duration, bool, error) {
	if len(partitions) == 0 {
		return 0, false, nil
	}
	var secs *float64
	err := s.db.QueryRow(ctx, `SELECT extract(epoch FROM min(next_attempt_at) - now())::float8 FROM `+s.table+`
WHERE state = 'pending' AND partition = ANY($1)`, partitions).Scan(&secs)
	if err != nil {
		return 0, false, fmt.Errorf("scheduler: next due: %w", err)
	}
	if secs == nil {
		return 0, false, nil
	}
	return time.Duration(*secs * float64(time.Second)), true, nil
}

// MarkFired records that schedule id's command was accepted, by node. A pending
// schedule, or one cancelled while it was being fired, becomes fired; it returns
// false if the schedule was already fired or failed (another node fired it too).
func (s *Store) MarkFired(ctx context.Context, id, node string) (bool, error) {
	tag, err := s.db.Exec(ctx, `UPDATE `+s.table+` SET state = 'fired', fired_at = now(), fired_by = $2, attempts = attempts + 1,
	updated_at = now() WHERE schedule_id = $1 AND state IN ('pending', 'cancelled')`, id, node)
	if err != nil {
		return false, fmt.Errorf("scheduler: mark %q fired: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// MarkFailed records that schedule id's command was refused; reason says why. Only a
// pending schedule changes.
func (s *Store) MarkFailed(ctx context.Context, id, node, reason string) (bool, error) {
	tag, err := s.db.Exec(ctx, `UPDATE `+s.table+` SET state = 'failed', fired_at = now(), fired_by = $2, attempts = attempts + 1,
	last_error = $3, updated_at = now() WHERE schedule_id = $1 AND state = 'pending'`, id, node, reason)
	if err != nil {
		return false, fmt.Errorf("scheduler: mark %q failed: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Postpone records a transient failure of schedule id and sets its next attempt
// after the given delay. Only a pending schedule changes.
func (s *Store) Postpone(ctx context.Context, id, reason string, after time.Duration) error {
	_, err := s.db.Exec(ctx, `UPDATE `+s.table+` SET attempts = attempts + 1, last_error = $2,
	next_attempt_at = now() + make_interval(secs => $3), updated_at = now() WHERE schedule_id = $1 AND state = 'pending'`,
		id, reason, after.Seconds())
	if err != nil {
		return fmt.Errorf("scheduler: postpone %q: %w", id, err)
	}
	return nil
}

// Counts returns how many schedules are in each state.
func (s *Store) Counts(ctx context.Context) (map[State]int64, error) {
	rows, err := s.db.Query(ctx, `SELECT state, count(*) FROM `+s.table+` GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("scheduler: counts: %w", err)
	}
	out := map[State]int64{Pending: 0, Fired: 0, Failed: 0, Cancelled: 0}
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scheduler: counts: %w", err)
		}
		out[State(st)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("scheduler: counts: %w", err)
	}
	return out, nil
}
