// Command clusterbench measures commands end to end — a NATS request into the
// cluster, forwarding to the owner, execution, the append to PostgreSQL and the reply
// — for a 1-node and a 3-node cluster, beside two floors measured in the same run: a
// bare NATS request-reply round trip and a bare event store append — and a ceiling:
// request-reply plus an append grouped like the node's group commit, with no runtime
// between them, which bounds what any command path can reach on the machine. The
// nodes run in this process (node.Start) against real PostgreSQL and NATS.
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
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader/bench/internal/load"
	"github.com/ringleader-go/ringleader/config"
	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore"
	"github.com/ringleader-go/ringleader/examples/bank"
	"github.com/ringleader-go/ringleader/node"
	"github.com/ringleader-go/ringleader/routing"
	"github.com/ringleader-go/ringleader/transport"
)

func main() {
	dsn := flag.String("dsn", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL DSN")
	natsURL := flag.String("nats", "nats://127.0.0.1:4222", "NATS URL")
	duration := flag.Duration("duration", 3*time.Second, "how long each case runs")
	clients := flag.Int("clients", 32, "concurrent clients")
	flag.StringVar(&onlyCases, "only", "", "run only the node cases whose name contains this (\"1node.nohandlers\", \"3node\", ...); the floors always run")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of each node case to this path prefix (<prefix>.<n>node.pprof)")
	flag.Func("node-flag", "pass this flag to every node, e.g. -node-flag=--append-batches-in-flight=2 (repeatable)", func(v string) error {
		nodeFlags = append(nodeFlags, v)
		return nil
	})
	flag.Parse()
	if err := run(*dsn, *natsURL, *duration, *clients); err != nil {
		fmt.Fprintln(os.Stderr, "clusterbench:", err)
		os.Exit(1)
	}
}

// onlyCases is the -only filter on case names ("" for all).
var onlyCases string

// cpuProfile is the -cpuprofile path prefix ("" for none).
var cpuProfile string

// nodeFlags are the -node-flag settings, passed to every node after the benchmark's own.
var nodeFlags []string

func run(dsn, natsURL string, duration time.Duration, clients int) error {
	ctx := context.Background()
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	tag := hex.EncodeToString(suffix)
	schema, prefix := "rl_cbench_"+tag, "cbench"+tag

	nc, err := nats.Connect(natsURL)
	if err != nil {
		return fmt.Errorf("NATS at %s: %w", natsURL, err)
	}
	defer nc.Close()
	fmt.Printf("end-to-end command benchmark: %d clients, %s per case, NATS %s, PostgreSQL schemas %s_*\n", clients, duration, natsURL, schema)
	fmt.Printf("%-44s %10s %7s %7s %s\n", "case", "ops/s", "p50 ms", "p99 ms", "vs bare append")

	// Floor 1: NATS request-reply to a trivial responder.
	echo, err := nc.Subscribe(prefix+".echo", func(m *nats.Msg) { _ = m.Respond(m.Data) })
	if err != nil {
		return err
	}
	rrStart := sampleCPU()
	rr, err := load.Run(clients, duration, func(w, i int) error {
		_, err := nc.Request(prefix+".echo", []byte(`{"ok":true}`), 5*time.Second)
		return err
	})
	rrCPU := cpuUse(rrStart, sampleCPU(), int64(rr.Ops))
	_ = echo.Unsubscribe()
	if err != nil {
		return err
	}

	// Floor 2: a bare append of one event per operation. In a schema of its own,
	// so that the nodes' handlers below do not have its events to work through.
	floorSchema := schema + "_floor"
	defer dropSchema(dsn, floorSchema)
	store, err := pgstore.Open(ctx, dsn, pgstore.WithSchema(floorSchema))
	if err != nil {
		return err
	}
	versions := make([]int64, clients)
	body, _ := json.Marshal(map[string]any{"account_number": "X", "amount": 1, "balance": 1})
	bareStart := sampleCPU()
	bare, err := load.Run(clients, duration, func(w, i int) error {
		_, err := store.Append(ctx, fmt.Sprintf("bare-%d", w), eventstore.Exact(versions[w]),
			[]eventstore.EventData{{Type: "MoneyDeposited", Data: body}})
		versions[w]++
		return err
	})
	bareCPU := cpuUse(bareStart, sampleCPU(), int64(bare.Ops))
	if err != nil {
		_ = store.Close()
		return err
	}
	// The same floors at low load: one client, one operation at a time.
	echo1, err := nc.Subscribe(prefix+".echo1", func(m *nats.Msg) { _ = m.Respond(m.Data) })
	if err != nil {
		return err
	}
	rr1, err := load.Run(1, duration, func(w, i int) error {
		_, err := nc.Request(prefix+".echo1", []byte(`{"ok":true}`), 5*time.Second)
		return err
	})
	_ = echo1.Unsubscribe()
	if err != nil {
		return err
	}
	var v1 int64
	bare1, err := load.Run(1, duration, func(w, i int) error {
		_, err := store.Append(ctx, "bare-lowload", eventstore.Exact(v1), []eventstore.EventData{{Type: "MoneyDeposited", Data: body}})
		v1++
		return err
	})
	if err != nil {
		_ = store.Close()
		return err
	}
	// The ceiling: request-reply plus a group-committed append, no runtime at all.
	ceilStart := sampleCPU()
	ceil, err := ceiling(ctx, natsURL, store, prefix+".ceiling", clients, duration, body)
	ceilCPU := cpuUse(ceilStart, sampleCPU(), int64(ceil.Ops))
	var ceil1 load.Result
	if err == nil {
		ceil1, err = ceiling(ctx, natsURL, store, prefix+".ceiling1", 1, duration, body)
	}
	_ = store.Close()
	if err != nil {
		return err
	}
	print := func(name string, r load.Result, extra string) {
		fmt.Printf("%-44s %10.0f %7s %7s %5.2fx %s\n", name, r.PerSecond(), load.Millis(r.P50), load.Millis(r.P99), r.PerSecond()/bare.PerSecond(), extra)
	}
	// The floors' CPU says what a command costs at least: a request-reply and an
	// appended event, on the same two cores as everything else.
	print("NATS request-reply (floor)", rr, rrCPU)
	print("bare event store append (floor)", bare, bareCPU)
	print("NATS request-reply, 1 client", rr1, "")
	print("bare append, 1 client", bare1, "")
	floor1 := rr1.P50 + bare1.P50
	print("ceiling: request-reply + grouped append", ceil, "no runtime, the best a command path can do here; "+ceilCPU)
	print("ceiling, 1 client", ceil1, fmt.Sprintf("p50 %.2fx (NATS round trip + one append)", float64(ceil1.P50)/float64(floor1)))

	// What a user would write instead, side by side: the hand-written pgx loop, and
	// the runtime's Dispatch called in-process, on the same 10 000 accounts.
	var handwrittenOps float64
	if strings.Contains("baseline", onlyCases) {
		hwSchema := schema + "_handwritten"
		hw, err := handwritten(ctx, dsn, hwSchema, clients, duration)
		dropSchema(dsn, hwSchema)
		if err != nil {
			return fmt.Errorf("hand-written loop: %w", err)
		}
		handwrittenOps = hw.PerSecond()
		print(fmt.Sprintf("hand-written pgx loop, %dk accounts", baselineAccounts/1000), hw, "read the stream, fold, insert the next version, retry on conflict")
		ipSchema := schema + "_inprocess"
		ip, err := inProcess(ctx, dsn, ipSchema, clients, duration)
		dropSchema(dsn, ipSchema)
		if err != nil {
			return fmt.Errorf("in-process Dispatch: %w", err)
		}
		print(fmt.Sprintf("in-process Dispatch (bank), %dk accounts", baselineAccounts/1000), ip,
			fmt.Sprintf("%.2fx the hand-written loop (target 2.5x)", ip.PerSecond()/handwrittenOps))
	}

	// The node as shipped runs the bank's event handlers (the bank_accounts
	// projection, the transfer process) beside the commands; "commands only" starts it
	// without them, to show the command path's own cost.
	for _, withHandlers := range []bool{true, false} {
		label, tag := "", "handlers"
		if !withHandlers {
			label, tag = ", commands only", "nohandlers"
		}
		var oneNode float64
		for _, size := range []int{1, 3} {
			if !strings.Contains(fmt.Sprintf("%dnode.%s", size, tag), onlyCases) {
				continue
			}
			// Each case starts from an empty store: no backlog for its handlers.
			caseSchema := fmt.Sprintf("%s_%d%s", schema, size, tag)
			nodes, err := startCluster(ctx, size, dsn, caseSchema, natsURL, prefix, withHandlers)
			if err != nil {
				return err
			}
			accounts := fmt.Sprintf("B%d%s-", size, tag)
			loaded, err := profiled(fmt.Sprintf("%dnode.%s", size, tag), func() (load.Result, error) {
				return commands(ctx, nc, prefix, clients, duration, size, accounts)
			})
			r := loaded.result
			var low, direct profile
			if err == nil && size == 1 {
				low, err = profiled(fmt.Sprintf("%dnode.%s.1client", size, tag), func() (load.Result, error) {
					return commands(ctx, nc, prefix, 1, duration, size, "L"+accounts)
				})
			}
			if err == nil && size > 1 {
				// A ring-aware client sends each command to its owner's node subject.
				var table *routing.Table
				if table, err = ringTable(ctx, nc, prefix, nodes[0]); err == nil {
					direct, err = profiled(fmt.Sprintf("%dnode.%s.ringaware", size, tag), func() (load.Result, error) {
						return commands(ctx, nc, prefix, clients, duration, size, "R"+accounts, transport.WithRouter(table.Route))
					})
					table.Close()
				}
			}
			stopCluster(nodes)
			dropSchema(dsn, caseSchema)
			if err != nil {
				return err
			}
			extra := fmt.Sprintf("%.0f allocs/cmd (process); %s", loaded.allocs, loaded.cpu)
			if size == 1 {
				oneNode = r.PerSecond()
				if handwrittenOps > 0 {
					extra += fmt.Sprintf("; %.2fx the hand-written loop (target 1.2x, commands only)", oneNode/handwrittenOps)
				}
			} else {
				extra += fmt.Sprintf("; %.2fx one node", r.PerSecond()/oneNode)
			}
			print(fmt.Sprintf("DepositMoney, %d node(s)%s", size, label), r, extra)
			if size > 1 {
				print(fmt.Sprintf("  ring-aware client%s", label), direct.result, fmt.Sprintf("%.2fx one node; routing.Table, saves the forward of ~%d%% of commands; %s",
					direct.result.PerSecond()/oneNode, 100*(size-1)/size, direct.cpu))
			}
			if size == 1 {
				print(fmt.Sprintf("DepositMoney, 1 node, 1 client%s", label), low.result, fmt.Sprintf("p50 %.2fx (NATS round trip + one append = %s ms); %s",
					float64(low.result.P50)/float64(floor1), load.Millis(floor1), low.cpu))
			}
		}
	}
	fmt.Println("allocs/cmd: heap allocations of the whole process (nodes, NATS and the benchmark's clients) per command")
	return nil
}

// profile is a profiled case's outcome.
type profile struct {
	result load.Result
	allocs float64 // heap allocations of the whole process per operation
	cpu    string  // the CPU used meanwhile (cpuUse)
}

// profiled runs f, writing a CPU profile of it when -cpuprofile is set, and returns
// its result with the allocations and CPU it cost.
func profiled(name string, f func() (load.Result, error)) (profile, error) {
	if cpuProfile != "" {
		file, err := os.Create(cpuProfile + "." + name + ".pprof")
		if err != nil {
			return profile{}, err
		}
		defer file.Close()
		if err := pprof.StartCPUProfile(file); err != nil {
			return profile{}, err
		}
		defer pprof.StopCPUProfile()
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := sampleCPU()
	r, err := f()
	p := profile{result: r, cpu: cpuUse(start, sampleCPU(), int64(r.Ops))}
	runtime.ReadMemStats(&after)
	if err == nil && r.Ops > 0 {
		p.allocs = float64(after.Mallocs-before.Mallocs) / float64(r.Ops)
	}
	return p, err
}

// commands opens an account per client and then deposits into it as fast as
// possible; each client keeps to its own account, so no two commands race.
func commands(ctx context.Context, nc *nats.Conn, prefix string, clients int, duration time.Duration, size int, accountPrefix string, opts ...transport.ClientOption) (load.Result, error) {
	client := transport.NewClient(nc, append([]transport.ClientOption{transport.WithPrefix(prefix)}, opts...)...)
	accounts := make([]string, clients)
	for w := range accounts {
		accounts[w] = fmt.Sprintf("%s%d", accountPrefix, w)
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

// ringRouter names the owner of a bank command from n's ring, as a client that read
// /cluster would.
// ringTable follows the cluster's ring over NATS as an application's client would
// (package routing), once it holds the same ring as node n.
func ringTable(ctx context.Context, nc *nats.Conn, prefix string, n *node.Node) (*routing.Table, error) {
	table, err := routing.Watch(ctx, nc, prefix, routing.StreamOf(bank.NewRouter(bank.Config{})), routing.WithRefresh(100*time.Millisecond))
	if err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(10 * time.Second); table.Ring().Fingerprint() != n.Ring().Fingerprint(); {
		if time.Now().After(deadline) {
			table.Close()
			return nil, fmt.Errorf("the routing table did not learn the ring %s", n.Ring().Fingerprint())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return table, nil
}

func startCluster(ctx context.Context, size int, dsn, schema, natsURL, prefix string, withHandlers bool) ([]*node.Node, error) {
	var nodes []*node.Node
	seed := ""
	for i := range size {
		gossip := fmt.Sprintf("127.0.0.1:%d", freePort())
		if seed == "" {
			seed = gossip
		}
		args := append([]string{
			"--node-id=b" + strconv.Itoa(i+1), "--nats=" + natsURL, "--prefix=" + prefix,
			"--dsn=" + dsn, "--schema=" + schema, "--gossip-addr=" + gossip, "--seeds=" + seed, "--admin-addr=off",
		}, nodeFlags...)
		cfg, err := config.Load(args, func(string) string { return "" }, io.Discard)
		if err != nil {
			return nil, err
		}
		n, err := node.Start(ctx, node.Options{App: bank.App(), Config: cfg, Logger: zerolog.Nop(), WithoutHandlers: !withHandlers})
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
