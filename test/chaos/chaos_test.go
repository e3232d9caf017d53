package chaos

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/test/nodebin"
)

var (
	flagAll    = flag.Bool("chaos.all", false, "run every scenario, not just the CI smoke subset, and the broken-build check")
	flagSeed   = flag.Uint64("chaos.seed", 1, "workload seed (a run with the same seed makes the same requests)")
	flagStrict = flag.Bool("chaos.strict", true, "fail on strict-linearizability violations too (rejections decided on a stale copy of an account); -chaos.strict=false reports them only")
)

// scenario is one nemesis against a fresh cluster.
type scenario struct {
	name  string
	nodes int
	smoke bool          // part of the CI smoke subset (go test ./...)
	hold  time.Duration // how long the fault lasts
	// inject starts the fault and returns what heals it.
	inject func(c *cluster) (heal func())
	// splits: the fault cuts the cluster into groups that cannot reach each other,
	// so at least two membership views must be seen while it lasts (a partition
	// whose rules had no effect fails). Not set where one view is right:
	// majorities-ring and bridge leave every node an indirect path (memberlist's
	// indirect probes keep one view, seen in every run), and isolate-all's views
	// cannot be read from outside the isolated nodes.
	splits bool
	// outage: the fault takes a service every command needs (PostgreSQL, NATS) away,
	// so no command is expected to succeed while it lasts.
	outage bool
	// upgradeFrom: the cluster starts from cmd/node built at this commit
	// (nodebin.BuildAt), and the fault is a rolling replacement with the working
	// tree's build (cluster.upgrade); checkUpgrade then requires that old and new
	// nodes both answered commands while they ran side by side.
	upgradeFrom string
}

// upgradeFromCommit is the release the upgrade scenario starts from: the last commit
// before today's wire-contract change (5462278: Expected-Version, Return, Meta- and
// Contract headers, unknown headers refused, rejection reasons on the wire and in
// command_outcomes by migration 4) and the migrations that took process_state,
// schedules and pii_keys over from the nodes (5-7, 10204f9). Its nodes create those
// tables themselves and know migrations 1-3 only, so a mixed cluster of it and the
// working tree exercises every schema and wire change made since.
const upgradeFromCommit = "9d350a0"

// upgradeDwell is how long the upgrade scenario runs the workload between one
// node's replacement (once the cluster has re-formed) and the next.
const upgradeDwell = 3 * time.Second

// isBuildAt reports whether a member's gossiped version is that of the build at
// upgradeFromCommit (nodebin.BuildAt stamps the commit's hash).
func isBuildAt(version string) bool { return strings.HasPrefix(version, upgradeFromCommit) }

// Workload minimums: a run whose clients got (almost) nothing done proves nothing.
// On this 2-core machine runs acknowledge 1,100–9,300 commands overall (make chaos,
// seed 1, 2026-12-04) and, while the fault lasts, hundreds, except pause, whose
// clients wait for the paused node's aggregates until it is declared dead: 11. The
// minimums are far below that, so only a workload that did not run fails them.
const (
	minAcknowledged        = 200
	minAcknowledgedInFault = 5
)

// scenarios are the nemeses, Jepsen's shapes.
var scenarios = []scenario{
	{name: "dual-owner", nodes: 3, smoke: true, splits: true, hold: 8 * time.Second,
		// n3 loses gossip with n1 and n2 but still reaches NATS and PostgreSQL: it owns
		// everything, while n1 and n2 split its aggregates between themselves.
		inject: func(c *cluster) func() {
			c.nw.partition([]string{"n3"}, []string{"n1", "n2"})
			return c.nw.heal
		}},
	{name: "kill9-restart", nodes: 3, smoke: true, hold: 5 * time.Second,
		inject: func(c *cluster) func() {
			c.kill("n2")
			return func() { c.start("n2") }
		}},
	{name: "split-2+3", nodes: 5, splits: true, hold: 8 * time.Second,
		inject: func(c *cluster) func() {
			c.nw.partition([]string{"n1", "n2"}, []string{"n3", "n4", "n5"})
			return c.nw.heal
		}},
	{name: "majorities-ring", nodes: 5, hold: 8 * time.Second,
		// Each node sees itself and its two ring neighbours: a majority, no two alike.
		inject: func(c *cluster) func() {
			for i := range 5 {
				c.nw.cut(fmt.Sprintf("n%d", i+1), fmt.Sprintf("n%d", (i+2)%5+1))
			}
			return c.nw.heal
		}},
	{name: "bridge", nodes: 5, hold: 8 * time.Second,
		// {n1,n2} and {n4,n5} cannot see each other; n3 sees everyone.
		inject: func(c *cluster) func() {
			c.nw.partition([]string{"n1", "n2"}, []string{"n4", "n5"})
			return c.nw.heal
		}},
	{name: "one-way", nodes: 3, hold: 8 * time.Second,
		// n3 drops everything n1 sends it; n1 still hears n3.
		inject: func(c *cluster) func() {
			c.nw.drop("n1", "n3")
			return c.nw.heal
		}},
	{name: "pause", nodes: 3, hold: 6 * time.Second,
		// SIGSTOP past failure detection: n2 wakes believing it still owns its aggregates.
		inject: func(c *cluster) func() {
			c.signal("n2", syscall.SIGSTOP)
			return func() { c.signal("n2", syscall.SIGCONT) }
		}},
	{name: "long-partition", nodes: 3, splits: true, hold: 40 * time.Second,
		// Outlasts suspicion + GossipToTheDeadTime (30s): only the rejoin loop heals it.
		inject: func(c *cluster) func() {
			c.nw.partition([]string{"n3"}, []string{"n1", "n2"})
			return c.nw.heal
		}},
	{name: "isolate-all", nodes: 3, hold: 8 * time.Second,
		// n3 loses everything: peers, PostgreSQL and NATS (its forwarded connections are cut).
		inject: func(c *cluster) func() {
			c.nw.isolateAll("n3")
			return c.nw.heal
		}},
	{name: "pg-outage", nodes: 3, outage: true, hold: 10 * time.Second,
		// PostgreSQL goes away for every node (the forwarder closes their connections
		// and refuses new ones), as a restart would look to them, without restarting
		// the PostgreSQL that other test packages share.
		inject: func(c *cluster) func() {
			for _, id := range c.nw.ids {
				c.nw.pg.cut(ipOf(id))
			}
			return c.nw.heal
		}},
	{name: "nats-outage", nodes: 3, outage: true, hold: 10 * time.Second,
		// Likewise NATS: every node loses its connection and cannot reconnect until the
		// heal; the clients (root namespace, loopback) keep theirs.
		inject: func(c *cluster) func() {
			for _, id := range c.nw.ids {
				c.nw.nats.cut(ipOf(id))
			}
			return c.nw.heal
		}},
	{name: "packet-loss", nodes: 3, hold: 10 * time.Second,
		// tc netem delay and loss on every node when the kernel has netem; otherwise
		// iptables' statistic match drops 15% of every node's incoming packets.
		inject: func(c *cluster) func() {
			for _, id := range c.nw.ids {
				if err := nsRun(id, "tc", "qdisc", "replace", "dev", "eth0", "root", "netem", "delay", "30ms", "10ms", "loss", "5%"); err != nil {
					if err := nsRun(id, "iptables", "-A", "INPUT", "!", "-i", "lo", "-m", "statistic", "--mode", "random", "--probability", "0.15", "-j", "DROP"); err != nil {
						c.t.Fatal(err)
					}
				}
			}
			return c.nw.heal
		}},
	{name: "rolling-upgrade", nodes: 3, smoke: true, upgradeFrom: upgradeFromCommit, hold: 0,
		// Nodes of upgradeFromCommit replaced one by one with the working tree's build:
		// graceful stop, start with the same id and addresses (the first new node
		// migrates the schema from 3 to today's under the running old nodes), wait for
		// the cluster to re-form and every handler partition to run once.
		inject: func(c *cluster) func() {
			want := map[string]bool{}
			for _, id := range c.nw.ids {
				want[id] = true
			}
			if err := waitUntil(10*time.Second, func() error { return c.versions(isBuildAt, want) }); err != nil {
				c.t.Errorf("upgrade: before it, %v", err)
			}
			before, err := c.schemaVersion()
			if err != nil {
				c.t.Fatal(err)
			}
			for i, id := range c.nw.ids {
				c.upgrade(id)
				want[id] = false
				if _, err := c.waitConverged(30*time.Second, c.nw.ids...); err != nil {
					c.t.Errorf("upgrade of %s: %v", id, err)
				}
				if err := c.waitHandlersOwned(30 * time.Second); err != nil {
					c.t.Errorf("upgrade of %s: handler partitions: %v", id, err)
				}
				if err := waitUntil(10*time.Second, func() error { return c.versions(isBuildAt, want) }); err != nil {
					c.t.Errorf("upgrade of %s: %v", id, err)
				}
				if i == 0 {
					// The first new node migrated the schema the old ones keep using.
					after, err := c.schemaVersion()
					if latest := latestMigration(c.t); err != nil || before >= latest || after != latest {
						c.t.Errorf("upgrade: schema at migration %d before the first new node and %d after it (%v), want below and at %d", before, after, err, latest)
					}
				}
				// Each mixed state serves the workload a while before the next step.
				time.Sleep(upgradeDwell)
			}
			return func() {}
		}},
	{name: "rolling-restart", nodes: 3, hold: 0,
		// Every node in turn: SIGTERM, start again, wait for the cluster to re-form.
		inject: func(c *cluster) func() {
			for _, id := range c.nw.ids {
				c.terminate(id)
				c.start(id)
				if _, err := c.waitConverged(30*time.Second, c.nw.ids...); err != nil {
					c.t.Errorf("rolling restart of %s: %v", id, err)
				}
			}
			return func() {}
		}},
}

// runOptions vary a run for the broken-build check.
type runOptions struct {
	unsafe  bool // run the nodes from unsafeNodeBinary instead of nodeBinary
	clients int
}

// runScenario runs one scenario end to end and returns its row: workload, fault,
// heal, quiescence, checkers.
func runScenario(t *testing.T, sc scenario, o runOptions) *result {
	began := time.Now()
	r := &result{scenario: sc.name, linearizable: "-", strict: "-"}
	var bin, upgradeTo string
	switch {
	case o.unsafe:
		bin = unsafeNodeBinary(t)
	case sc.upgradeFrom != "":
		began := time.Now()
		bin, upgradeTo = nodebin.BuildAt(t, sc.upgradeFrom), nodeBinary(t)
		t.Logf("node binaries at %s and of the working tree ready in %s", sc.upgradeFrom, time.Since(began).Round(100*time.Millisecond))
	default:
		bin = nodeBinary(t)
	}
	c := newCluster(t, sc.nodes, bin)
	c.upgradeTo = upgradeTo
	h := newHistory()
	w := workload{seed: *flagSeed, clients: o.clients, pause: 5 * time.Millisecond}

	var clients []*client
	for i := range w.clients + 1 { // the last one opens accounts and probes
		cl, err := newClient(i, c.prefix, h)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.nc.Close()
		clients = append(clients, cl)
	}
	admin := clients[w.clients]
	if err := w.setup(admin); err != nil {
		t.Fatalf("setup: %v", err)
	}
	sampler := sampleCheckpoints(c.db, c.schema)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, cl := range clients[:w.clients] {
		wg.Add(1)
		go func() { defer wg.Done(); w.run(cl, stop) }()
	}
	workStart := h.now()
	time.Sleep(3 * time.Second)
	faultStart := h.now()
	heal := sc.inject(c)
	r.views = c.watchViews(sc.hold)
	heal()
	faultEnd := h.now()
	healed := time.Now()

	// Time to converge: from the heal until every node agrees on all members and one ring.
	converged := make(chan time.Duration, 1)
	go func() {
		_, err := c.waitConverged(90*time.Second, c.nw.ids...)
		if err != nil {
			r.violate("no agreement on members and ring after the heal: %v", err)
		}
		converged <- time.Since(healed)
	}()
	time.Sleep(4 * time.Second)
	close(stop)
	wg.Wait()
	workEnd := h.now()
	r.converge = <-converged

	// Healed: each handler partition has one running owner, and commands succeed again.
	if err := c.waitHandlersOwned(30 * time.Second); err != nil {
		r.violate("handler partitions after the heal: %v", err)
	}
	admin.budget = 20 * time.Second
	for i := range linAccounts {
		a := linAccount(i)
		if p := admin.do(&op{Kind: "deposit", Account: a, Amount: 1, ID: fmt.Sprintf("probe-%s", a)}, "DepositMoney",
			map[string]any{"account_number": a, "amount": 1}); p.Outcome != okOutcome {
			r.violate("after the heal, a deposit to %s is %s (%s)", a, p.Outcome, p.Code)
		}
	}

	// Quiesce: transfers settle, the projection catches up.
	ctx := context.Background()
	if err := waitUntil(60*time.Second, func() error { return transfersSettled(ctx, c.db, c.schema) }); err != nil {
		r.violate("transfers: %v", err)
	}
	if err := waitUntil(60*time.Second, func() error { return projectionMatches(ctx, c.db, c.schema) }); err != nil {
		r.violate("projection after quiescence: %v", err)
	}
	backwards, samples := sampler.finish()
	for _, b := range backwards {
		r.violate("%s", b)
	}
	if samples == 0 {
		r.violate("no checkpoint sample was taken")
	}

	events, err := loadEvents(ctx, c.db, c.schema)
	if err != nil {
		t.Fatal(err)
	}
	projection, err := loadProjection(ctx, c.db, c.schema)
	if err != nil {
		t.Fatal(err)
	}
	ops := h.all()
	checkStore(r, ops, events, projection)
	checkLinearizable(r, ops, *flagStrict)
	checkWorkload(r, sc, ops, faultStart, faultEnd)
	if sc.upgradeFrom != "" {
		checkUpgrade(r, ops, h.start, c.replacements(), len(c.nw.ids))
	}
	var slowest *op
	r.maxUnavailable, slowest = longestWait(ops, workStart, workEnd)
	if slowest != nil {
		r.info = append(r.info, fmt.Sprintf("longest wait %s: %s %s %s, attempts: %s", r.maxUnavailable.Round(time.Millisecond),
			slowest.Kind, slowest.Account, slowest.ID, strings.Join(slowest.Attempts, ", ")))
	}
	r.elapsed = time.Since(began)
	return r
}

// TestChaos runs the scenarios (the CI smoke subset by default, all of them with
// -chaos.all) and prints one table. Any broken invariant fails the test.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos scenarios are not short")
	}
	var rows []*result
	for _, sc := range scenarios {
		if !sc.smoke && !*flagAll {
			continue
		}
		t.Run(sc.name, func(t *testing.T) {
			r := runScenario(t, sc, runOptions{clients: 4})
			rows = append(rows, r)
			for _, n := range r.info {
				t.Log(n)
			}
			for _, n := range r.notes {
				t.Logf("FINDING (not an invariant without -chaos.strict): %s", n)
			}
			for _, v := range r.violations {
				t.Errorf("INVARIANT BROKEN: %s", v)
			}
		})
	}
	if len(rows) > 0 {
		fmt.Fprintf(os.Stdout, "\nchaos run, seed %d\n%s\n", *flagSeed, table(rows))
		for _, r := range rows {
			if len(r.violations)+len(r.notes) > 0 {
				fmt.Fprintf(os.Stdout, "%s, by checker (violations and findings):\n%s", r.scenario, summarize(append(r.violations, r.notes...)))
			}
		}
	}
}

// TestCheckersCatchBrokenBuild runs the dual-ownership scenario against nodes built
// with the ringleader_unsafe tag (nodebin.BuildUnsafe: appends ignore the expected
// version, see node/unsafe.go) and passes only if the checkers report a broken
// invariant.
func TestCheckersCatchBrokenBuild(t *testing.T) {
	// Part of the CI smoke run too: a checker that cannot fail proves nothing.
	var sc scenario
	for _, s := range scenarios {
		if s.name == "dual-owner" {
			sc = s
		}
	}
	sc.name = "dual-owner-UNSAFE"
	sc.hold = 8 * time.Second
	r := runScenario(t, sc, runOptions{clients: 6, unsafe: true})
	fmt.Fprintf(os.Stdout, "\nbroken build (-tags ringleader_unsafe), seed %d\n%s\n", *flagSeed, table([]*result{r}))
	fmt.Fprintf(os.Stdout, "violations the checkers found, by checker:\n%s", summarize(append(r.violations, r.notes...)))
	broken := safetyBroken(r)
	if len(broken) == 0 {
		t.Fatalf("the checkers found no broken safety property in a build that skips the expected-version check (violations: %q)", r.violations)
	}
	fmt.Fprintf(os.Stdout, "safety properties the checkers found broken: %s\n", strings.Join(broken, ", "))
}

// safetyBroken names the safety properties r found broken: what corruption breaks,
// as opposed to liveness findings (no agreement after the heal, a slow handler)
// that a run can report for other reasons.
func safetyBroken(r *result) []string {
	var broken []string
	add := func(cond bool, name string) {
		if cond {
			broken = append(broken, name)
		}
	}
	add(r.duplicates > 0, "duplicates")
	add(r.gaps > 0, "stream gaps")
	add(r.ackedLost > 0, "acknowledged writes lost")
	add(r.linearizable == "NO", "acknowledged writes not linearizable")
	add(r.strict == "NO", "rejections not linearizable")
	add(!r.conserved, "money not conserved")
	replay := 0
	for _, v := range r.violations {
		if strings.HasPrefix(v, "replay: ") { // a recorded balance that disagrees, a negative balance
			replay++
		}
	}
	add(replay > 0, "replay of the events (recorded or negative balances)")
	return broken
}

// checkWorkload fails a run that could not have shown anything: too few commands
// acknowledged overall or while the fault lasted, or a partition that never split
// the membership.
func checkWorkload(r *result, sc scenario, ops []*op, faultStart, faultEnd int64) {
	acked, inFault := 0, 0
	for _, o := range ops {
		if o.Outcome != okOutcome {
			continue
		}
		acked++
		if o.Call >= faultStart && o.Call <= faultEnd {
			inFault++
		}
	}
	if acked < minAcknowledged {
		r.violate("workload: %d commands acknowledged, want at least %d", acked, minAcknowledged)
	}
	if !sc.outage && inFault < minAcknowledgedInFault {
		r.violate("workload: %d commands acknowledged while the fault lasted, want at least %d", inFault, minAcknowledgedInFault)
	}
	if sc.splits && r.views < 2 {
		r.violate("the fault never split the membership (%d view): the partition had no effect", r.views)
	}
}

// checkUpgrade requires that the rolling upgrade replaced every node and that, while
// old and new builds ran side by side (from the first new node's start to the last
// old node's stop), nodes of both builds acknowledged commands: the old ones with a
// schema migrated under them, and the two kinds forwarding to each other. A reply
// names the node that executed the command; which build that node ran follows from
// when the reply came and when that node was replaced.
func checkUpgrade(r *result, ops []*op, start time.Time, steps []replacement, nodes int) {
	if len(steps) != nodes {
		r.violate("upgrade: %d of %d nodes replaced", len(steps), nodes)
		return
	}
	at := func(t time.Time) int64 { return int64(t.Sub(start)) }
	mixedFrom, mixedTo := at(steps[0].started), at(steps[len(steps)-1].stopped)
	stopped, started := map[string]int64{}, map[string]int64{}
	for _, s := range steps {
		stopped[s.id], started[s.id] = at(s.stopped), at(s.started)
	}
	oldAcks, newAcks := 0, 0
	for _, o := range ops {
		if _, known := stopped[o.Node]; !known || o.Outcome != okOutcome || o.Return < mixedFrom || o.Return > mixedTo {
			continue
		}
		switch {
		case o.Return < stopped[o.Node]: // before the node's old process was told to stop
			oldAcks++
		case o.Call > started[o.Node]: // sent after its new process started
			newAcks++
		}
	}
	r.info = append(r.info, fmt.Sprintf("upgrade: while the builds were mixed, %d commands acknowledged by old nodes, %d by new ones", oldAcks, newAcks))
	if oldAcks == 0 || newAcks == 0 {
		r.violate("upgrade: while the builds were mixed, old nodes acknowledged %d commands and new nodes %d; want some of each", oldAcks, newAcks)
	}
}
