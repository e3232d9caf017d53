package chaos

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
)

// The test network. Every name and address here is created by the suite and removed
// by it; nothing else on the machine is touched.
const (
	bridgeName  = "rlchaos0"    // the Linux bridge in the root namespace
	nsPrefix    = "rlchaos-"    // network namespaces: rlchaos-n1 … rlchaos-n5
	vethPrefix  = "rlcv-"       // root-side veth ends: rlcv-n1 …; the namespace side is eth0
	subnet      = "10.77.0"     // 10.77.0.0/24
	bridgeIP    = subnet + ".1" // the root namespace's address on the bridge
	pgFwdPort   = 15432         // bridgeIP:15432 → PostgreSQL (127.0.0.1:5432)
	natsFwdPort = 14222         // bridgeIP:14222 → NATS (127.0.0.1:4222)
	gossipPort  = 7946
	adminPort   = 8080
)

// hostIP is node i's (1-based) address.
func hostIP(i int) string { return fmt.Sprintf("%s.%d", subnet, 10+i) }

func nsName(id string) string { return nsPrefix + id }

// sh runs a command and returns its combined output and error.
func sh(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// nsRun runs a command inside node id's namespace.
func nsRun(id string, args ...string) error {
	_, err := sh("ip", append([]string{"netns", "exec", nsName(id)}, args...)...)
	return err
}

// requireRoot stops the test unless it can build namespaces and firewall rules:
// a failure under CI=true, a skip elsewhere (pgtest.Unavailable).
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		pgtest.Unavailable(t, "the chaos suite needs root (network namespaces, iptables)")
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			pgtest.Unavailable(t, "the chaos suite needs "+tool+" (apt-get install iproute2 iptables)")
		}
	}
}

// probeNamespaces stops the test unless a namespace with working iptables can be
// made (call it holding the lock).
func probeNamespaces(t *testing.T) {
	t.Helper()
	if _, err := sh("ip", "netns", "add", nsPrefix+"probe"); err != nil {
		pgtest.Unavailable(t, "cannot create a network namespace: "+err.Error())
	}
	defer sh("ip", "netns", "del", nsPrefix+"probe") //nolint:errcheck
	if err := nsRun("probe", "iptables", "-L", "-n"); err != nil {
		pgtest.Unavailable(t, "iptables does not work inside a namespace: "+err.Error())
	}
}

// cleanNetwork removes every namespace, link and process a previous (possibly
// killed) run of the suite left behind. Processes still running inside one of the
// suite's namespaces are node processes the suite started; they are killed by pid.
func cleanNetwork() {
	out, _ := sh("ip", "netns", "list")
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], nsPrefix) {
			continue
		}
		pids, _ := sh("ip", "netns", "pids", f[0])
		for _, p := range strings.Fields(pids) {
			if pid, err := strconv.Atoi(p); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		_, _ = sh("ip", "netns", "del", f[0])
	}
	links, _ := sh("ip", "-o", "link", "show")
	for _, line := range strings.Split(links, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name := strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0]
		if strings.HasPrefix(name, vethPrefix) || name == bridgeName {
			_, _ = sh("ip", "link", "del", name)
		}
	}
}

// network is the bridge, one namespace per node, and the forwarders.
type network struct {
	t    *testing.T
	ids  []string
	pg   *forwarder
	nats *forwarder
}

// lockPath is the machine-wide lock that serialises the suite's networks: the names
// and addresses are fixed, so two test processes (say `make chaos` and another
// package's `go test ./...`) must not build them at the same time. The kernel drops
// an flock when its process dies, so a killed run never leaves it held.
const lockPath = "/run/lock/ringleader-chaos.lock"

// lockNetwork takes the machine-wide lock, waiting up to limit, and registers its
// release with t.Cleanup.
func lockNetwork(t *testing.T, limit time.Duration) {
	t.Helper()
	path := lockPath
	if _, err := os.Stat("/run/lock"); err != nil {
		path = os.TempDir() + "/ringleader-chaos.lock"
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("chaos lock %s: %v", path, err)
	}
	deadline := time.Now().Add(limit)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			_ = f.Close()
			t.Fatalf("another chaos run held %s for %s: %v", path, limit, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Cleanup(func() { _ = f.Close() }) // closing releases the flock
}

// newNetwork builds the bridge and n namespaces (n1…nn) and starts the forwarders to
// PostgreSQL and NATS, holding the machine-wide lock. Everything is torn down by
// t.Cleanup.
func newNetwork(t *testing.T, n int, pgTarget, natsTarget string) *network {
	t.Helper()
	requireRoot(t)
	lockNetwork(t, 12*time.Minute)
	cleanNetwork()
	probeNamespaces(t)
	t.Cleanup(cleanNetwork)
	must := func(name string, args ...string) {
		t.Helper()
		if _, err := sh(name, args...); err != nil {
			t.Fatal(err)
		}
	}
	must("ip", "link", "add", bridgeName, "type", "bridge")
	must("ip", "addr", "add", bridgeIP+"/24", "dev", bridgeName)
	must("ip", "link", "set", bridgeName, "up")
	nw := &network{t: t}
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("n%d", i)
		nw.ids = append(nw.ids, id)
		ns, veth := nsName(id), vethPrefix+id
		must("ip", "netns", "add", ns)
		must("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
		must("ip", "link", "set", veth, "master", bridgeName)
		must("ip", "link", "set", veth, "up")
		must("ip", "netns", "exec", ns, "ip", "addr", "add", hostIP(i)+"/24", "dev", "eth0")
		must("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")
		must("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
	}
	var err error
	if nw.pg, err = newForwarder(fmt.Sprintf("%s:%d", bridgeIP, pgFwdPort), pgTarget); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nw.pg.close)
	if nw.nats, err = newForwarder(fmt.Sprintf("%s:%d", bridgeIP, natsFwdPort), natsTarget); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nw.nats.close)
	return nw
}

func ipOf(id string) string {
	i, _ := strconv.Atoi(strings.TrimPrefix(id, "n"))
	return hostIP(i)
}

// drop makes node to drop every packet arriving from node from (a one-way cut:
// to's own packets still reach from).
func (nw *network) drop(from, to string) {
	nw.t.Helper()
	if err := nsRun(to, "iptables", "-A", "INPUT", "-s", ipOf(from), "-j", "DROP"); err != nil {
		nw.t.Fatal(err)
	}
}

// cut drops packets between a and b in both directions.
func (nw *network) cut(a, b string) {
	nw.drop(a, b)
	nw.drop(b, a)
}

// partition cuts every node of each group from every node of the other groups.
func (nw *network) partition(groups ...[]string) {
	for i, g := range groups {
		for _, h := range groups[i+1:] {
			for _, a := range g {
				for _, b := range h {
					nw.cut(a, b)
				}
			}
		}
	}
}

// isolateAll drops every packet between node id and anything else, including the
// forwarders on the bridge address (so it loses PostgreSQL, NATS and admin too), and
// cuts its open forwarded connections.
func (nw *network) isolateAll(id string) {
	nw.t.Helper()
	for _, rule := range [][]string{{"INPUT", "!", "-i", "lo"}, {"OUTPUT", "!", "-o", "lo"}} {
		if err := nsRun(id, append(append([]string{"iptables", "-A"}, rule...), "-j", "DROP")...); err != nil {
			nw.t.Fatal(err)
		}
	}
	nw.pg.cut(ipOf(id))
	nw.nats.cut(ipOf(id))
}

// heal removes every rule, qdisc and forwarder cut.
func (nw *network) heal() {
	for _, id := range nw.ids {
		_ = nsRun(id, "iptables", "-F", "INPUT")
		_ = nsRun(id, "iptables", "-F", "OUTPUT")
		_ = nsRun(id, "tc", "qdisc", "del", "dev", "eth0", "root")
		nw.pg.restore(ipOf(id))
		nw.nats.restore(ipOf(id))
	}
}

// forwarder is a TCP forwarder in the test process: it listens on the bridge
// address and copies each connection to target (on loopback). cut closes a source
// address's connections and refuses its new ones until restore.
type forwarder struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	conns   map[string]map[net.Conn]struct{} // by source IP
	blocked map[string]bool
	wg      sync.WaitGroup
}

func newForwarder(listen, target string) (*forwarder, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("forwarder on %s: %w", listen, err)
	}
	f := &forwarder{ln: ln, target: target, conns: map[string]map[net.Conn]struct{}{}, blocked: map[string]bool{}}
	f.wg.Add(1)
	go f.serve()
	return f, nil
}

func (f *forwarder) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		go f.handle(c)
	}
}

func (f *forwarder) track(src string, c net.Conn, add bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !add {
		delete(f.conns[src], c)
		return true
	}
	if f.blocked[src] {
		return false
	}
	if f.conns[src] == nil {
		f.conns[src] = map[net.Conn]struct{}{}
	}
	f.conns[src][c] = struct{}{}
	return true
}

func (f *forwarder) handle(c net.Conn) {
	src, _, _ := net.SplitHostPort(c.RemoteAddr().String())
	if !f.track(src, c, true) {
		_ = c.Close()
		return
	}
	defer f.track(src, c, false)
	up, err := net.DialTimeout("tcp", f.target, 5*time.Second)
	if err != nil {
		_ = c.Close()
		return
	}
	f.track(src, up, true)
	defer f.track(src, up, false)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
	_ = c.Close()
	_ = up.Close()
	<-done
}

// cut closes src's connections and refuses new ones.
func (f *forwarder) cut(src string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.blocked[src] = true
	for c := range f.conns[src] {
		_ = c.Close()
	}
}

// restore accepts src's connections again.
func (f *forwarder) restore(src string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.blocked, src)
}

func (f *forwarder) close() {
	_ = f.ln.Close()
	f.mu.Lock()
	for _, m := range f.conns {
		for c := range m {
			_ = c.Close()
		}
	}
	f.mu.Unlock()
	f.wg.Wait()
}
