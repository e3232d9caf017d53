package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
	"github.com/ringleader-go/ringleader/handlers"
	"github.com/ringleader-go/ringleader/placement"
)

// countsProjection keeps, per stream, how many events it projected and the last
// version: a double-counted or skipped event shows as n != last version.
func countsProjection(name string, k int) handlers.Projection {
	return handlers.Projection{
		Spec: handlers.Spec{Name: name, Partitions: k, Strong: true,
			OnError: func(f handlers.Failure) (handlers.Decision, time.Duration) { return handlers.Retry, time.Millisecond }},
		Setup: func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS counts (stream_id text PRIMARY KEY, n bigint NOT NULL, last_version bigint NOT NULL)`)
			return err
		},
		Project: func(ctx context.Context, tx pgx.Tx, e handlers.Event) error {
			_, err := tx.Exec(ctx, `INSERT INTO counts (stream_id, n, last_version) VALUES ($1, 1, $2)
				ON CONFLICT (stream_id) DO UPDATE SET n = counts.n + 1, last_version = EXCLUDED.last_version`,
				e.StreamID, e.StreamVersion)
			return err
		},
		Reset: func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `TRUNCATE counts`)
			return err
		},
	}
}

type countRow struct {
	stream  string
	n, last int64
}

func readCounts(t testing.TB, s *pgstore.Store) []countRow {
	t.Helper()
	rows, err := s.Pool().Query(context.Background(), `SELECT stream_id, n, last_version FROM counts ORDER BY stream_id`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (countRow, error) {
		var c countRow
		return c, r.Scan(&c.stream, &c.n, &c.last)
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkCounts checks every stream prefix-0…streams-1 was counted exactly perStream
// times, in order.
func checkCounts(t testing.TB, s *pgstore.Store, streams, perStream int) {
	t.Helper()
	rows := readCounts(t, s)
	if len(rows) != streams {
		t.Fatalf("%d streams projected, want %d", len(rows), streams)
	}
	for _, r := range rows {
		if r.n != int64(perStream) || r.last != int64(perStream) {
			t.Errorf("stream %s: counted %d, last version %d, want %d", r.stream, r.n, r.last, perStream)
		}
	}
}

func TestProjectionExactlyOnceUnderCrashBeforeCommit(t *testing.T) {
	store := pgtest.NewStore(t)
	ctx := context.Background()
	var crashes atomic.Int32
	var mu sync.Mutex
	crashed := map[int64]bool{}
	knobs := &handlers.TestingKnobs{AfterProject: func(_ string, _ int, e eventstore.RecordedEvent) error {
		mu.Lock()
		defer mu.Unlock()
		if e.StreamVersion%3 == 0 && !crashed[e.GlobalPosition] {
			crashed[e.GlobalPosition] = true
			crashes.Add(1)
			return errors.New("crash between Project and commit")
		}
		return nil
	}}
	p := countsProjection("counts", 2)
	p.BatchSize = 10
	r := newRunner(t, handlers.RunnerConfig{Store: store, PG: store, Knobs: knobs}, p)
	appendSpread(t, store, "acc", 12, 6)
	waitFor(t, 20*time.Second, func() error { return caughtUp(ctx, r, "counts") })
	checkCounts(t, store, 12, 6)
	if crashes.Load() < 24 {
		t.Fatalf("only %d crashes forced", crashes.Load())
	}
}

func TestFencingAdvisoryLockLetsOneRunnerProcess(t *testing.T) {
	store := pgtest.NewStore(t)
	ctx := context.Background()
	rec := newRecorder()
	var mu sync.Mutex
	by := map[string]map[int]bool{}
	mk := func(node string) handlers.Handler {
		return handlers.Handler{Spec: handlers.Spec{Name: "fenced", Partitions: 2}, Handle: func(ctx context.Context, e handlers.Event) error {
			mu.Lock()
			if by[node] == nil {
				by[node] = map[int]bool{}
			}
			by[node][placement.StreamPartition(e.StreamID, 2)] = true
			mu.Unlock()
			return rec.handle(ctx, e)
		}}
	}
	// Both are told they own everything: a split brain.
	a := newRunner(t, handlers.RunnerConfig{Store: store, PG: store, NodeID: "a"}, mk("a"))
	b := newRunner(t, handlers.RunnerConfig{Store: store, PG: store, NodeID: "b"}, mk("b"))
	appendSpread(t, store, "f", 10, 3)
	waitFor(t, 10*time.Second, func() error {
		if rec.distinct() != 30 {
			return fmt.Errorf("%d of 30", rec.distinct())
		}
		for i := range 2 {
			sa, sb := statusOf(t, a, "fenced", i), statusOf(t, b, "fenced", i)
			states := []handlers.State{sa.State, sb.State}
			sort.Slice(states, func(x, y int) bool { return states[x] < states[y] })
			if states[0] != handlers.StateRunning || states[1] != handlers.StateWaitingForLock {
				return fmt.Errorf("partition %d: a %s, b %s", i, sa.State, sb.State)
			}
		}
		return nil
	})
	mu.Lock()
	for i := range 2 {
		if by["a"][i] && by["b"][i] {
			t.Errorf("partition %d ran on both runners", i)
		}
	}
	mu.Unlock()
	// The holder of partition 0 goes away; the other takes over within a lock retry.
	holder, other := a, b
	if statusOf(t, b, "fenced", 0).State == handlers.StateRunning {
		holder, other = b, a
	}
	_ = holder.Close()
	appendSpread(t, store, "f", 10, 2)
	waitFor(t, 10*time.Second, func() error {
		if rec.distinct() != 50 {
			return fmt.Errorf("%d of 50", rec.distinct())
		}
		for i := range 2 {
			if s := statusOf(t, other, "fenced", i); s.State != handlers.StateRunning {
				return fmt.Errorf("partition %d on the survivor: %s", i, s.State)
			}
		}
		return caughtUp(ctx, other, "fenced")
	})
	rec.checkExactlyOnceInOrder(t, 50)
}

func TestLostLockConnectionStopsThePartitionAtOnce(t *testing.T) {
	store := pgtest.NewStore(t)
	ctx := context.Background()
	first := appendN(t, store, "s", 1)[0]
	inside := make(chan struct{})
	var cancelled atomic.Bool
	rec := newRecorder()
	r := newRunner(t, handlers.RunnerConfig{Store: store, PG: store}, handlers.Handler{
		Spec: handlers.Spec{Name: "locked"},
		Handle: func(ctx context.Context, e handlers.Event) error {
			if e.ID == first.ID && !cancelled.Load() {
				close(inside)
				<-ctx.Done() // blocks until the lock is lost
				cancelled.Store(true)
				return ctx.Err()
			}
			return rec.handle(ctx, e)
		},
	})
	<-inside
	// Kill the session holding the partition's advisory lock.
	conn := pgtest.Connect(t)
	tag, err := conn.Exec(ctx, `SELECT pg_terminate_backend(l.pid) FROM pg_locks l
		WHERE l.locktype = 'advisory' AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended($1, 0)`,
		store.Schema()+"."+handlers.CheckpointName("locked", 0))
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("terminate lock session: %v (%d rows)", err, tag.RowsAffected())
	}
	waitFor(t, 5*time.Second, func() error {
		if !cancelled.Load() {
			return errors.New("Handle's ctx did not end")
		}
		if rec.distinct() != 1 {
			return errors.New("the event was not redelivered on a new session")
		}
		return caughtUp(ctx, r, "locked")
	})
	if s := statusOf(t, r, "locked", 0); s.State != handlers.StateRunning {
		t.Fatalf("after reconnecting: %+v", s)
	}
}

func TestWaitForReturnsAfterTheProjectionHasTheEvent(t *testing.T) {
	store := pgtest.NewStore(t)
	ctx := context.Background()
	r := newRunner(t, handlers.RunnerConfig{Store: store, PG: store}, countsProjection("strong", 4))
	if err := r.WaitFor(ctx, &aggregate.Result{StreamID: "none"}); err != nil {
		t.Fatalf("no events: %v", err)
	}
	for i := range 20 {
		stream := fmt.Sprintf("w-%d", i)
		ev := appendN(t, store, stream, 1)[0]
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := r.WaitFor(wctx, &aggregate.Result{StreamID: stream, Events: []aggregate.Event{{GlobalPosition: ev.GlobalPosition}}})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		if err := store.Pool().QueryRow(ctx, `SELECT n FROM counts WHERE stream_id = $1`, stream).Scan(&n); err != nil || n != 1 {
			t.Fatalf("right after WaitFor, %s counted %d (%v)", stream, n, err)
		}
	}
	// Stop the handler here (no node owns it): a strong wait times out, events stay.
	r.SetOwnership(func(string) bool { return false })
	waitFor(t, 5*time.Second, func() error {
		for i := range 4 {
			if s := statusOf(t, r, "strong", i); s.State != handlers.StateStopped {
				return fmt.Errorf("partition %d %s", i, s.State)
			}
		}
		return nil
	})
	ev := appendN(t, store, "late", 1)[0]
	wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	err := r.WaitFor(wctx, &aggregate.Result{StreamID: "late", Events: []aggregate.Event{{GlobalPosition: ev.GlobalPosition}}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stopped handler: %v, want deadline exceeded", err)
	}
	if err := r.WaitForPosition(ctx, "late", ev.GlobalPosition, "nope"); !errors.Is(err, handlers.ErrUnknownHandler) {
		t.Fatalf("unknown name: %v", err)
	}
}

func TestResetRebuildsTheProjectionIdenticallyAcrossNodes(t *testing.T) {
	store := pgtest.NewStore(t)
	ctx := context.Background()
	only := func(i int) func(string) bool {
		return func(key string) bool { return key == placement.HandlerPartitionKey("rebuild", i) }
	}
	a := newRunner(t, handlers.RunnerConfig{Store: store, PG: store, NodeID: "a", Owns: only(0)}, countsProjection("rebuild", 2))
	b := newRunner(t, handlers.RunnerConfig{Store: store, PG: store, NodeID: "b", Owns: only(1)}, countsProjection("rebuild", 2))
	appendSpread(t, store, "r", 10, 4)
	waitFor(t, 10*time.Second, func() error { return caughtUp(ctx, a, "rebuild") })
	before := readCounts(t, store)
	checkCounts(t, store, 10, 4)

	// Corrupt the read model so that a rebuild is visible.
	if _, err := store.Pool().Exec(ctx, `UPDATE counts SET n = 99`); err != nil {
		t.Fatal(err)
	}
	if err := a.Reset(ctx, "rebuild"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() error {
		if err := caughtUp(ctx, a, "rebuild"); err != nil {
			return err
		}
		if got := readCounts(t, store); fmt.Sprint(got) != fmt.Sprint(before) {
			return fmt.Errorf("rebuilt %v, want %v", got, before)
		}
		return nil
	})
	if s := statusOf(t, b, "rebuild", 1); s.State != handlers.StateRunning {
		t.Fatalf("b's partition after the reset: %+v", s)
	}
}

// TestProjectPageTakesWholePagesAndRedoesAFailedOneEventByEvent: a projection with
// ProjectPage gets the partition's events a page at a time; a page holding an event
// it cannot project is rolled back and redone in one-event pages, so the error policy
// (Skip here) applies to that event alone and every other event counts exactly once.
func TestProjectPageTakesWholePagesAndRedoesAFailedOneEventByEvent(t *testing.T) {
	store := pgtest.NewStore(t)
	const streams, perStream = 10, 20
	appendSpread(t, store, "paged", streams, perStream/2)
	appendN(t, store, "poison", 1)
	appendSpread(t, store, "paged", streams, perStream/2)

	var mu sync.Mutex
	var largest int
	var skipped []string
	p := handlers.Projection{
		Spec: handlers.Spec{Name: "paged", Partitions: 2,
			OnError: func(f handlers.Failure) (handlers.Decision, time.Duration) {
				mu.Lock()
				defer mu.Unlock()
				skipped = append(skipped, f.Event.StreamID)
				return handlers.Skip, 0
			}},
		Setup: countsProjection("", 1).Setup,
		ProjectPage: func(ctx context.Context, tx pgx.Tx, events []handlers.Event) error {
			mu.Lock()
			largest = max(largest, len(events))
			mu.Unlock()
			b := &pgx.Batch{}
			for _, e := range events {
				if e.StreamID == "poison" {
					return errors.New("cannot project poison")
				}
				b.Queue(`INSERT INTO counts (stream_id, n, last_version) VALUES ($1, 1, $2)
					ON CONFLICT (stream_id) DO UPDATE SET n = counts.n + 1, last_version = EXCLUDED.last_version`,
					e.StreamID, e.StreamVersion)
			}
			return tx.SendBatch(ctx, b).Close()
		},
	}
	newRunner(t, handlers.RunnerConfig{Store: store, PG: store}, p)
	waitFor(t, 20*time.Second, func() error {
		var total int64
		for _, c := range readCounts(t, store) {
			total += c.n
		}
		if total < streams*perStream {
			return fmt.Errorf("%d of %d events projected", total, streams*perStream)
		}
		return nil
	})
	checkCounts(t, store, streams, perStream)
	mu.Lock()
	defer mu.Unlock()
	if largest < 2 {
		t.Errorf("ProjectPage got at most %d events at once: pages were not used", largest)
	}
	if len(skipped) != 1 || skipped[0] != "poison" {
		t.Errorf("skipped %v, want the poison event alone", skipped)
	}
}
