// Command clusterbench measures commands end to end — a NATS request into the
// cluster, forwarding to the owner, execution, the append to PostgreSQL and the reply
// — for a 1-node and a 3-node cluster, beside two floors measured in the same run: a
// bare NATS request-reply round trip and a bare event store append. The nodes run in
// this process (node.Start) against real PostgreSQL and NATS.
//
//	go run ./bench/clusterbench -duration 3s -clients 32
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader/bench/internal/load"
	"github.com/ringleader-go/ringleader/config"
	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore"
	"github.com/ringleader-go/ringleader/node"
	"github.com/ringleader-go/ringleader/transport"
)

func main() {
	dsn := flag.String("dsn", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL DSN")
	natsURL := flag.String("nats", "nats://127.0.0.1:4222", "NATS URL")
	duration := flag.Duration("duration", 3*time.Second, "how long each case runs")
	clients := flag.Int("clients", 32, "concurrent clients")
	flag.Parse()
	if err := run(*dsn, *natsURL, *duration, *clients); err != nil {
		fmt.Fprintln(os.Stderr, "clusterbench:", err)
		os.Exit(1)
	}
}

func run(dsn, natsURL string, duration time.Duration, clients int) error {
	ctx := context.Background()
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	tag := hex.EncodeToString(suffix)
	schema, prefix := "rl_cbench_"+tag, "cbench"+tag
	defer dropSchema(dsn, schema)

	nc, err := nats.Connect(natsURL)
	if err != nil {
		return fmt.Errorf("NATS at %s: %w", natsURL, err)
	}
	defer nc.Close()
	fmt.Printf("end-to-end command benchmark: %d clients, %s per case, NATS %s, PostgreSQL schema %s\n", clients, duration, natsURL, schema)
	fmt.Printf("%-34s %10s %7s %7s %s\n", "case", "ops/s", "p50 ms", "p99 ms", "vs bare append")

	// Floor 1: NATS request-reply to a trivial responder.
	echo, err := nc.Subscribe(prefix+".echo", func(m *nats.Msg) { _ = m.Respond(m.Data) })
	if err != nil {
		return err
	}
	rr, err := load.Run(clients, duration, func(w, i int) error {
		_, err := nc.Request(prefix+".echo", []byte(`{"ok":true}`), 5*time.Second)
		return err
	})
	_ = echo.Unsubscribe()
	if err != nil {
		return err
	}

	// Floor 2: a bare append of one event per operation.
	store, err := pgstore.Open(ctx, dsn, pgstore.WithSchema(schema))
	if err != nil {
		return err
	}
	versions := make([]int64, clients)
	body, _ := json.Marshal(map[string]any{"account_number": "X", "amount": 1, "balance": 1})
	bare, err := load.Run(clients, duration, func(w, i int) error {
		_, err := store.Append(ctx, fmt.Sprintf("bare-%d", w), eventstore.Exact(versions[w]),
			[]eventstore.EventData{{Type: "MoneyDeposited", Data: body}})
		versions[w]++
		return err
	})
	_ = store.Close()
	if err != nil {
		return err
	}
	print := func(name string, r load.Result) {
		fmt.Printf("%-34s %10.0f %7s %7s %.2fx\n", name, r.PerSecond(), load.Millis(r.P50), load.Millis(r.P99), r.PerSecond()/bare.PerSecond())
	}
	print("NATS request-reply (floor)", rr)
	print("bare event store append (floor)", bare)

	for _, size := range []int{1, 3} {
		nodes, err := startCluster(ctx, size, dsn, schema, natsURL, prefix)
		if err != nil {
			return err
		}
		r, err := commands(ctx, nc, prefix, clients, duration, size)
		stopCluster(nodes)
		if err != nil {
			return err
		}
		print(fmt.Sprintf("DepositMoney via NATS, %d node(s)", size), r)
	}
	return nil
}

// commands opens an account per client and then deposits into it as fast as
// possible; each client keeps to its own account, so no two commands race.
func commands(ctx context.Context, nc *nats.Conn, prefix string, clients int, duration time.Duration, size int) (load.Result, error) {
	client := transport.NewClient(nc, transport.WithPrefix(prefix))
	accounts := make([]string, clients)
	for w := range accounts {
		accounts[w] = fmt.Sprintf("B%d-%d", size, w)
		reply, err := client.Send(ctx, "OpenAccount", map[string]any{"account_number": accounts[w], "initial_balance": 0})
		if err != nil {
			return load.Result{}, err
		}
		if err := reply.Err(); err != nil {
			return load.Result{}, err
		}
	}
	return load.Run(clients, duration, func(w, i int) error {
		reply, err := client.Send(ctx, "DepositMoney", map[string]any{"account_number": accounts[w], "amount": 1})
		if err != nil {
			return err
		}
		return reply.Err()
	})
}

func startCluster(ctx context.Context, size int, dsn, schema, natsURL, prefix string) ([]*node.Node, error) {
	var nodes []*node.Node
	seed := ""
	for i := range size {
		gossip := fmt.Sprintf("127.0.0.1:%d", freePort())
		if seed == "" {
			seed = gossip
		}
		cfg, err := config.Load([]string{
			"--node-id=b" + strconv.Itoa(i+1), "--nats=" + natsURL, "--prefix=" + prefix,
			"--dsn=" + dsn, "--schema=" + schema, "--gossip-addr=" + gossip, "--seeds=" + seed, "--admin-addr=off",
		}, func(string) string { return "" }, io.Discard)
		if err != nil {
			return nil, err
		}
		n, err := node.Start(ctx, node.Options{Config: cfg, Logger: zerolog.Nop()})
		if err != nil {
			stopCluster(nodes)
			return nil, err
		}
		nodes = append(nodes, n)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		agreed := true
		for _, n := range nodes {
			if len(n.Members()) != size {
				agreed = false
			}
		}
		if agreed {
			return nodes, nil
		}
		if time.Now().After(deadline) {
			stopCluster(nodes)
			return nil, fmt.Errorf("%d nodes did not converge", size)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func stopCluster(nodes []*node.Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); _ = n.Shutdown(ctx) }()
	}
	wg.Wait()
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func dropSchema(dsn, schema string) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 2, 64)
}
