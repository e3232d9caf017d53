// Command storebench measures the PostgreSQL event store's appends against a baseline
// measured in the same run: bare pgx INSERTs into a table shaped like `events` (same
// columns, keys and indexes), one transaction per append, with no version check, no
// watermark and no notification. It prints appends/s, events/s and p50/p99 latency for
// each concurrency and batch size, and the store-to-baseline ratio.
//
//	go run ./bench/storebench -dsn postgres://postgres@127.0.0.1:5432/test -duration 3s
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ringleader-go/ringleader/bench/internal/load"
	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore"
)

func main() {
	dsn := flag.String("dsn", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL DSN")
	duration := flag.Duration("duration", 3*time.Second, "how long each case runs")
	concurrency := flag.String("concurrency", "1,8,32", "comma-separated numbers of concurrent appenders")
	batches := flag.String("events", "1,10", "comma-separated numbers of events per append")
	flag.Parse()
	if err := run(*dsn, *duration, ints(*concurrency), ints(*batches)); err != nil {
		fmt.Fprintln(os.Stderr, "storebench:", err)
		os.Exit(1)
	}
}

func ints(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "storebench: %q is not a positive number\n", f)
			os.Exit(2)
		}
		out = append(out, n)
	}
	return out
}

func run(dsn string, duration time.Duration, concurrency, batches []int) error {
	ctx := context.Background()
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	schema := "rl_bench_" + hex.EncodeToString(suffix)
	maxConns := int32(slices.Max(concurrency) + 2)

	store, err := pgstore.Open(ctx, dsn, pgstore.WithSchema(schema),
		pgstore.WithPoolConfig(func(c *pgxpool.Config) { c.MaxConns = maxConns }))
	if err != nil {
		return err
	}
	defer store.Close()
	defer func() {
		_, _ = store.Pool().Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	}()
	pool := store.Pool()
	// The baseline table: the events table's shape, keys and indexes.
	if _, err := pool.Exec(ctx, `CREATE TABLE baseline (LIKE events INCLUDING ALL)`); err != nil {
		return fmt.Errorf("create baseline table: %w", err)
	}
	if _, err := pool.Exec(ctx, `CREATE SEQUENCE baseline_seq`); err != nil {
		return err
	}

	fmt.Printf("event store append benchmark: PostgreSQL, %s per case, schema %s\n", duration, schema)
	fmt.Printf("%-9s %-7s | %-31s | %-31s | %s\n", "", "", "ringleader pgstore", "baseline: bare pgx INSERT", "")
	fmt.Printf("%-9s %-7s | %9s %9s %5s %5s | %9s %9s %5s %5s | %s\n",
		"appenders", "events", "appends/s", "events/s", "p50", "p99", "appends/s", "events/s", "p50", "p99", "ratio")
	round := 0
	baseline := map[int]float64{} // single-event baseline appends/s by concurrency
	for _, n := range batches {
		for _, c := range concurrency {
			round++
			data := batch(n)
			storeVersions := make([]int64, c)
			storeCase := func(w, i int) error {
				stream := fmt.Sprintf("bench-%d-%d", round, w)
				rec, err := store.Append(ctx, stream, eventstore.Exact(storeVersions[w]), data)
				if err == nil {
					storeVersions[w] = rec[len(rec)-1].StreamVersion
				}
				return err
			}
			baseVersions := make([]int64, c)
			baseCase := func(w, i int) error {
				stream := fmt.Sprintf("base-%d-%d", round, w)
				v := baseVersions[w]
				baseVersions[w] += int64(n)
				return bareInsert(ctx, pool, stream, v, data)
			}
			base, err := load.Run(c, duration, baseCase)
			if err != nil {
				return fmt.Errorf("baseline: %w", err)
			}
			st, err := load.Run(c, duration, storeCase)
			if err != nil {
				return fmt.Errorf("store: %w", err)
			}
			if n == 1 {
				baseline[c] = base.PerSecond()
			}
			fmt.Printf("%-9d %-7d | %9.0f %9.0f %5s %5s | %9.0f %9.0f %5s %5s | %.2fx\n",
				c, n, st.PerSecond(), st.PerSecond()*float64(n), load.Millis(st.P50), load.Millis(st.P99),
				base.PerSecond(), base.PerSecond()*float64(n), load.Millis(base.P50), load.Millis(base.P99),
				st.PerSecond()/base.PerSecond())
		}
	}
	fmt.Println("ratio = store appends/s ÷ baseline appends/s at the same concurrency and batch size (≥ 0.90 is the target)")
	return groupCommit(ctx, store, duration, concurrency, baseline)
}

// groupCommit shows what batching appends of different streams into one transaction
// (one round trip, one commit: pgx sends a batch as one implicit transaction) would
// give, against the single-event baseline measured above. Each stream keeps its own
// version check; this sketch lets one conflict abort the whole group, which a real
// group commit must not.
func groupCommit(ctx context.Context, store *pgstore.Store, duration time.Duration, concurrency []int, baseline map[int]float64) error {
	const group = 8
	fmt.Printf("\ngroup commit sketch: %d single-event appends to different streams per transaction\n", group)
	fmt.Printf("%-9s | %9s %5s %5s | %s\n", "appenders", "appends/s", "p50", "p99", "ratio to baseline")
	data := batch(1)
	for _, c := range concurrency {
		versions := make([][group]int64, c)
		op := func(w, i int) error {
			b := &pgx.Batch{}
			for k := range group {
				args, err := pgstore.AppendArgs(fmt.Sprintf("group-%d-%d-%d", c, w, k), versions[w][k], k, data, 0)
				if err != nil {
					return err
				}
				b.Queue(pgstore.AppendSQL, args...)
			}
			if err := store.Pool().SendBatch(ctx, b).Close(); err != nil {
				return err
			}
			for k := range group {
				versions[w][k]++
			}
			return nil
		}
		r, err := load.Run(c, duration, op)
		if err != nil {
			return fmt.Errorf("group commit: %w", err)
		}
		perSecond := r.PerSecond() * group
		fmt.Printf("%-9d | %9.0f %5s %5s | %.2fx\n", c, perSecond, load.Millis(r.P50), load.Millis(r.P99), perSecond/baseline[c])
	}
	return nil
}

// bareInsert is the baseline: one INSERT (of one or many rows) in its own
// transaction, positions from a plain sequence, versions trusted from the caller, the
// same metadata as the store writes.
func bareInsert(ctx context.Context, pool *pgxpool.Pool, stream string, version int64, data []eventstore.EventData) error {
	if len(data) == 1 {
		_, err := pool.Exec(ctx, `INSERT INTO baseline (global_position, stream_id, stream_version, event_id, event_type, data, metadata)
			VALUES (nextval('baseline_seq'), $1, $2, $3, $4, $5::text::jsonb, $6::jsonb)`,
			stream, version+1, uuid.New(), data[0].Type, string(data[0].Data), data[0].Metadata)
		return err
	}
	ids := make([]uuid.UUID, len(data))
	types := make([]string, len(data))
	bodies := make([]string, len(data))
	for i, e := range data {
		ids[i], types[i], bodies[i] = uuid.New(), e.Type, string(e.Data)
	}
	_, err := pool.Exec(ctx, `INSERT INTO baseline (global_position, stream_id, stream_version, event_id, event_type, data, metadata)
		SELECT nextval('baseline_seq'), $1, $2 + i, ($3::uuid[])[i], ($4::text[])[i], (($5::text[])[i])::jsonb, $6::jsonb
		FROM generate_series(1, cardinality($4::text[])) AS i`, stream, version, ids, types, bodies, data[0].Metadata)
	return err
}

func batch(n int) []eventstore.EventData {
	out := make([]eventstore.EventData, n)
	for i := range out {
		body, _ := json.Marshal(map[string]any{"account_number": "A-1", "amount": 100 + i})
		out[i] = eventstore.EventData{Type: "MoneyDeposited", Data: body,
			Metadata: map[string]string{eventstore.MetaCommandID: "c", eventstore.MetaCorrelationID: "c", eventstore.MetaCausationID: "c"}}
	}
	return out
}
