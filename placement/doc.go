// Package placement decides which node owns what: it maps keys (aggregate ids,
// event-handler partitions) to partitions and partitions to cluster members.
//
// It is pure logic: no I/O, no clock, no goroutines, no package-level state.
// The cluster package feeds it a member set; everything else asks it questions.
//
// # Model
//
// A cluster-wide, fixed number of partitions (Config.Partitions, default 271)
// sits between keys and members:
//
//	key ──xxhash64 mod Partitions──▶ partition ──bounded-load consistent hashing──▶ member
//
// The first arrow never changes while Partitions stays the same, so a key's
// partition is stable for ever; only the second arrow moves when membership
// changes. The second arrow is github.com/buraksezer/consistent v0.10.0
// ("consistent hashing with bounded loads") with XXH64 as its hasher: no member
// owns more than ceil(floor(Partitions/N) × Load) partitions.
//
// # Usage
//
//	ring, err := placement.New(placement.Config{}, []placement.Member{{ID: "n1"}, {ID: "n2"}, {ID: "n3"}})
//	if err != nil { ... } // ErrNoMembers, ErrInvalidConfig, ErrInvalidMember, *CapacityError
//
//	owner, _ := ring.Owner("account-42")             // who runs this aggregate
//	p := ring.PartitionOf("account-42")              // its partition, 0 ≤ p < ring.PartitionCount()
//
//	// Event handler "balances" with K = 8 partitions:
//	i := placement.StreamPartition(streamID, 8)      // which handler partition sees this stream
//	owner, _ = ring.Owner(placement.HandlerPartitionKey("balances", i)) // who runs it
//
//	// Membership changed: build a new ring and diff.
//	next, err := placement.New(cfg, members)
//	moves, err := placement.Moved(ring, next)        // partitions whose owner changed
//
// # Determinism
//
// New's result depends only on the configuration and the set of member IDs:
// not on the order of the members slice, not on Meta, not on the process.
// Every node handed the same set therefore computes the same ring, and
// Ring.Fingerprint lets nodes compare rings cheaply (for example in /cluster
// or in gossip metadata). Golden tests pin the exact hashes and assignments,
// so a dependency upgrade that would move keys fails the build.
//
// # Concurrency
//
// A *Ring is an immutable snapshot: it is never modified after New returns,
// and every method is safe for concurrent use by any number of goroutines
// without locking. Slices and maps returned by its methods are fresh copies
// the caller may modify. To follow membership, build a new Ring and publish it
// (for example through an atomic.Pointer[Ring]); readers holding the old one
// keep a consistent view until they load the new one.
package placement
