package pgstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
)

func oneEvent(typ string) []eventstore.EventData {
	return []eventstore.EventData{{Type: typ, Data: []byte(`{}`)}}
}

// schemaConn is a connection of its own to the store's schema, for transactions the
// test holds open.
func schemaConn(t *testing.T, s *pgstore.Store) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(pgtest.DSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = pgx.Identifier{s.Schema()}.Sanitize()
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// beginAppend runs rl_append inside a transaction it leaves open.
func beginAppend(t *testing.T, conn *pgx.Conn, stream string) (pgx.Tx, int64) {
	t.Helper()
	ctx := context.Background()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pos, version int64
	var at time.Time
	if err := tx.QueryRow(ctx, pgstore.AppendSQL, appendArgs(t, stream, 0, 0, oneEvent("Slow"))...).Scan(&pos, &version, &at); err != nil {
		t.Fatal(err)
	}
	return tx, pos
}

// appendArgs is pgstore.AppendArgs for arguments known to be valid.
func appendArgs(t *testing.T, stream string, expected int64, earlier int, events []eventstore.EventData) []any {
	t.Helper()
	args, err := pgstore.AppendArgs(stream, expected, earlier, events, 0)
	if err != nil {
		t.Fatal(err)
	}
	return args
}

// readAllEventually reads $all from from until it returns want events (or 15 s pass):
// the watermark covers every transaction in the PostgreSQL cluster, including other
// tests' running beside this one, so visibility may lag a commit.
func readAllEventually(t *testing.T, s *pgstore.Store, from int64, want int) []eventstore.RecordedEvent {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := s.ReadAll(context.Background(), from, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) >= want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func positions(events []eventstore.RecordedEvent) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		out[i] = e.GlobalPosition
	}
	return out
}

// TestReadAllDoesNotSkipASlowTransaction holds one append's transaction open while
// later-numbered appends commit, and shows that ReadAll holds those back until the
// slow one ends, so a reader continuing from its last position never skips it.
func TestReadAllDoesNotSkipASlowTransaction(t *testing.T) {
	for _, outcome := range []string{"commit", "rollback"} {
		t.Run(outcome, func(t *testing.T) {
			ctx := context.Background()
			s := pgtest.NewStore(t)
			first, err := s.Append(ctx, "a", eventstore.NoStream, oneEvent("First"))
			if err != nil {
				t.Fatal(err)
			}
			p1 := first[0].GlobalPosition

			tx, slow := beginAppend(t, schemaConn(t, s), "slow")
			var later []int64
			for _, stream := range []string{"b", "c"} {
				rec, err := s.Append(ctx, stream, eventstore.NoStream, oneEvent("Later"))
				if err != nil {
					t.Fatal(err)
				}
				later = append(later, rec[0].GlobalPosition)
			}
			if !(p1 < slow && slow < later[0] && later[0] < later[1]) {
				t.Fatalf("positions %d, %d, %v: the slow append should sit between", p1, slow, later)
			}

			// The scenario is real: committed rows above the open one are there to see.
			var naive []int64
			rows, _ := s.Pool().Query(ctx, "SELECT global_position FROM events WHERE global_position > $1 ORDER BY 1", p1)
			naive, err = pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil || fmt.Sprint(naive) != fmt.Sprint(later) {
				t.Fatalf("a reader without the watermark sees %v (%v), want %v", naive, err, later)
			}

			got, err := s.ReadAll(ctx, p1+1, 100)
			if err != nil || len(got) != 0 {
				t.Fatalf("ReadAll past %d while position %d is uncommitted: %v, %v; want nothing", p1, slow, positions(got), err)
			}
			// Other tests' transactions may hold the head further back, never forward.
			if head, err := s.HeadPosition(ctx); err != nil || head > p1 {
				t.Fatalf("head %d, %v while %d is uncommitted; want at most %d", head, err, slow, p1)
			}

			want := later
			if outcome == "commit" {
				err = tx.Commit(ctx)
				want = append([]int64{slow}, later...)
			} else {
				err = tx.Rollback(ctx)
			}
			if err != nil {
				t.Fatal(err)
			}
			got = readAllEventually(t, s, p1+1, len(want))
			if fmt.Sprint(positions(got)) != fmt.Sprint(want) {
				t.Fatalf("after %s: ReadAll = %v; want %v", outcome, positions(got), want)
			}
		})
	}
}

// TestAppendsInsideALargerTransaction: AppendSQL works in a transaction that wrote
// something else first, and several appends in one transaction, each told how many
// came before, get consecutive positions in the transaction's own range.
func TestAppendsInsideALargerTransaction(t *testing.T) {
	ctx := context.Background()
	s := pgtest.NewStore(t)
	conn := schemaConn(t, s)
	var got []int64
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO checkpoints (name, position) VALUES ('other write', 1)"); err != nil {
			return err
		}
		for i, step := range []struct {
			stream   string
			expected int64
		}{{"x", 0}, {"y", 0}, {"x", 1}} {
			if _, err := tx.Exec(ctx, pgstore.AppendSQL, appendArgs(t, step.stream, step.expected, i, oneEvent("E"))...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("three appends in one transaction: %v", err)
	}
	all := readAllEventually(t, s, 1, 3)
	if len(all) != 3 {
		t.Fatalf("ReadAll: %v; want 3 events", all)
	}
	for i, e := range all {
		got = append(got, e.GlobalPosition)
		if i > 0 && e.GlobalPosition != got[i-1]+1 {
			t.Errorf("positions in one transaction %v, want consecutive", got)
		}
	}
	if all[0].GlobalPosition/pgstore.PositionsPerTransaction != all[2].GlobalPosition/pgstore.PositionsPerTransaction {
		t.Errorf("positions %v span two transactions' ranges", got)
	}
	if v, _ := s.StreamVersion(ctx, "x"); v != 2 {
		t.Errorf("stream x at version %d, want 2", v)
	}
}

// TestTailingReaderSeesEveryEventOnce races writers whose transactions stall for a
// random while before committing against a reader that tails $all from its last
// position, as an event handler does. The reader must see every committed event
// exactly once, in increasing position order.
func TestTailingReaderSeesEveryEventOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := pgtest.NewStore(t)
	const writers, txEach = 6, 25

	var wg sync.WaitGroup
	for w := range writers {
		conn := schemaConn(t, s)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range txEach {
				err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
					args, err := pgstore.AppendArgs(fmt.Sprintf("w%d", w), int64(i), 0, oneEvent("E"), 0)
					if err != nil {
						return err
					}
					if _, err := tx.Exec(ctx, pgstore.AppendSQL, args...); err != nil {
						return err
					}
					_, err = tx.Exec(ctx, "SELECT pg_sleep($1)", rand.Float64()*0.004)
					return err
				})
				if err != nil {
					t.Errorf("writer %d tx %d: %v", w, i, err)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	var seen []int64
	next := int64(1)
	read := func() int {
		page, err := s.ReadAll(ctx, next, 7)
		if err != nil {
			t.Fatalf("ReadAll: %v", err)
		}
		for _, e := range page {
			seen = append(seen, e.GlobalPosition)
			next = e.GlobalPosition + 1
		}
		return len(page)
	}
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		for read() > 0 {
		}
		time.Sleep(time.Millisecond)
	}
	rows, _ := s.Pool().Query(ctx, "SELECT global_position FROM events ORDER BY 1")
	stored, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	// Drain: the watermark may still hold the last events back while other tests'
	// transactions run.
	for deadline := time.Now().Add(15 * time.Second); len(seen) < len(stored) && time.Now().Before(deadline); {
		if read() == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if len(stored) != writers*txEach {
		t.Fatalf("%d events stored, want %d", len(stored), writers*txEach)
	}
	if fmt.Sprint(seen) != fmt.Sprint(stored) {
		t.Fatalf("the tailing reader saw %d events, the store holds %d:\nseen   %v\nstored %v", len(seen), len(stored), seen, stored)
	}
}
