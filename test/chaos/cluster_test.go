package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
	"github.com/ringleader-go/ringleader/internal/testwait"
	"github.com/ringleader-go/ringleader/test/nodebin"
	"github.com/ringleader-go/ringleader/transport/natstest"
)

// nodeBinary builds cmd/node once per test binary (without the race detector: five
// nodes on a small CI box must keep up with the failure detector's timing).
func nodeBinary(t *testing.T) string {
	t.Helper()
	return nodebin.Build(t, false)
}

// unsafeNodeBinary builds cmd/node with the ringleader_unsafe tag once per test
// binary (appends skip the expected-version check), for TestCheckersCatchBrokenBuild
// only.
func unsafeNodeBinary(t *testing.T) string {
	t.Helper()
	return nodebin.BuildUnsafe(t)
}

// natsTarget is the NATS server on loopback the suite forwards to and its clients use.
func natsTarget() string {
	if p, err := url.Parse(natstest.URL()); err == nil && p.Host != "" {
		return p.Host
	}
	return "127.0.0.1:4222"
}

// dsnVia rewrites dsn's host:port to hostport, returning the new DSN and the old
// host:port (the forwarder's target).
func dsnVia(dsn, hostport string) (string, string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", "", err
	}
	old := u.Host
	if !strings.Contains(old, ":") {
		old += ":5432"
	}
	u.Host = hostport
	return u.String(), old, nil
}

// cluster is one scenario's world: a network of namespaces, a fresh schema, a
// unique subject prefix, and the node processes.
type cluster struct {
	t      *testing.T
	nw     *network
	schema string
	prefix string
	dsn    string // as the nodes see it (through the forwarder)
	db     *pgxpool.Pool
	logDir string
	bin    string // the node binary: nodeBinary, or unsafeNodeBinary for the broken build
	// upgradeTo is the binary the upgrade scenario replaces the nodes with (bin is
	// then the earlier build); "" in every other scenario.
	upgradeTo string

	// replaced records each replacement of a node by upgrade, in order.
	replaced []replacement

	mu    sync.Mutex
	procs map[string]*proc
}

// proc is one node process, running in its namespace.
type proc struct {
	id   string
	cmd  *exec.Cmd
	done chan struct{}
}

// newCluster prepares n namespaces and starts nodes n1…nn in them from the node
// binary bin, waiting until they agree on membership.
func newCluster(t *testing.T, n int, bin string) *cluster {
	t.Helper()
	schema := pgtest.NewSchema(t)
	nodeDSN, pgTarget, err := dsnVia(pgtest.NodeDSN(), fmt.Sprintf("%s:%d", bridgeIP, pgFwdPort))
	if err != nil {
		t.Fatal(err)
	}
	db, err := pgxpool.New(context.Background(), pgtest.DSN())
	if err != nil {
		pgtest.Unavailable(t, "PostgreSQL: "+err.Error())
	}
	t.Cleanup(db.Close)
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	logDir, err := os.MkdirTemp("", "ringleader-chaos-logs-")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, schema: schema, prefix: "chaos" + hex.EncodeToString(suffix), dsn: nodeDSN,
		db: db, logDir: logDir, bin: bin, procs: map[string]*proc{}}
	c.nw = newNetwork(t, n, pgTarget, natsTarget())
	t.Cleanup(func() {
		c.stopAll()
		if t.Failed() {
			t.Logf("node logs kept in %s", logDir)
		} else {
			_ = os.RemoveAll(logDir)
		}
	})
	for _, id := range c.nw.ids {
		c.start(id)
	}
	if _, err := c.waitConverged(45*time.Second, c.nw.ids...); err != nil {
		t.Fatalf("cluster did not form: %v", err)
	}
	if err := c.waitHandlersOwned(45 * time.Second); err != nil {
		t.Fatalf("handler partitions did not start: %v", err)
	}
	return c
}

func adminAddr(id string) string { return fmt.Sprintf("%s:%d", ipOf(id), adminPort) }

// start launches node id in its namespace (again, after a kill).
func (c *cluster) start(id string) {
	c.t.Helper()
	c.startBin(id, c.bin)
}

// startBin launches node id in its namespace from the node binary bin.
func (c *cluster) startBin(id, bin string) {
	c.t.Helper()
	var seeds []string
	for _, o := range c.nw.ids {
		if o != id {
			seeds = append(seeds, fmt.Sprintf("%s:%d", ipOf(o), gossipPort))
		}
	}
	args := []string{"netns", "exec", nsName(id), bin, "run",
		"--node-id=" + id,
		fmt.Sprintf("--nats=nats://%s:%d", bridgeIP, natsFwdPort),
		"--prefix=" + c.prefix,
		"--dsn=" + c.dsn,
		"--schema=" + c.schema,
		fmt.Sprintf("--gossip-addr=%s:%d", ipOf(id), gossipPort),
		"--seeds=" + strings.Join(seeds, ","),
		"--admin-addr=" + adminAddr(id),
		"--log-level=info",
	}
	logf, err := os.OpenFile(filepath.Join(c.logDir, id+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	p := &proc{id: id, done: make(chan struct{})}
	// `ip netns exec` execs the node in place, so the pid is the node's own.
	p.cmd = exec.Command("ip", args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", id, err)
	}
	go func() { _ = p.cmd.Wait(); _ = logf.Close(); close(p.done) }()
	c.mu.Lock()
	c.procs[id] = p
	c.mu.Unlock()
}

func (c *cluster) proc(id string) *proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[id]
}

// kill sends SIGKILL: no graceful leave, no drain.
func (c *cluster) kill(id string) {
	c.mu.Lock()
	p := c.procs[id]
	delete(c.procs, id)
	c.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// terminate sends SIGTERM and waits for a graceful exit (SIGKILL after 20s).
func (c *cluster) terminate(id string) {
	c.mu.Lock()
	p := c.procs[id]
	delete(c.procs, id)
	c.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// signal sends sig (SIGSTOP, SIGCONT) to node id.
func (c *cluster) signal(id string, sig syscall.Signal) {
	if p := c.proc(id); p != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}

func (c *cluster) stopAll() {
	c.mu.Lock()
	var ids []string
	for id := range c.procs {
		ids = append(ids, id)
	}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, id := range ids {
		c.signal(id, syscall.SIGCONT)
		wg.Add(1)
		go func() { defer wg.Done(); c.terminate(id) }()
	}
	wg.Wait()
}

// running returns the ids of the node processes that are up, sorted.
func (c *cluster) running() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []string
	for id := range c.procs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

func getJSON(u string, v any) error {
	resp, err := httpClient.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// clusterView is the part of /cluster the suite reads.
type clusterView struct {
	Members []struct {
		ID      string `json:"id"`
		Version string `json:"version"` // the member's build, as it gossips it
	} `json:"members"`
	Ring struct {
		Fingerprint string `json:"fingerprint"`
	} `json:"ring"`
}

// agreement reports nil when every running node lists exactly ids as members and
// all show one ring fingerprint.
func (c *cluster) agreement(ids []string) error {
	want := strings.Join(ids, ",")
	fps := map[string]bool{}
	for _, id := range c.running() {
		var v clusterView
		if err := getJSON("http://"+adminAddr(id)+"/cluster", &v); err != nil {
			return fmt.Errorf("%s: %v", id, err)
		}
		var got []string
		for _, m := range v.Members {
			got = append(got, m.ID)
		}
		sort.Strings(got)
		if strings.Join(got, ",") != want {
			return fmt.Errorf("%s sees members %v, want %s", id, got, want)
		}
		fps[v.Ring.Fingerprint] = true
	}
	if len(fps) != 1 {
		return fmt.Errorf("nodes disagree on the ring: %v", fps)
	}
	return nil
}

// waitConverged waits until agreement(ids) holds and returns how long it took.
func (c *cluster) waitConverged(limit time.Duration, ids ...string) (time.Duration, error) {
	sorted := append([]string(nil), ids...)
	sort.Strings(sorted)
	start := time.Now()
	err := waitUntil(limit, func() error { return c.agreement(sorted) })
	return time.Since(start), err
}

// partitionView is the part of /handlers the suite reads.
type partitionView struct {
	Handler   string `json:"handler"`
	Partition int    `json:"partition"`
	State     string `json:"state"`
}

// handlersOwned reports nil when each handler partition any node lists runs on
// exactly one running node.
func (c *cluster) handlersOwned() error {
	running := map[string][]string{}
	for _, id := range c.running() {
		var v struct {
			Partitions []partitionView `json:"partitions"`
		}
		if err := getJSON("http://"+adminAddr(id)+"/handlers", &v); err != nil {
			return fmt.Errorf("%s: %v", id, err)
		}
		for _, p := range v.Partitions {
			key := fmt.Sprintf("%s#%d", p.Handler, p.Partition)
			if _, ok := running[key]; !ok {
				running[key] = nil
			}
			if p.State == "running" {
				running[key] = append(running[key], id)
			}
		}
	}
	if len(running) == 0 {
		return fmt.Errorf("no handler partitions listed")
	}
	var bad []string
	for key, on := range running {
		if len(on) != 1 {
			bad = append(bad, fmt.Sprintf("%s runs on %v", key, on))
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("%s", strings.Join(bad, "; "))
	}
	return nil
}

func (c *cluster) waitHandlersOwned(limit time.Duration) error {
	return waitUntil(limit, c.handlersOwned)
}

// waitUntil polls cond until it returns nil or limit passes (then it returns
// cond's last error).
func waitUntil(limit time.Duration, cond func() error) error {
	return testwait.Until(limit, cond)
}

// watchViews polls every running node's member list for d and returns the most
// distinct views seen at once: 1 means the fault never split membership, 2 or more
// that nodes disagreed (two owners possible).
func (c *cluster) watchViews(d time.Duration) int {
	most := 0
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		views := map[string]bool{}
		for _, id := range c.running() {
			var v clusterView
			if err := getJSON("http://"+adminAddr(id)+"/cluster", &v); err != nil {
				continue
			}
			var got []string
			for _, m := range v.Members {
				got = append(got, m.ID)
			}
			sort.Strings(got)
			views[strings.Join(got, ",")] = true
		}
		most = max(most, len(views))
		time.Sleep(250 * time.Millisecond)
	}
	return most
}

// replacement is one step of a rolling upgrade: when node id's old process was told
// to stop, and when its new one was started (after the old one exited).
type replacement struct {
	id               string
	stopped, started time.Time
}

// upgrade replaces node id with a process of c.upgradeTo: a graceful stop (SIGTERM,
// leave, drain), then a start with the same id and addresses.
func (c *cluster) upgrade(id string) {
	c.t.Helper()
	stopped := time.Now()
	c.terminate(id)
	started := time.Now()
	c.startBin(id, c.upgradeTo)
	c.mu.Lock()
	c.replaced = append(c.replaced, replacement{id: id, stopped: stopped, started: started})
	c.mu.Unlock()
}

// replacements returns the upgrade steps so far.
func (c *cluster) replacements() []replacement {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]replacement(nil), c.replaced...)
}

// versions reports nil when every running node lists each member in want with a
// version for which old(version) is want[id] (true: the member still runs the
// earlier build).
func (c *cluster) versions(old func(version string) bool, want map[string]bool) error {
	for _, id := range c.running() {
		var v clusterView
		if err := getJSON("http://"+adminAddr(id)+"/cluster", &v); err != nil {
			return fmt.Errorf("%s: %v", id, err)
		}
		for _, m := range v.Members {
			if w, ok := want[m.ID]; ok && old(m.Version) != w {
				return fmt.Errorf("%s lists %s at version %q, want the %s build", id, m.ID, m.Version, map[bool]string{true: "earlier", false: "new"}[w])
			}
		}
	}
	return nil
}

// schemaVersion returns the newest migration applied to the scenario's schema.
func (c *cluster) schemaVersion() (int, error) {
	var v int
	err := c.db.QueryRow(context.Background(), "SELECT coalesce(max(version), 0) FROM "+
		pgx.Identifier{c.schema, "schema_migrations"}.Sanitize()).Scan(&v)
	return v, err
}

// latestMigration is the number of the newest migration of the working tree's
// event store (eventstore/pgstore/migrations/NNNN_name.sql).
func latestMigration(t *testing.T) int {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "..", "eventstore", "pgstore", "migrations", "*.sql"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no migrations found: %v", err)
	}
	latest := 0
	for _, p := range paths {
		n, err := strconv.Atoi(strings.SplitN(filepath.Base(p), "_", 2)[0])
		if err != nil {
			t.Fatalf("migration %s: %v", p, err)
		}
		latest = max(latest, n)
	}
	return latest
}
