package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/bench/internal/load"
	"github.com/ringleader-go/ringleader/eventstore/pgstore"
	"github.com/ringleader-go/ringleader/examples/bank"

	"time"
)

// baselineAccounts is how many accounts the hand-written loop and the in-process
// Dispatch deposit into, each operation to one chosen at random.
const baselineAccounts = 10_000

// handwritten is what a team without a framework writes on pgx for a deposit: read
// the account's events, fold them into a balance, decide, and insert the next event
// with the stream's next version, whose primary key refuses a concurrent writer's
// (then read again and retry). Its events live in a table of their own in schema.
func handwritten(ctx context.Context, dsn, schema string, clients int, duration time.Duration) (load.Result, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return load.Result{}, err
	}
	cfg.MaxConns = int32(clients)
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return load.Result{}, err
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return load.Result{}, err
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE account_events (
		stream_id text NOT NULL, version bigint NOT NULL, type text NOT NULL, data jsonb NOT NULL,
		created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (stream_id, version))`); err != nil {
		return load.Result{}, err
	}
	deposit := func(account string, amount int64) error {
		for {
			rows, err := pool.Query(ctx, `SELECT version, data FROM account_events WHERE stream_id = $1 ORDER BY version`, account)
			if err != nil {
				return err
			}
			var version, balance int64
			for rows.Next() {
				var data []byte
				if err := rows.Scan(&version, &data); err != nil {
					rows.Close()
					return err
				}
				var e struct{ Amount int64 }
				if err := json.Unmarshal(data, &e); err != nil {
					rows.Close()
					return err
				}
				balance += e.Amount
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if amount <= 0 {
				return errors.New("amount must be positive")
			}
			data, _ := json.Marshal(map[string]any{"account_number": account, "amount": amount, "balance": balance + amount})
			_, err = pool.Exec(ctx, `INSERT INTO account_events (stream_id, version, type, data) VALUES ($1, $2, 'MoneyDeposited', $3)`,
				account, version+1, data)
			if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == "23505" {
				continue // another writer took that version: decide again on its state
			}
			return err
		}
	}
	rngs := workerRands(clients)
	return load.Run(clients, duration, func(w, i int) error {
		return deposit(fmt.Sprintf("H-%d", rngs[w].IntN(baselineAccounts)), 1)
	})
}

// inProcess is the bank's aggregate runtime called in-process, as a service that
// embeds Ringleader's Dispatch instead of running nodes would, on the same accounts.
func inProcess(ctx context.Context, dsn, schema string, clients int, duration time.Duration) (load.Result, error) {
	store, err := pgstore.Open(ctx, dsn, pgstore.WithSchema(schema))
	if err != nil {
		return load.Result{}, err
	}
	defer store.Close()
	d, err := aggregate.New(aggregate.Config{Store: store, Router: bank.NewRouter(bank.Config{})})
	if err != nil {
		return load.Result{}, err
	}
	defer d.Close()
	// Open every account first (not measured), from as many goroutines as clients.
	var wg sync.WaitGroup
	errs := make([]error, clients)
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := w; a < baselineAccounts && errs[w] == nil; a += clients {
				_, errs[w] = d.Dispatch(ctx, bank.OpenAccount{AccountNumber: fmt.Sprintf("P-%d", a)})
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return load.Result{}, err
	}
	rngs := workerRands(clients)
	return load.Run(clients, duration, func(w, i int) error {
		_, err := d.Dispatch(ctx, bank.DepositMoney{AccountNumber: fmt.Sprintf("P-%d", rngs[w].IntN(baselineAccounts)), Amount: 1})
		return err
	})
}

// workerRands gives each worker a random source of its own (fixed seeds: the runs
// pick the same accounts).
func workerRands(n int) []*rand.Rand {
	out := make([]*rand.Rand, n)
	for i := range out {
		out[i] = rand.New(rand.NewPCG(uint64(i), 42))
	}
	return out
}
