// Package cluster is a node's membership in a Ringleader cluster: who is up,
// gossiped with github.com/hashicorp/memberlist over UDP and TCP.
//
// It tells the rest of the node one thing: the current member set, as
// []placement.Member (ID = node id, Meta = the node's JSON-encoded Meta).
// The node feeds that set to placement.New to rebuild the ring.
//
// # Usage
//
//	c, err := cluster.Start(ctx, cluster.Config{
//		NodeID:    "n1",
//		BindAddr:  "10.0.0.1",
//		BindPort:  7946,
//		Seeds:     []string{"10.0.0.1:7946", "10.0.0.2:7946", "10.0.0.3:7946"},
//		SecretKey: key, // 16, 24 or 32 bytes, the same on every node
//		Label:     "prod",
//		Meta:      cluster.Meta{AdminAddr: "10.0.0.1:8080", Version: version},
//		OnChange: func(members []placement.Member) {
//			ring, err := placement.New(pcfg, members)
//			// ... publish ring (atomic.Pointer), stop what moved away ...
//		},
//		Logger: log,
//	})
//	if err != nil { ... } // Validate's problems, all at once, or a bind error
//	defer c.Close()       // graceful leave
//
// Every node may get the same seed list, its own address included (it is
// skipped). A node with no seeds is the first node. Start binds the gossip
// port and returns at once: joining happens in the background, retried every
// JoinRetry (logged each time) until some seed answers, so nodes can start
// in any order, and a node whose seeds are all down runs alone meanwhile.
//
// # Membership changes
//
// OnChange receives the full member set (alive members, suspected ones
// included, this node included, sorted by ID), never a delta:
//
//   - once, synchronously inside Start, with this node alone;
//   - then after each burst of joins, leaves, failures and meta updates: the
//     first change opens a Coalesce window (default 200ms) and one call
//     reports the state at its end, so a rolling restart or several nodes
//     starting together rebuild the ring once, not once per event. A call
//     whose set (IDs and Meta) equals the previous one is skipped.
//
// Close announces the leave before leaving (a "leaving" flag gossiped in the
// node meta, stripped again before OnChange and Members see it), because
// memberlist's leave callback does not say whether a node left or failed;
// the survivors log "member left" for a graceful Close and "member failed"
// for a crash, one line each, as they do for "member joined", "joined" (the
// seed join), "join failed, retrying" and "rejoin attempt". memberlist's own
// log goes to the Logger at debug level (field component=memberlist, its
// level kept in ml_level).
//
// # Healing partitions
//
// memberlist forgets a dead node GossipToTheDeadTime after declaring it dead
// and then never contacts it again; a partition longer than that leaves two
// clusters that both look healthy (hashicorp/memberlist#222). Like Serf's
// reconnect loop, every RejoinInterval (default 10s) each node joins the
// seeds it does not currently see alive and the members it saw fail in the
// last 30 minutes, so the halves merge again within about one interval of
// the network coming back. Measured in TestRejoinHealsLongPartition
// ({n1,n2} | {n3} for 1.5s with GossipToTheDeadTime 500ms): with
// RejoinInterval 300ms all three OnChange sets were whole again 0.4–0.5s
// after the heal; with the loop off they stayed split.
//
// # Failure detection and its tuning
//
// memberlist's DefaultLANConfig takes 5–7 s on loopback to drop a node that
// died without leaving (1s probes, 500ms probe timeout, a suspicion of
// 4 × ProbeInterval that only shrinks with confirmations). DefaultTuning is
// for a LAN or one host:
//
//	ProbeInterval 200ms, ProbeTimeout 100ms  probe a peer 5×/s; round trips here are ≪ 1ms
//	SuspicionMult 2                          suspect for 2 × 200ms = 400ms (N ≤ 10; × log10 N above)
//	                                         before declaring dead, with no wait for confirmations
//	GossipInterval 100ms, GossipNodes 3      suspect/dead/alive news spreads in ~100ms
//	TCPTimeout 3s                            join/push-pull streams; also bounds Close
//	PushPullInterval 15s                     full state sync, backs up gossip
//	GossipToTheDeadTime 30s                  a falsely accused node can still refute for 30s
//	DeadNodeReclaimTime 2s                   a restarted node may come back on a new address
//
// Kill → survivors' OnChange = time until a survivor probes the dead node
// (≤ 2 probe intervals with 3 nodes) + probe timeout and indirect/TCP probes
// (≤ 1 interval) + 400ms suspicion + gossip + the 200ms coalesce window.
// TestCrashDetectionTime measures it (3 in-process nodes on 127.0.0.1, real
// UDP/TCP, one stopped without a leave, time until both survivors' OnChange
// lacks it): 0.98–1.4s over 15 trials, median about 1.0s, on a 2-core
// machine under -race, also with two CPU-bound processes competing; a
// graceful Close is seen in 0.3–0.5s. The price is probe traffic
// (a few small UDP packets per node per 200ms) and less slack before a
// stalled process (a GC pause or a CPU-starved container beyond ~0.5s) is
// declared dead; it then refutes and rejoins, which costs a ring rebuild
// both ways. memberlist's awareness lengthens probe timeouts on a node that
// notices it is slow. For WAN-ish links or heavily loaded hosts, raise
// ProbeInterval/ProbeTimeout and SuspicionMult through Config.Tuning.
//
// # Security
//
// SecretKey turns on memberlist's AES-GCM encryption of every packet and
// stream; a node with another key, or none, cannot join (its packets fail to
// decrypt). SecondaryKeys complete memberlist's keyring: they decrypt, only
// SecretKey encrypts. To rotate without a split, restart the nodes one by one
// (1) with the new key added as a secondary key, (2) with the new key as
// SecretKey and the old one secondary, (3) without the old key. Label keeps clusters sharing a network apart (authenticated with
// the key when one is set). AllowedCIDRs limits which source networks may
// take part. A node that is not a Ringleader member (its meta is not a Meta
// naming itself) is refused.
//
// # Concurrency
//
// Members, LocalID, GossipAddr and Close are safe for concurrent use. OnChange
// is called from one goroutine at a time, never concurrently with itself; it
// may call Members but must not call Close (Close waits for it). A slow
// OnChange delays only later OnChange calls (changes arriving meanwhile are
// coalesced into the next one), never the gossip protocol. Close is
// idempotent, returns after every goroutine of the package has exited, and
// takes about two gossip rounds (bounded by 2s for the leave intent, 2s for
// the leave message, and one TCPTimeout for a join in flight). The package
// has no package-level state: any number of Clusters can run in one process,
// as the tests do.
package cluster
