package placement

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/buraksezer/consistent"
	"github.com/cespare/xxhash/v2"
)

// Member is one node of the ring.
type Member struct {
	// ID names the node; it alone decides placement. Non-empty, unique
	// within a ring, and the same string on every node (e.g. the memberlist
	// node name).
	ID string

	// Meta is opaque data carried along with the member, for example the
	// encoded memberlist node metadata (NATS subject, admin address). It is
	// never hashed: two rings that differ only in Meta place every key alike.
	Meta string
}

// Ring is an immutable snapshot of the member set and the partition owners
// it implies. Build one with New; a *Ring is safe for concurrent use.
//
// A nil *Ring is a ring with no members: Owner and PartitionOwner report
// false, PartitionOf returns -1 and the other methods return zero values.
type Ring struct {
	cfg         Config
	members     []Member // sorted by ID
	owners      []int32  // owners[p] indexes members
	fingerprint string
}

// New builds the ring for members under cfg (zero fields take their
// defaults). The result depends only on cfg and the set of member IDs, not
// on the order of members.
//
// Errors, none of which panic: every Config.Validate problem (wrapping
// ErrInvalidConfig); ErrNoMembers for an empty set; an empty or duplicate ID
// (wrapping ErrInvalidMember); a *CapacityError when the bounded-load rule
// cannot place every partition, notably when there are more members than
// partitions.
func New(cfg Config, members []Member) (*Ring, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(members) == 0 {
		return nil, ErrNoMembers
	}
	ms := slices.Clone(members)
	slices.SortFunc(ms, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	for i, m := range ms {
		if m.ID == "" {
			return nil, fmt.Errorf("%w: empty ID", ErrInvalidMember)
		}
		if i > 0 && ms[i-1].ID == m.ID {
			return nil, fmt.Errorf("%w: duplicate ID %q", ErrInvalidMember, m.ID)
		}
	}
	if n, per := len(ms), cfg.maxPerMember(len(ms)); n*per < cfg.Partitions {
		return nil, &CapacityError{Members: n, Partitions: cfg.Partitions, Load: cfg.Load, MaxPerMember: per}
	}
	owners, err := assign(cfg, ms)
	if err != nil {
		return nil, err
	}
	return &Ring{cfg: cfg, members: ms, owners: owners, fingerprint: fingerprint(cfg, ms)}, nil
}

// ringName is the name a member has inside consistent. consistent derives a
// member's virtual nodes from fmt.Sprintf("%s%d", name, i), which is
// ambiguous for raw IDs: "n1" replica 10 and "n11" replica 0 are both
// "n110", so members n1 and n11 would share ten virtual nodes. A length
// prefix makes every name+replica string unique.
func ringName(id string) string { return strconv.Itoa(len(id)) + ":" + id }

// ringMember adapts a ring name to consistent.Member.
type ringMember string

func (m ringMember) String() string { return string(m) }

// xxhasher adapts XXH64 (seed 0) to consistent.Hasher.
type xxhasher struct{}

func (xxhasher) Sum64(b []byte) uint64 { return xxhash.Sum64(b) }

// assign runs consistent over ms (sorted, unique, checked for capacity) and
// returns the owner index of each partition. consistent panics when it cannot
// place a partition; New's checks rule that out, and the recover turns any
// remaining case into an error rather than a crash.
func assign(cfg Config, ms []Member) (owners []int32, err error) {
	defer func() {
		if r := recover(); r != nil {
			owners, err = nil, fmt.Errorf("placement: consistent v0.10.0 failed for %d members: %v", len(ms), r)
		}
	}()
	cms := make([]consistent.Member, len(ms))
	index := make(map[string]int32, len(ms))
	for i, m := range ms {
		name := ringName(m.ID)
		cms[i] = ringMember(name)
		index[name] = int32(i)
	}
	c := consistent.New(cms, consistent.Config{
		Hasher:            xxhasher{},
		PartitionCount:    cfg.Partitions,
		ReplicationFactor: cfg.ReplicationFactor,
		Load:              cfg.Load,
	})
	owners = make([]int32, cfg.Partitions)
	for p := range owners {
		m := c.GetPartitionOwner(p)
		if m == nil {
			return nil, fmt.Errorf("placement: consistent v0.10.0 left partition %d without owner", p)
		}
		owners[p] = index[m.String()]
	}
	return owners, nil
}

// fingerprintVersion names the placement algorithm inside fingerprints; bump
// it whenever the same input would place keys differently.
const fingerprintVersion = "ringleader/placement/v1 consistent@v0.10.0 xxh64"

// fingerprint hashes the algorithm version, the config and the sorted member
// IDs (not Meta) with XXH64, as 16 lower-case hex digits.
func fingerprint(cfg Config, ms []Member) string {
	h := xxhash.New()
	var buf []byte
	buf = append(buf, fingerprintVersion...)
	buf = binary.BigEndian.AppendUint64(buf, uint64(cfg.Partitions))
	buf = binary.BigEndian.AppendUint64(buf, uint64(cfg.ReplicationFactor))
	buf = binary.BigEndian.AppendUint64(buf, math.Float64bits(cfg.Load))
	buf = binary.BigEndian.AppendUint64(buf, uint64(len(ms)))
	for _, m := range ms {
		buf = binary.AppendUvarint(buf, uint64(len(m.ID)))
		buf = append(buf, m.ID...)
	}
	_, _ = h.Write(buf)
	return fmt.Sprintf("%016x", h.Sum64())
}

// Config returns the effective configuration, defaults filled in.
func (r *Ring) Config() Config {
	if r == nil {
		return Config{}
	}
	return r.cfg
}

// Fingerprint identifies the ring: 16 hex digits hashing the placement
// algorithm version, the Config and the member IDs. Two rings with equal
// fingerprints place every key alike, so nodes can compare rings by
// exchanging it. Meta does not contribute. Empty for a nil Ring.
func (r *Ring) Fingerprint() string {
	if r == nil {
		return ""
	}
	return r.fingerprint
}

// Len returns the number of members.
func (r *Ring) Len() int {
	if r == nil {
		return 0
	}
	return len(r.members)
}

// Members returns the members sorted by ID, in a new slice.
func (r *Ring) Members() []Member {
	if r == nil {
		return nil
	}
	return slices.Clone(r.members)
}

// PartitionCount returns the number of partitions, Config().Partitions.
func (r *Ring) PartitionCount() int {
	if r == nil {
		return 0
	}
	return len(r.owners)
}

// PartitionOf returns the partition of key: XXH64(key) mod PartitionCount(),
// the same as consistent's FindPartitionID with an XXH64 hasher. It depends
// only on key and PartitionCount, never on members. -1 for a nil Ring.
func (r *Ring) PartitionOf(key string) int {
	if r == nil {
		return -1
	}
	return int(xxhash.Sum64String(key) % uint64(len(r.owners)))
}

// Owner returns the member that owns key, that is the owner of
// PartitionOf(key). It does not allocate. ok is false only for a nil Ring.
func (r *Ring) Owner(key string) (m Member, ok bool) {
	if r == nil {
		return Member{}, false
	}
	return r.members[r.owners[xxhash.Sum64String(key)%uint64(len(r.owners))]], true
}

// PartitionOwner returns the owner of partition p. ok is false for a nil
// Ring or p outside [0, PartitionCount()).
func (r *Ring) PartitionOwner(p int) (m Member, ok bool) {
	if r == nil || p < 0 || p >= len(r.owners) {
		return Member{}, false
	}
	return r.members[r.owners[p]], true
}

// PartitionOwners returns the owner ID of every partition, indexed by
// partition, in a new slice: the ring as /cluster shows it.
func (r *Ring) PartitionOwners() []string {
	if r == nil {
		return nil
	}
	ids := make([]string, len(r.owners))
	for p, i := range r.owners {
		ids[p] = r.members[i].ID
	}
	return ids
}

// PartitionsOf returns, in ascending order, the partitions member id owns;
// nil if id is not a member.
func (r *Ring) PartitionsOf(id string) []int {
	if r == nil {
		return nil
	}
	i, found := slices.BinarySearchFunc(r.members, id, func(m Member, id string) int { return cmp.Compare(m.ID, id) })
	if !found {
		return nil
	}
	var ps []int
	for p, o := range r.owners {
		if int(o) == i {
			ps = append(ps, p)
		}
	}
	return ps
}

// Loads returns how many partitions each member owns, keyed by ID, in a new
// map. Every member appears, and no value exceeds
// ceil(floor(PartitionCount/Len) × Config().Load).
func (r *Ring) Loads() map[string]int {
	if r == nil {
		return nil
	}
	loads := make(map[string]int, len(r.members))
	for _, m := range r.members {
		loads[m.ID] = 0
	}
	for _, i := range r.owners {
		loads[r.members[i].ID]++
	}
	return loads
}

// Move is one partition whose owner differs between two rings.
type Move struct {
	Partition int    // the partition number
	From      string // owner ID in the old ring; "" if the old ring is nil
	To        string // owner ID in the new ring; "" if the new ring is nil
}

// Moved lists, by ascending partition, the partitions whose owner differs
// between old and next. A nil ring owns nothing, so Moved(nil, r) lists every
// partition with From "" (a node's first ring) and Moved(r, nil) every
// partition with To "". Rings with different partition counts cannot be
// compared: ErrIncompatibleRings.
func Moved(old, next *Ring) ([]Move, error) {
	if old != nil && next != nil && len(old.owners) != len(next.owners) {
		return nil, fmt.Errorf("%w: %d and %d", ErrIncompatibleRings, len(old.owners), len(next.owners))
	}
	n := max(old.PartitionCount(), next.PartitionCount())
	var moves []Move
	for p := range n {
		from, _ := old.PartitionOwner(p)
		to, _ := next.PartitionOwner(p)
		if from.ID != to.ID {
			moves = append(moves, Move{Partition: p, From: from.ID, To: to.ID})
		}
	}
	return moves, nil
}
