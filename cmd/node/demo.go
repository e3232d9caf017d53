package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader/admin"
	"github.com/ringleader-go/ringleader/config"
	"github.com/ringleader-go/ringleader/eventstore/memstore"
	"github.com/ringleader-go/ringleader/eventstore/shred"
	"github.com/ringleader-go/ringleader/examples/bank"
	"github.com/ringleader-go/ringleader/node"
	"github.com/ringleader-go/ringleader/transport"
	"github.com/ringleader-go/ringleader/transport/natsembed"
)

// demoOptions are the demo's flags.
type demoOptions struct {
	nodes      int
	dsn        string
	schema     string
	natsPort   int
	gossipBase int
	adminBase  int
	once       bool
	// masterKey is the crypto-shredding master key given to the nodes: the public
	// development key unless RL_MASTER_KEY / RL_MASTER_KEY_FILE is set.
	masterKey string

	gossipPorts, adminPorts []int // per node, from the bases (or free ports for base 0)
}

// runDemo starts an embedded NATS server, an event store and a local cluster, sends a
// few bank commands through NATS, prints who owned what and keeps running until
// interrupted (or, with --once, stops at once).
func runDemo(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	o := demoOptions{}
	fs := flag.NewFlagSet("node demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.nodes, "nodes", 3, "how many nodes to start")
	defaultDSN := env("RL_DSN")
	if defaultDSN == "" {
		defaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	fs.StringVar(&o.dsn, "dsn", defaultDSN, "PostgreSQL DSN; if unreachable the demo uses an in-memory store")
	fs.StringVar(&o.schema, "schema", "ringleader_demo", "PostgreSQL schema for the demo's events")
	fs.IntVar(&o.natsPort, "nats-port", 4333, "port of the embedded NATS server (0: any free port)")
	fs.IntVar(&o.gossipBase, "gossip-port", 7950, "gossip port of the first node; the others follow (0: any free ports)")
	fs.IntVar(&o.adminBase, "admin-port", 8081, "admin HTTP port of the first node; the others follow (0: any free ports)")
	fs.BoolVar(&o.once, "once", false, "stop after showing the cluster working (for tests)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.nodes < 1 || o.nodes > 9 {
		return fmt.Errorf("demo: --nodes must be from 1 to 9, got %d", o.nodes)
	}
	var err error
	if o.gossipPorts, err = ports(o.gossipBase, o.nodes); err != nil {
		return err
	}
	if o.adminPorts, err = ports(o.adminBase, o.nodes); err != nil {
		return err
	}

	say := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	if env("RL_MASTER_KEY") == "" && env("RL_MASTER_KEY_FILE") == "" {
		o.masterKey = demoMasterKey()
		say("keys      crypto-shredding uses the public development master key %q (set RL_MASTER_KEY for a real one; never use this one in production)", "demo")
	}
	ns, err := natsembed.Start(natsembed.Options{Host: "127.0.0.1", Port: o.natsPort})
	if err != nil {
		return fmt.Errorf("demo: start NATS: %w", err)
	}
	defer ns.Shutdown()
	say("NATS      %s (embedded nats-server)", ns.URL())

	usePG := pgReachable(ctx, o.dsn)
	var stop func()
	if usePG {
		say("store     PostgreSQL %s, schema %q", redact(o.dsn), o.schema)
		stop, err = startNodeProcesses(ctx, o, ns.URL(), stderr)
	} else {
		say("store     PostgreSQL is not reachable at %s: using an in-memory event store shared by", redact(o.dsn))
		say("          %d nodes running inside this process (nothing is kept after Ctrl-C)", o.nodes)
		stop, err = startNodesInProcess(ctx, o, ns.URL(), stderr)
	}
	if err != nil {
		return err
	}
	defer stop()

	admins := make([]string, o.nodes)
	for i := range admins {
		admins[i] = fmt.Sprintf("127.0.0.1:%d", o.adminPorts[i])
	}
	if err := waitForCluster(ctx, admins, o.nodes, 30*time.Second); err != nil {
		return err
	}
	say("cluster   %d nodes agree on the ring", o.nodes)
	for i, a := range admins {
		say("node n%d   admin http://%s/  (/cluster, /metrics, /healthz)", i+1, a)
	}

	if err := showCommands(ctx, ns.URL(), admins[0], stdout); err != nil {
		return err
	}
	if o.once {
		return nil
	}
	say("\nThe cluster keeps running. Send commands with any NATS client, e.g.")
	say(`  nats --server %s request rl.cmd.DepositMoney '{"account_number":"A1","amount":5}'`, ns.URL())
	say("Press Ctrl-C to stop.")
	<-ctx.Done()
	say("\nstopping…")
	return nil
}

// ports returns n ports counting up from base, or n currently free ports if base is
// 0 (for tests, which run beside other servers).
func ports(base, n int) ([]int, error) {
	out := make([]int, n)
	for i := range out {
		if base != 0 {
			out[i] = base + i
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("demo: find a free port: %w", err)
		}
		defer l.Close() // held until all are chosen, so they differ
		out[i] = l.Addr().(*net.TCPAddr).Port
	}
	return out, nil
}

func pgReachable(ctx context.Context, dsn string) bool {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return false
	}
	_ = conn.Close(ctx)
	return true
}

// demoMasterKey is the demo's master key: derived from a fixed, public string, so
// that personal data written by one demo run is readable by the next.
func demoMasterKey() string {
	sum := sha256.Sum256([]byte("ringleader demo master key: public, for development only"))
	return "demo:" + base64.StdEncoding.EncodeToString(sum[:])
}

// nodeArgs are the flags of demo node i (0-based).
func nodeArgs(o demoOptions, i int, natsURL, dsn string) []string {
	args := []string{
		"--node-id=" + fmt.Sprintf("n%d", i+1),
		"--nats=" + natsURL,
		"--dsn=" + dsn,
		"--schema=" + o.schema,
		fmt.Sprintf("--gossip-addr=127.0.0.1:%d", o.gossipPorts[i]),
		fmt.Sprintf("--seeds=127.0.0.1:%d", o.gossipPorts[0]),
		fmt.Sprintf("--admin-addr=127.0.0.1:%d", o.adminPorts[i]),
		"--log-format=console",
		"--log-level=warn",
	}
	if o.masterKey != "" {
		args = append(args, "--master-key="+o.masterKey)
	}
	return args
}

// startNodeProcesses runs each node as a child process of this binary.
func startNodeProcesses(ctx context.Context, o demoOptions, natsURL string, stderr io.Writer) (func(), error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var procs []*exec.Cmd
	stop := func() {
		for _, p := range procs {
			_ = p.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			done := make(chan struct{})
			go func() { _ = p.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				_ = p.Process.Kill()
			}
		}
	}
	for i := range o.nodes {
		cmd := exec.Command(self, append([]string{"run"}, nodeArgs(o, i, natsURL, o.dsn)...)...)
		cmd.Stdout, cmd.Stderr = prefixed(stderr, fmt.Sprintf("[n%d] ", i+1)), prefixed(stderr, fmt.Sprintf("[n%d] ", i+1))
		if err := cmd.Start(); err != nil {
			stop()
			return nil, fmt.Errorf("demo: start node n%d: %w", i+1, err)
		}
		procs = append(procs, cmd)
	}
	return stop, nil
}

// startNodesInProcess runs the nodes in this process around one in-memory store.
func startNodesInProcess(ctx context.Context, o demoOptions, natsURL string, stderr io.Writer) (func(), error) {
	store := memstore.New()
	keys := shred.NewMemTable() // shared, like the store
	var nodes []*node.Node
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Add(1)
			go func() { defer wg.Done(); _ = n.Shutdown(sctx) }()
		}
		wg.Wait()
		_ = store.Close()
	}
	for i := range o.nodes {
		cfg, err := config.Load(nodeArgs(o, i, natsURL, "memory"), func(string) string { return "" }, io.Discard)
		if err != nil {
			stop()
			return nil, err
		}
		log := zerolog.New(zerolog.ConsoleWriter{Out: prefixed(stderr, fmt.Sprintf("[n%d] ", i+1)), TimeFormat: time.TimeOnly}).
			Level(zerolog.WarnLevel).With().Timestamp().Logger()
		n, err := node.Start(ctx, node.Options{App: bank.App(), Config: cfg, Logger: log, Store: store, KeyTable: keys, Version: node.Version()})
		if err != nil {
			stop()
			return nil, err
		}
		nodes = append(nodes, n)
	}
	return stop, nil
}

// waitForCluster polls each node's /cluster until all see want members with the same
// ring.
func waitForCluster(ctx context.Context, admins []string, want int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		fingerprints := map[string]bool{}
		ok := true
		for _, a := range admins {
			view, err := fetchCluster(ctx, a, "")
			if err != nil || len(view.Members) != want {
				ok = false
				break
			}
			fingerprints[view.Ring.Fingerprint] = true
		}
		if ok && len(fingerprints) == 1 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: the %d nodes did not form one cluster within %s", want, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func fetchCluster(ctx context.Context, addr, key string) (admin.ClusterView, error) {
	var view admin.ClusterView
	u := "http://" + addr + "/cluster"
	if key != "" {
		u += "?key=" + key
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return view, err
	}
	defer resp.Body.Close()
	return view, json.NewDecoder(resp.Body).Decode(&view)
}

// showCommands sends bank commands through NATS and prints where each ran.
func showCommands(ctx context.Context, natsURL, admin string, stdout io.Writer) error {
	nc, err := nats.Connect(natsURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	client := transport.NewClient(nc)
	run := fmt.Sprintf("%d", time.Now().Unix()%100000)
	type step struct {
		typ  string
		body map[string]any
		id   string
	}
	var steps []step
	for i := 1; i <= 6; i++ {
		acct := fmt.Sprintf("D%s-%d", run, i)
		steps = append(steps,
			step{"OpenAccount", map[string]any{"account_number": acct, "initial_balance": 100, "holder_name": fmt.Sprintf("Holder %d", i)}, "open-" + acct},
			step{"DepositMoney", map[string]any{"account_number": acct, "amount": 25}, "dep-" + acct})
	}
	first := fmt.Sprintf("D%s-1", run)
	steps = append(steps,
		step{"WithdrawMoney", map[string]any{"account_number": first, "amount": 1000}, "big-" + first},
		step{"DepositMoney", map[string]any{"account_number": first, "amount": 25}, "dep-" + first}, // a retry: duplicate
		step{"ForgetAccountHolder", map[string]any{"account_number": first}, "forget-" + first},     // GDPR erasure: deletes the key
		step{"FlyToTheMoon", map[string]any{"account_number": first}, ""},
	)
	fmt.Fprintf(stdout, "\n%-19s %-12s %-6s %-6s %-8s %s\n", "command", "account", "owner", "node", "version", "outcome")
	for _, s := range steps {
		var opts []transport.SendOption
		if s.id != "" {
			opts = append(opts, transport.WithCommandID(s.id))
		}
		reply, err := client.Send(ctx, s.typ, s.body, opts...)
		if err != nil {
			return fmt.Errorf("demo: send %s: %w", s.typ, err)
		}
		acct, _ := s.body["account_number"].(string)
		owner := "-"
		if view, err := fetchCluster(ctx, admin, "account-"+acct); err == nil {
			owner = view.Owner
		}
		outcome := "ok"
		switch {
		case reply.Error != nil && reply.Error.Reason != "":
			outcome = fmt.Sprintf("%s (%s): %s", reply.Error.Code, reply.Error.Reason, reply.Error.Message)
		case reply.Error != nil:
			outcome = reply.Error.Code + ": " + reply.Error.Message
		case reply.Duplicate:
			outcome = "ok (duplicate: not applied again)"
		}
		fmt.Fprintf(stdout, "%-19s %-12s %-6s %-6s %-8d %s\n", s.typ, acct, owner, orDash(reply.Node), reply.AggregateVersion, outcome)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// redact hides a DSN's password.
func redact(dsn string) string {
	if cfg, err := pgx.ParseConfig(dsn); err == nil && cfg.Password != "" {
		return strings.Replace(dsn, cfg.Password, "***", 1)
	}
	return dsn
}

// prefixed returns a writer that prefixes every line written to w.
func prefixed(w io.Writer, prefix string) io.Writer {
	r, pw := io.Pipe()
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			fmt.Fprintln(w, prefix+sc.Text())
		}
	}()
	return pw
}
