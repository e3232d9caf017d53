// Package testapp is a minimal application for the runtime's own tests, deliberately
// not the bank: one aggregate type, Counter, and its Strong projection
// testapp_counters, so that tests of the node, the deployment files and the
// transport do not depend on an example domain (the bank may change freely).
//
// A counter ("counter-<id>") is added to by positive amounts until it is closed; only
// a counter never added to can be closed. Add's optional Note is personal data of the
// subject "counter:<id>", forgotten by Forget.
package testapp

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ringleader-go/ringleader"
	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/eventstore/shred"
	"github.com/ringleader-go/ringleader/handlers"
)

// Names of the application's streams, projection and data subjects.
const (
	StreamPrefix      = "counter-"
	ProjectionName    = "testapp_counters"
	NoteSubjectPrefix = "counter:"
)

// Domain errors a counter rejects commands with (in an *aggregate.RejectedError).
var (
	ErrNotPositive = errors.New("n must be positive")
	ErrClosed      = errors.New("counter closed")
	ErrNotZero     = errors.New("counter total is not zero")
)

// Add adds N (> 0) to counter ID. Note, optional, is personal data.
type Add struct {
	ID   string `json:"id"`
	N    int64  `json:"n"`
	Note string `json:"note,omitempty"`
}

// Validate refuses N <= 0 (code invalid).
func (c Add) Validate() error {
	if c.N <= 0 {
		return fmt.Errorf("%w, got %d", ErrNotPositive, c.N)
	}
	return nil
}

// Close closes counter ID, whose total must be zero.
type Close struct {
	ID string `json:"id"`
}

// Forget forgets the notes of counter ID; forgetting twice records nothing.
type Forget struct {
	ID string `json:"id"`
}

// Added records an addition and the total after it.
type Added struct {
	ID    string `json:"id"`
	N     int64  `json:"n"`
	Total int64  `json:"total"`
	Note  string `json:"note,omitempty"`
}

// Closed records a closed counter.
type Closed struct {
	ID string `json:"id"`
}

// Forgotten records that the counter's notes were forgotten (its key deleted).
type Forgotten struct {
	ID string `json:"id"`
}

// Counter is the state of a counter aggregate.
type Counter struct {
	Total     int64 `json:"total"`
	Closed    bool  `json:"closed"`
	Forgotten bool  `json:"forgotten"`
}

// Execute decides a command: Add and Close are refused on a closed counter, Close
// on a counter whose total is not zero.
func (s *Counter) Execute(command any) ([]any, error) {
	switch c := command.(type) {
	case Add:
		if s.Closed {
			return nil, ErrClosed
		}
		return []any{Added{ID: c.ID, N: c.N, Total: s.Total + c.N, Note: c.Note}}, nil
	case Close:
		if s.Closed {
			return nil, ErrClosed
		}
		if s.Total != 0 {
			return nil, ErrNotZero
		}
		return []any{Closed(c)}, nil
	case Forget:
		if s.Forgotten {
			return nil, nil
		}
		return []any{Forgotten(c)}, nil
	}
	return nil, fmt.Errorf("testapp: not a counter command: %T", command)
}

// Apply folds an event into the counter.
func (s *Counter) Apply(event any) {
	switch e := event.(type) {
	case Added:
		s.Total = e.Total
	case Closed:
		s.Closed = true
	case Forgotten:
		s.Forgotten = true
	}
}

// NewRouter returns the router of the counter commands.
func NewRouter() *aggregate.Router {
	counter := aggregate.NewType[Counter]("counter", aggregate.TypeConfig{StreamPrefix: StreamPrefix}, Added{}, Closed{}, Forgotten{})
	r := aggregate.NewRouter()
	aggregate.Route(r, counter, func(c Add) string { return c.ID })
	aggregate.Route(r, counter, func(c Close) string { return c.ID })
	aggregate.Route(r, counter, func(c Forget) string { return c.ID })
	return r
}

// App returns the test application: the counter router, the Strong projection
// testapp_counters and the Note shredding rules.
func App() ringleader.App {
	return ringleader.App{
		Name:   "testapp",
		Router: NewRouter(),
		Shred: func(keys *shred.Keys) shred.Config {
			return shred.Config{
				Keys:   keys,
				Rules:  []shred.Rule{{EventType: "Added", SubjectField: "id", SubjectPrefix: NoteSubjectPrefix, Fields: []shred.Field{{Name: "note"}}}},
				Forget: []shred.ForgetRule{{EventType: "Forgotten", SubjectField: "id", SubjectPrefix: NoteSubjectPrefix}},
			}
		},
		Handlers: func(ringleader.Host) ([]handlers.Registrant, error) {
			return []handlers.Registrant{Projection()}, nil
		},
	}
}

// Projection returns testapp_counters (id, total, closed, version, note): one row per
// counter, its note the last one added (NULL once forgotten). Strong: a dispatch with
// strong consistency waits for it.
func Projection() handlers.Projection {
	return handlers.Projection{
		Spec: handlers.Spec{Name: ProjectionName, StartFrom: handlers.Origin, Strong: true},
		Setup: func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS testapp_counters (id text PRIMARY KEY,
	total bigint NOT NULL, closed boolean NOT NULL, version bigint NOT NULL, note text)`)
			return err
		},
		Project: project,
		Reset: func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `TRUNCATE testapp_counters`)
			return err
		},
	}
}

// project applies one event to its counter's row, unless the row already holds the
// event's stream version or a later one (the event was projected before).
func project(ctx context.Context, tx pgx.Tx, e handlers.Event) error {
	const upsert = `INSERT INTO testapp_counters AS c (id, total, closed, version, note) VALUES ($1, $2, $3, $4, NULLIF($5, ''))
ON CONFLICT (id) DO UPDATE SET version = $4, `
	var set string
	var args []any
	switch v := e.Value.(type) {
	case Added:
		set, args = `total = $2, note = coalesce(NULLIF($5, ''), c.note)`, []any{v.ID, v.Total, false, e.StreamVersion, v.Note}
	case Closed:
		set, args = `closed = true`, []any{v.ID, 0, true, e.StreamVersion, ""}
	case Forgotten:
		set, args = `note = NULL`, []any{v.ID, 0, false, e.StreamVersion, ""}
	default:
		return nil
	}
	if _, err := tx.Exec(ctx, upsert+set+` WHERE c.version < $4`, args...); err != nil {
		return fmt.Errorf("testapp: project %s v%d: %w", e.StreamID, e.StreamVersion, err)
	}
	return nil
}
