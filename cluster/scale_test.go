package cluster

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader/internal/testport"
	"github.com/ringleader-go/ringleader/internal/testwait"
	"github.com/ringleader-go/ringleader/placement"
)

// scaleMembers is the cluster size of TestRingAgreementAtScale. make test runs
// it with 12 members (under -race); make scale with 50:
//
//	go test -count=1 -v -run '^TestRingAgreementAtScale$' ./cluster/ -args -scale.members=50
var scaleMembers = flag.Int("scale.members", 12, "members TestRingAgreementAtScale starts (make scale: 50)")

// TestRingAgreementAtScale starts scale.members members in this process on
// 127.0.0.1 (real UDP/TCP, ports from testport, default Tuning and Coalesce),
// every one given the same three seeds and building the placement ring in its
// OnChange as a node does. It then changes the membership three times: (a) one
// more node joins, (b) a node leaves gracefully (Close), (c) a node is killed
// (memberlist shut down without a leave, as crash does). For each it logs how
// long until every live member has the same member set and the same ring
// fingerprint (from the start of the change to the last member's OnChange; the
// first and the median member too), how many rings each member built on the
// way, how many "member failed" lines named a member that was alive or left
// gracefully, and the fraction of partitions whose owner moved against the
// ideal 1/N. It asserts agreement, movement within placement's worst-case
// bound, and that every survivor reported the killed node failed.
func TestRingAgreementAtScale(t *testing.T) {
	size := *scaleMembers
	if size < 8 {
		t.Fatalf("-scale.members=%d: want at least 8 (three seeds, and a leaver and a victim that are not seeds)", size)
	}
	// Generous limits, within one budget for the whole test. Usually every wait
	// ends within 2s. But a member can miss another's join in the gossip burst
	// of 50 starting together and learn it only at its next push/pull sync
	// (PushPullInterval 15s, doubled by memberlist above 32 members), and a
	// CPU-starved process (all members are in this one) makes members declare
	// each other dead until they refute or rejoin.
	budget := time.Now().Add(100 * time.Second)
	limit := func(d time.Duration) time.Duration { return min(d, time.Until(budget)) }
	startLimit, changeLimit := limit(45*time.Second), 30*time.Second

	// Every node gets the same seed list, as in a deployment: the first three.
	// Other ports are taken just before their node starts, so that no other
	// process can bind them in between.
	var seedPorts []int
	var seedAddrs []string
	for range 3 {
		p := testport.Free(t)
		seedPorts = append(seedPorts, p)
		seedAddrs = append(seedAddrs, fmt.Sprintf("127.0.0.1:%d", p))
	}
	port := func(i int) int {
		if i < len(seedPorts) {
			return seedPorts[i]
		}
		return testport.Free(t)
	}
	id := func(i int) string { return fmt.Sprintf("s%02d", i+1) }

	// Registered first, so it runs after every member is down.
	t.Cleanup(func() { awaitMemberlistGoroutines(5 * time.Second) })

	var rows []scaleRow
	var live []*scaleNode
	// Start together.
	start := time.Now()
	for i := range size {
		live = append(live, startScaleNode(t, id(i), port(i), seedAddrs))
	}
	ring := waitForRing(t, startLimit, live)
	rows = append(rows, measure(t, "start together", start, nil, ring, live))
	rows[len(rows)-1].falseFailures = falseFailures(live, nil, "")
	settle(t, limit(changeLimit), live, ring)

	// (a) One more node joins.
	before := failures(live)
	start = time.Now()
	joiner := startScaleNode(t, id(size), port(size), seedAddrs)
	live = append(live, joiner)
	next := waitForRing(t, limit(changeLimit), live)
	rows = append(rows, measure(t, fmt.Sprintf("join (%s)", joiner.LocalID()), start, ring, next, live))
	rows[len(rows)-1].falseFailures = falseFailures(live, before, "")
	ring = next
	settle(t, limit(changeLimit), live, ring)

	// (b) A node that is not a seed leaves gracefully.
	leaver := live[max(4, size/2)]
	live = slices.DeleteFunc(live, func(n *scaleNode) bool { return n == leaver })
	before = failures(live)
	start = time.Now()
	if err := leaver.Close(); err != nil {
		t.Fatalf("close %s: %v", leaver.LocalID(), err)
	}
	closeTook := time.Since(start)
	next = waitForRing(t, limit(changeLimit), live)
	rows = append(rows, measure(t, fmt.Sprintf("leave (%s, Close took %v)", leaver.LocalID(), closeTook.Round(time.Millisecond)), start, ring, next, live))
	// A graceful leave is never a failure, not even of the leaver.
	rows[len(rows)-1].falseFailures = falseFailures(live, before, "")
	ring = next
	settle(t, limit(changeLimit), live, ring)

	// (c) A node that is not a seed is killed: no leave message.
	victim := live[max(3, size/4)]
	live = slices.DeleteFunc(live, func(n *scaleNode) bool { return n == victim })
	before = failures(live)
	start = time.Now()
	crash(victim.testNode)
	next = waitForRing(t, limit(changeLimit), live)
	rows = append(rows, measure(t, fmt.Sprintf("kill (%s)", victim.LocalID()), start, ring, next, live))
	rows[len(rows)-1].falseFailures = falseFailures(live, before, victim.LocalID())
	if got := failures(live)[victim.LocalID()] - before[victim.LocalID()]; got != len(live) {
		t.Errorf("%d 'member failed' lines for %s, want one from each of the %d survivors", got, victim.LocalID(), len(live))
	}

	var out strings.Builder
	tw := tabwriter.NewWriter(&out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "change\tmembers\tall agree\tfirst\tmedian\trings built/member\tfalse failures\tmoved\tideal 1/N\tmoved/ideal\t\n")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d→%d\t%v\t%v\t%v\t%s\t%d\t%s\t%s\t%s\t\n", r.change, r.from, r.to,
			r.all.Round(time.Millisecond), r.first.Round(time.Millisecond), r.median.Round(time.Millisecond),
			r.builds, r.falseFailures, r.moved, r.ideal, r.ratio)
	}
	tw.Flush()
	t.Logf("%d members on 127.0.0.1, default Tuning and Coalesce (%v), the ring built in each OnChange; "+
		"times from the start of the change to the members' OnChange with the new ring:\n%s",
		size, DefaultCoalesce, out.String())
}

// awaitMemberlistGoroutines waits, at most limit, for memberlist's goroutines
// to end. Shutdown stops memberlist's schedulers but does not wait for a probe
// in flight, which ends within a probe interval or so (longer when memberlist's
// awareness has stretched it on a busy machine); with 50 members one is often
// still running when the last test returns, and TestMain's leak check would
// report it.
func awaitMemberlistGoroutines(limit time.Duration) {
	_ = testwait.Until(limit, func() error {
		buf := make([]byte, 8<<20)
		buf = buf[:runtime.Stack(buf, true)]
		if bytes.Contains(buf, []byte("github.com/hashicorp/memberlist.")) {
			return errors.New("memberlist goroutines still running")
		}
		return nil
	})
}

// scaleNode is a member of TestRingAgreementAtScale: a testNode whose OnChange
// also builds the ring, as node does, and records when.
type scaleNode struct {
	*testNode

	mu    sync.Mutex
	rings []ringAt
	err   error // from placement.New inside OnChange
}

type ringAt struct {
	at   time.Time
	ring *placement.Ring
}

func startScaleNode(t *testing.T, nodeID string, port int, seedAddrs []string) *scaleNode {
	t.Helper()
	sn := &scaleNode{}
	sn.testNode = startNode(t, nodeID, func(c *Config) {
		c.BindPort = port
		c.Seeds = seedAddrs
		// memberlist's debug lines (every push/pull, every failed probe) from 50
		// members cost CPU the measurement needs; the cluster's own lines are at
		// info and above. RL_TEST_LOG keeps them, to see why members flapped.
		if os.Getenv("RL_TEST_LOG") == "" {
			c.Logger = c.Logger.Level(zerolog.InfoLevel)
		}
		record := c.OnChange
		c.OnChange = func(ms []placement.Member) {
			record(ms)
			ring, err := placement.New(placement.Config{}, ms)
			at := time.Now()
			sn.mu.Lock()
			defer sn.mu.Unlock()
			if err != nil {
				sn.err = err
				return
			}
			sn.rings = append(sn.rings, ringAt{at: at, ring: ring})
		}
	})
	// Crash rather than Close at the end: 50 graceful leaves one after another
	// take half a minute and measure nothing. Cleanups run last-in first-out,
	// so this one runs before startNode's Close, which is then a no-op.
	t.Cleanup(func() { crash(sn.testNode) })
	return sn
}

// ringsSince returns the rings built after t0, oldest first.
func (n *scaleNode) ringsSince(t0 time.Time) []ringAt {
	n.mu.Lock()
	defer n.mu.Unlock()
	i := slices.IndexFunc(n.rings, func(r ringAt) bool { return r.at.After(t0) })
	if i < 0 {
		return nil
	}
	return slices.Clone(n.rings[i:])
}

func (n *scaleNode) lastRing() (*placement.Ring, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.err != nil {
		return nil, n.err
	}
	if len(n.rings) == 0 {
		return nil, nil
	}
	return n.rings[len(n.rings)-1].ring, nil
}

// agree reports nil when every node's member set is exactly the nodes, and
// every node's last ring is the ring of that set.
func agree(nodes []*scaleNode) (*placement.Ring, error) {
	want := make([]placement.Member, len(nodes))
	for i, n := range nodes {
		want[i] = placement.Member{ID: n.LocalID()}
	}
	ring, err := placement.New(placement.Config{}, want)
	if err != nil {
		return nil, err
	}
	wantIDs := ids(ring.Members())
	for _, n := range nodes {
		if got := ids(n.Members()); !slices.Equal(got, wantIDs) {
			return nil, fmt.Errorf("%s sees %d members (%s), want %d", n.LocalID(), len(got), diffIDs(got, wantIDs), len(wantIDs))
		}
		r, err := n.lastRing()
		if err != nil {
			return nil, fmt.Errorf("%s: OnChange could not build its ring: %v", n.LocalID(), err)
		}
		if r.Fingerprint() != ring.Fingerprint() {
			return nil, fmt.Errorf("%s has ring %s of %d members, want %s", n.LocalID(), r.Fingerprint(), r.Len(), ring.Fingerprint())
		}
	}
	return ring, nil
}

// diffIDs says which IDs got lacks and which it has in excess.
func diffIDs(got, want []string) string {
	var missing, extra []string
	for _, w := range want {
		if !slices.Contains(got, w) {
			missing = append(missing, w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			extra = append(extra, g)
		}
	}
	return fmt.Sprintf("missing %v, extra %v", missing, extra)
}

// waitForRing waits until the nodes agree and returns their ring.
func waitForRing(t *testing.T, limit time.Duration, nodes []*scaleNode) *placement.Ring {
	t.Helper()
	var ring *placement.Ring
	waitFor(t, limit, func() error {
		r, err := agree(nodes)
		ring = r
		return err
	})
	return ring
}

// settle waits until the nodes agree on the ring they should have and none of
// them has built a ring for a second, so that the next change starts from a
// quiet cluster: a member falsely declared dead meanwhile (a CPU-starved
// process misses its probes; it refutes and rejoins) is back first.
func settle(t *testing.T, limit time.Duration, nodes []*scaleNode, ring *placement.Ring) {
	t.Helper()
	const quiet = time.Second
	waitFor(t, limit, func() error {
		r, err := agree(nodes)
		if err != nil {
			return err
		}
		if r.Fingerprint() != ring.Fingerprint() {
			return fmt.Errorf("ring changed to %s", r.Fingerprint())
		}
		for _, n := range nodes {
			if rs := n.ringsSince(time.Now().Add(-quiet)); len(rs) > 0 {
				return fmt.Errorf("%s built a ring %v ago", n.LocalID(), time.Since(rs[0].at).Round(time.Millisecond))
			}
		}
		return nil
	})
}

// failures counts the "member failed" lines the nodes logged, by failed member.
func failures(nodes []*scaleNode) map[string]int {
	out := make(map[string]int)
	for _, n := range nodes {
		for line := range strings.Lines(n.logs.String()) {
			if !strings.Contains(line, "cluster: member failed") {
				continue
			}
			_, rest, _ := strings.Cut(line, `"member":"`)
			member, _, _ := strings.Cut(rest, `"`)
			out[member]++
		}
	}
	return out
}

// falseFailures is how many "member failed" lines the nodes logged since
// before (a failures result), not counting those naming dead.
func falseFailures(nodes []*scaleNode, before map[string]int, dead string) int {
	k := 0
	for member, c := range failures(nodes) {
		if member != dead {
			k += c - before[member]
		}
	}
	return k
}

type scaleRow struct {
	change               string
	from, to             int
	all, first, median   time.Duration
	builds               string // rings built per member during the change: min–max
	falseFailures        int    // live members declared failed during the change
	moved, ideal, ratio  string
	movedFrac, idealFrac float64
}

// measure summarises one change, from start to the ring next the nodes agree
// on (prev before it, nil at start-up), and checks movement against
// placement's worst-case bound.
func measure(t *testing.T, change string, start time.Time, prev, next *placement.Ring, nodes []*scaleNode) scaleRow {
	t.Helper()
	var took []time.Duration
	minB, maxB := -1, 0
	for _, n := range nodes {
		rs := n.ringsSince(start)
		if len(rs) == 0 { // agreement was checked: at least the last ring is new
			t.Fatalf("%s built no ring since the change", n.LocalID())
		}
		took = append(took, rs[len(rs)-1].at.Sub(start))
		if minB < 0 || len(rs) < minB {
			minB = len(rs)
		}
		maxB = max(maxB, len(rs))
	}
	slices.Sort(took)
	row := scaleRow{
		change: change, from: prev.Len(), to: next.Len(),
		all: took[len(took)-1], first: took[0], median: took[len(took)/2],
		builds: fmt.Sprint(minB),
		moved:  "-", ideal: "-", ratio: "-",
	}
	if maxB != minB {
		row.builds = fmt.Sprintf("%d–%d", minB, maxB)
	}
	if prev == nil {
		return row
	}
	moves, err := placement.Moved(prev, next)
	if err != nil {
		t.Fatal(err)
	}
	row.movedFrac = float64(len(moves)) / float64(next.PartitionCount())
	row.idealFrac = 1 / float64(max(prev.Len(), next.Len()))
	row.moved = fmt.Sprintf("%.3f (%d)", row.movedFrac, len(moves))
	row.ideal = fmt.Sprintf("%.3f", row.idealFrac)
	row.ratio = fmt.Sprintf("%.2f", row.movedFrac/row.idealFrac)
	// placement's TestMovement bounds every single join or leave of N ≤ 50 by
	// ideal + 0.18 (its worst-naming bound where the per-member cap changes).
	if bound := row.idealFrac + 0.18; row.movedFrac > bound {
		t.Errorf("%s: %.3f of the partitions moved, more than ideal %.3f + 0.18", change, row.movedFrac, row.idealFrac)
	}
	return row
}
