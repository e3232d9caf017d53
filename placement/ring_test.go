package placement

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/buraksezer/consistent"
	"github.com/cespare/xxhash/v2"
)

// nodes returns members prefix1..prefixN.
func nodes(prefix string, n int) []Member {
	ms := make([]Member, n)
	for i := range ms {
		ms[i] = Member{ID: fmt.Sprintf("%s%d", prefix, i+1)}
	}
	return ms
}

func reversed(ms []Member) []Member {
	slices.Reverse(ms)
	return ms
}

func mustNew(tb testing.TB, cfg Config, ms []Member) *Ring {
	tb.Helper()
	r, err := New(cfg, ms)
	if err != nil {
		tb.Fatalf("New(%+v, %d members): %v", cfg, len(ms), err)
	}
	return r
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero Config: %v", err)
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	err := Config{Partitions: -1, ReplicationFactor: 1, Load: 0.5}.Validate()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("want ErrInvalidConfig, got %v", err)
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok || len(joined.Unwrap()) != 3 {
		t.Fatalf("want 3 joined problems, got %v", err)
	}
	for _, bad := range []Config{
		{Partitions: MaxPartitions + 1},
		{ReplicationFactor: MaxReplicationFactor + 1},
		{Load: math.NaN()},
		{Load: math.Inf(1)},
		{Load: -1},
	} {
		if err := bad.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: want ErrInvalidConfig, got %v", bad, err)
		}
		if _, err := New(bad, nodes("n", 3)); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("New(%+v): want ErrInvalidConfig, got %v", bad, err)
		}
	}
}

func TestNewErrors(t *testing.T) {
	for name, ms := range map[string][]Member{"nil": nil, "empty": {}} {
		if _, err := New(Config{}, ms); !errors.Is(err, ErrNoMembers) {
			t.Errorf("%s members: want ErrNoMembers, got %v", name, err)
		}
	}
	if _, err := New(Config{}, []Member{{ID: "a"}, {ID: ""}}); !errors.Is(err, ErrInvalidMember) {
		t.Errorf("empty ID: want ErrInvalidMember, got %v", err)
	}
	if _, err := New(Config{}, []Member{{ID: "a"}, {ID: "b"}, {ID: "a", Meta: "x"}}); !errors.Is(err, ErrInvalidMember) ||
		!strings.Contains(err.Error(), `"a"`) {
		t.Errorf("duplicate ID: want ErrInvalidMember naming a, got %v", err)
	}

	// More members than partitions: consistent's floor(P/N) is 0.
	_, err := New(Config{Partitions: 7}, nodes("n", 8))
	var ce *CapacityError
	if !errors.As(err, &ce) || !errors.Is(err, ErrInsufficientCapacity) {
		t.Fatalf("8 members, 7 partitions: want *CapacityError, got %v", err)
	}
	if ce.Members != 8 || ce.Partitions != 7 || ce.MaxPerMember != 0 {
		t.Errorf("CapacityError = %+v", ce)
	}
	// Load 1 with 271 = 5×54 + 1: each member may hold 54, one partition is left over.
	if _, err := New(Config{Load: 1}, nodes("n", 5)); !errors.As(err, &ce) || ce.MaxPerMember != 54 {
		t.Errorf("Load 1, 5 members: want *CapacityError with 54 per member, got %v", err)
	}
	// Exactly as many members as partitions fits.
	mustNew(t, Config{Partitions: 7}, nodes("n", 7))
}

// TestNeverPanics sweeps small configurations, where the bounded-load rule is
// tightest, and checks New either succeeds within the load bound or returns a
// *CapacityError: the capacity check predicts consistent's panic exactly.
func TestNeverPanics(t *testing.T) {
	for _, p := range []int{1, 2, 3, 5, 7, 10, 31} {
		for _, rf := range []int{MinReplicationFactor, 3, 20} {
			for _, load := range []float64{1, 1.01, 1.25, 1.5, 2, 1e300} {
				for n := 1; n <= p+2; n++ {
					cfg := Config{Partitions: p, ReplicationFactor: rf, Load: load}
					r, err := New(cfg, nodes("m", n))
					if err != nil {
						if !errors.Is(err, ErrInsufficientCapacity) {
							t.Fatalf("%+v n=%d: unexpected error %v", cfg, n, err)
						}
						continue
					}
					per := cfg.maxPerMember(n)
					for id, l := range r.Loads() {
						if l > per {
							t.Fatalf("%+v n=%d: %s owns %d > %d", cfg, n, id, l, per)
						}
					}
				}
			}
		}
	}
}

func TestSingleMemberOwnsEverything(t *testing.T) {
	r := mustNew(t, Config{}, []Member{{ID: "solo", Meta: "nats:rl.node.solo"}})
	for p := range r.PartitionCount() {
		if m, ok := r.PartitionOwner(p); !ok || m.ID != "solo" || m.Meta != "nats:rl.node.solo" {
			t.Fatalf("partition %d: %+v %v", p, m, ok)
		}
	}
	if m, ok := r.Owner("anything"); !ok || m.ID != "solo" {
		t.Fatalf("Owner = %+v %v", m, ok)
	}
	if got := len(r.PartitionsOf("solo")); got != DefaultPartitions {
		t.Fatalf("PartitionsOf(solo) has %d partitions", got)
	}
}

func TestNilRing(t *testing.T) {
	var r *Ring
	if _, ok := r.Owner("k"); ok {
		t.Error("nil ring Owner ok")
	}
	if _, ok := r.PartitionOwner(0); ok {
		t.Error("nil ring PartitionOwner ok")
	}
	if r.PartitionOf("k") != -1 || r.Len() != 0 || r.PartitionCount() != 0 || r.Fingerprint() != "" ||
		r.Members() != nil || r.PartitionOwners() != nil || r.Loads() != nil || r.PartitionsOf("x") != nil {
		t.Error("nil ring returned non-zero values")
	}
}

func TestPartitionOwnerRange(t *testing.T) {
	r := mustNew(t, Config{}, nodes("n", 3))
	for _, p := range []int{-1, r.PartitionCount()} {
		if _, ok := r.PartitionOwner(p); ok {
			t.Errorf("PartitionOwner(%d) ok", p)
		}
	}
}

func TestOrderIndependent(t *testing.T) {
	ms := nodes("node-", 7)
	ref := mustNew(t, Config{}, ms)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		shuffled := slices.Clone(ms)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		for i := range shuffled {
			shuffled[i].Meta = fmt.Sprint(rng.Int()) // Meta must not matter either
		}
		r := mustNew(t, Config{}, shuffled)
		if r.Fingerprint() != ref.Fingerprint() {
			t.Fatalf("fingerprint %s != %s for %v", r.Fingerprint(), ref.Fingerprint(), shuffled)
		}
		if !slices.Equal(r.PartitionOwners(), ref.PartitionOwners()) {
			t.Fatalf("owners differ for order %v", shuffled)
		}
	}
}

func TestFingerprintDistinguishes(t *testing.T) {
	base := mustNew(t, Config{}, nodes("n", 3)).Fingerprint()
	others := map[string]*Ring{
		"member":     mustNew(t, Config{}, nodes("m", 3)),
		"count":      mustNew(t, Config{}, nodes("n", 4)),
		"partitions": mustNew(t, Config{Partitions: 277}, nodes("n", 3)),
		"rf":         mustNew(t, Config{ReplicationFactor: 21}, nodes("n", 3)),
		"load":       mustNew(t, Config{Load: 1.3}, nodes("n", 3)),
		"split id":   mustNew(t, Config{}, []Member{{ID: "n1n"}, {ID: "2"}, {ID: "n3"}}),
	}
	for name, r := range others {
		if r.Fingerprint() == base {
			t.Errorf("%s change kept fingerprint %s", name, base)
		}
	}
	if mustNew(t, DefaultConfig(), nodes("n", 3)).Fingerprint() != base {
		t.Error("zero Config and DefaultConfig fingerprint differently")
	}
}

// TestPlacementGolden pins the exact placement, so that an upgrade of
// consistent or xxhash that would move keys between nodes of mixed versions
// fails here first. If it fails on purpose, bump fingerprintVersion.
func TestPlacementGolden(t *testing.T) {
	r := mustNew(t, Config{}, nodes("n", 5))
	got := fmt.Sprintf("%016x", xxhash.Sum64String(strings.Join(r.PartitionOwners(), ",")))
	const want = "bea5d2d76fb49824"
	if got != want {
		t.Errorf("owners hash = %s, want %s", got, want)
	}
	if fp, want := r.Fingerprint(), "954301e7306b7f2e"; fp != want {
		t.Errorf("fingerprint = %s, want %s", fp, want)
	}
	if p, want := r.PartitionOf("account-42"), 122; p != want {
		t.Errorf("PartitionOf(account-42) = %d, want %d", p, want)
	}
}

func TestPartitionOfMatchesConsistent(t *testing.T) {
	r := mustNew(t, Config{}, nodes("n", 3))
	c := consistent.New(nil, consistent.Config{Hasher: xxhasher{}, PartitionCount: DefaultPartitions,
		ReplicationFactor: DefaultReplicationFactor, Load: DefaultLoad})
	for i := range 1000 {
		key := fmt.Sprintf("key-%d", i)
		if got, want := r.PartitionOf(key), c.FindPartitionID([]byte(key)); got != want {
			t.Fatalf("PartitionOf(%q) = %d, consistent says %d", key, got, want)
		}
		m, _ := r.Owner(key)
		if pm, _ := r.PartitionOwner(r.PartitionOf(key)); pm != m {
			t.Fatalf("Owner(%q) = %v, PartitionOwner = %v", key, m, pm)
		}
	}
}

// TestRingNameUnambiguous shows the quirk ringName works around: consistent
// names virtual nodes name+replica, so raw IDs n1 and n11 would collide.
func TestRingNameUnambiguous(t *testing.T) {
	ids := []string{"n1", "n11", "n111", "1", "11"}
	vnodes := func(name func(string) string) int {
		seen := map[string]bool{}
		for _, id := range ids {
			for i := range DefaultReplicationFactor {
				seen[fmt.Sprintf("%s%d", name(id), i)] = true
			}
		}
		return len(seen)
	}
	want := len(ids) * DefaultReplicationFactor
	if got := vnodes(func(id string) string { return id }); got == want {
		t.Fatalf("raw IDs unexpectedly unambiguous (%d virtual nodes)", got)
	}
	if got := vnodes(ringName); got != want {
		t.Fatalf("ringName gives %d distinct virtual nodes, want %d", got, want)
	}
	r := mustNew(t, Config{}, []Member{{ID: "n1"}, {ID: "n11"}})
	for id, l := range r.Loads() {
		if l == 0 {
			t.Errorf("%s owns nothing", id)
		}
	}
}

func TestBalance(t *testing.T) {
	for _, n := range []int{2, 3, 5, 7, 10, 25} {
		r := mustNew(t, Config{}, nodes("node-", n))
		per := r.Config().maxPerMember(n)
		lo, hi, total := math.MaxInt, 0, 0
		for _, l := range r.Loads() {
			lo, hi, total = min(lo, l), max(hi, l), total+l
		}
		if total != DefaultPartitions {
			t.Fatalf("n=%d: loads sum to %d", n, total)
		}
		if hi > per {
			t.Errorf("n=%d: max load %d exceeds bound %d", n, hi, per)
		}
		// The load bound caps the top only. Config.Load's doc: with the defaults a
		// member can own as few as half the mean, not fewer. That holds up to 10
		// members; with 25 (a mean of 10.8 partitions, where one partition is
		// 9% of it) the fewest is 4, so there a third of the mean is checked.
		floor, what := 0.5, "half"
		if n > 10 {
			floor, what = 1.0/3, "a third of"
		}
		if mean := float64(DefaultPartitions) / float64(n); float64(lo) < mean*floor {
			t.Errorf("n=%d: min load %d below %s the mean %.1f", n, lo, what, mean)
		}
		t.Logf("n=%2d: partitions per node min %d max %d (mean %.1f, bound %d, max/mean %.2f)",
			n, lo, hi, float64(DefaultPartitions)/float64(n), per, float64(hi)*float64(n)/float64(DefaultPartitions))
	}
}

// Movement bounds: how far above the ideal 1/N the fraction of partitions that
// change owner on a join (N-1 → N members) or a leave (N → N-1) may be, on
// average over TestMovement's 50 member namings and in the worst one. Bounded-load
// hashing moves more than the ideal when consistent's per-member cap,
// ceil(floor(P/N) × Load), differs between N-1 and N members: the tighter cap
// pushes partitions off members that were full and they cascade along the circle.
// With the default Config the cap changes at every step up to N = 17 and then at
// N = 19–21, 23, 25, 28, 31, 34, 39 and 46.
//
// Measured for N = 3..50 (default Config, the namings below):
//
//	cap unchanged: mean ≤ ideal + 0.024 (N = 22: 0.070 against 1/22 = 0.045),
//	               worst naming ≤ ideal + 0.080 (N = 22: 0.125)
//	cap changes:   mean ≤ ideal + 0.078 (N = 31: 0.111 against 1/31 = 0.032;
//	               N = 34, 39, 46 follow at +0.06), worst naming ≤ ideal + 0.163
//	               (N = 4: 0.413 against 0.25)
//
// 200 namings instead of 50 give +0.023 / +0.082 and +0.079 / +0.180. Each bound
// below is 1.5 to 4.5 partitions (of 271) above the measured worst, and the test
// is deterministic (fixed names, XXH64): it fails only when placement changes.
// Checked to catch: Load 1.1 (fails at 25 of the 48 sizes, from N = 18),
// ReplicationFactor 10 (N = 18, 24, 31) and 5 (14 sizes, N = 3–7 among them).
// The bound this replaced, 1.5 × ideal + 0.05 on the mean, was only checked at
// N = 3, 5, 8; it does not hold at N = 31 and 46.
const (
	movementMeanSlack     = 0.03 // cap unchanged: measured +0.024
	movementWorstSlack    = 0.09 // cap unchanged: measured +0.080
	movementMeanSlackCap  = 0.09 // cap changes: measured +0.078
	movementWorstSlackCap = 0.18 // cap changes: measured +0.163
	movementTrials        = 50   // member namings per size
	movementMaxMembers    = 50
)

// raceEnabled is set by race_test.go when the race detector is on. It makes
// consistent about eight times slower, and TestMovement then checks a subset.
var raceEnabled bool

// TestMovement measures the fraction of partitions that change owner when a
// member joins (N-1 → N) or leaves (N → N-1), for N = 3..50 over 50 member
// namings, and checks it against the bounds above. The ideal is 1/N.
func TestMovement(t *testing.T) {
	sizes := make([]int, 0, movementMaxMembers)
	for n := 3; n <= movementMaxMembers; n++ {
		sizes = append(sizes, n)
	}
	if raceEnabled {
		// The full sweep takes about 50s under -race on 2 cores, 4s without
		// (make test-short runs it): check the smallest size and those with the
		// worst figures above.
		sizes = []int{3, 4, 22, 31, 46}
		t.Logf("race detector on: checking only N = %v", sizes)
	}
	type stats struct{ joinSum, leaveSum, joinMax, leaveMax float64 }
	byN := make(map[int]*stats, len(sizes))
	for _, n := range sizes {
		byN[n] = &stats{}
	}
	cfg := Config{}.withDefaults()
	for trial := range movementTrials {
		all := nodes(fmt.Sprintf("t%d-node-", trial), movementMaxMembers)
		prefix := map[int]*Ring{} // rings of all[:k], shared by consecutive sizes
		ring := func(k int) *Ring {
			if prefix[k] == nil {
				prefix[k] = mustNew(t, cfg, all[:k])
			}
			return prefix[k]
		}
		for _, n := range sizes {
			s := byN[n]
			join, _ := Moved(ring(n-1), ring(n))
			// Leave: usually a member other than the newest departs.
			leaver := trial % n
			rest := slices.Delete(slices.Clone(all[:n]), leaver, leaver+1)
			left, _ := Moved(ring(n), mustNew(t, cfg, rest))
			fj := float64(len(join)) / DefaultPartitions
			fl := float64(len(left)) / DefaultPartitions
			s.joinSum, s.leaveSum = s.joinSum+fj, s.leaveSum+fl
			s.joinMax, s.leaveMax = max(s.joinMax, fj), max(s.leaveMax, fl)
		}
	}
	for _, n := range sizes {
		s := byN[n]
		ideal := 1 / float64(n)
		joinMean, leaveMean := s.joinSum/movementTrials, s.leaveSum/movementTrials
		meanSlack, worstSlack, kind := movementMeanSlack, movementWorstSlack, "cap unchanged"
		if capBefore, capAfter := cfg.maxPerMember(n-1), cfg.maxPerMember(n); capBefore != capAfter {
			meanSlack, worstSlack = movementMeanSlackCap, movementWorstSlackCap
			kind = fmt.Sprintf("cap %d→%d", capBefore, capAfter)
		}
		t.Logf("%2d→%2d join: mean %.3f max %.3f; %2d→%2d leave: mean %.3f max %.3f; ideal 1/N = %.3f, mean/ideal %.2f (%s)",
			n-1, n, joinMean, s.joinMax, n, n-1, leaveMean, s.leaveMax, ideal, max(joinMean, leaveMean)/ideal, kind)
		if bound := ideal + meanSlack; joinMean > bound || leaveMean > bound {
			t.Errorf("n=%d (%s): mean movement join %.3f / leave %.3f exceeds ideal + %.2f = %.3f",
				n, kind, joinMean, leaveMean, meanSlack, bound)
		}
		if bound := ideal + worstSlack; s.joinMax > bound || s.leaveMax > bound {
			t.Errorf("n=%d (%s): worst movement join %.3f / leave %.3f exceeds ideal + %.2f = %.3f",
				n, kind, s.joinMax, s.leaveMax, worstSlack, bound)
		}
	}
}

func TestMoved(t *testing.T) {
	a := mustNew(t, Config{}, nodes("n", 4))
	b := mustNew(t, Config{}, nodes("n", 5))
	moves, err := Moved(a, b)
	if err != nil {
		t.Fatal(err)
	}
	ao, bo := a.PartitionOwners(), b.PartitionOwners()
	want := []Move{}
	for p := range ao {
		if ao[p] != bo[p] {
			want = append(want, Move{Partition: p, From: ao[p], To: bo[p]})
		}
	}
	if !slices.Equal(moves, want) || len(moves) == 0 {
		t.Fatalf("Moved = %v, want %v", moves, want)
	}
	// On a join, partitions only flow to the newcomer or between old members,
	// and the newcomer gains exactly what it owns.
	gained := 0
	for _, m := range moves {
		if m.From == "n5" {
			t.Fatalf("move away from the newcomer: %+v", m)
		}
		if m.To == "n5" {
			gained++
		}
	}
	if gained != len(b.PartitionsOf("n5")) {
		t.Fatalf("n5 gained %d, owns %d", gained, len(b.PartitionsOf("n5")))
	}

	if moves, _ := Moved(a, mustNew(t, Config{}, reversed(nodes("n", 4)))); len(moves) != 0 {
		t.Fatalf("same members moved %v", moves)
	}
	first, _ := Moved(nil, a)
	if len(first) != a.PartitionCount() || first[0].From != "" || first[0].To != ao[0] {
		t.Fatalf("Moved(nil, a) = %d moves, first %+v", len(first), first[0])
	}
	last, _ := Moved(a, nil)
	if len(last) != a.PartitionCount() || last[3].To != "" || last[3].From != ao[3] {
		t.Fatalf("Moved(a, nil) = %d moves, [3] %+v", len(last), last[3])
	}
	if m, err := Moved(nil, nil); m != nil || err != nil {
		t.Fatalf("Moved(nil, nil) = %v, %v", m, err)
	}
	if _, err := Moved(a, mustNew(t, Config{Partitions: 7}, nodes("n", 4))); !errors.Is(err, ErrIncompatibleRings) {
		t.Fatalf("want ErrIncompatibleRings, got %v", err)
	}
}

func TestReturnedSlicesAreCopies(t *testing.T) {
	r := mustNew(t, Config{}, nodes("n", 3))
	ms := r.Members()
	ms[0].ID = "mutated"
	owners := r.PartitionOwners()
	owners[0] = "mutated"
	if m, _ := r.PartitionOwner(0); m.ID == "mutated" || r.Members()[0].ID == "mutated" {
		t.Fatal("ring changed through a returned slice")
	}
}

func TestConcurrentReads(t *testing.T) {
	r := mustNew(t, Config{}, nodes("n", 5))
	want := r.PartitionOwners()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				key := fmt.Sprintf("g%d-%d", g, i)
				if m, _ := r.Owner(key); m.ID != want[r.PartitionOf(key)] {
					t.Errorf("Owner(%q) = %s", key, m.ID)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkOwner(b *testing.B) {
	r := mustNew(b, Config{}, nodes("node-", 5))
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("account-%d", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_, _ = r.Owner(keys[i&1023])
		i++
	}
}

// BenchmarkNew is the cost of a rebuild after a membership change.
func BenchmarkNew(b *testing.B) {
	for _, n := range []int{5, 50} {
		ms := nodes("node-", n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				mustNew(b, Config{}, ms)
			}
		})
	}
}
