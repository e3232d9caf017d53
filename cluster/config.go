package cluster

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader/placement"
)

// DefaultBindPort is memberlist's conventional gossip port. Config.BindPort
// has no default (0 picks a free port); deployments usually set this one.
const DefaultBindPort = 7946

// Defaults applied by Start to zero-valued Config fields.
const (
	DefaultBindAddr       = "0.0.0.0"
	DefaultJoinRetry      = 500 * time.Millisecond
	DefaultRejoinInterval = 10 * time.Second
	DefaultCoalesce       = 200 * time.Millisecond
)

// Config configures one member of the cluster. The zero value of every field
// except NodeID is usable; see each field for its default.
type Config struct {
	// NodeID names this node. Required and unique in the cluster: it is the
	// memberlist node name and the placement.Member ID.
	NodeID string

	// BindAddr is the IP address gossip listens on, TCP and UDP alike. It must
	// be an IP literal, not a host name. Empty means DefaultBindAddr
	// ("0.0.0.0"), in which case the advertised address is the host's private
	// IP unless AdvertiseAddr is set.
	BindAddr string

	// BindPort is the gossip port, TCP and UDP alike. 0 means "pick a free
	// port" (GossipAddr reports the one picked); there is no other default, so
	// set it (for example to DefaultBindPort) in production.
	BindPort int

	// AdvertiseAddr is the IP address other nodes should use to reach this
	// one (NAT, containers). Empty means the bound address (or the host's
	// private IP when bound to 0.0.0.0).
	AdvertiseAddr string

	// AdvertisePort is the port advertised with AdvertiseAddr. 0 means the
	// bound port. Ignored when AdvertiseAddr is empty.
	AdvertisePort int

	// Seeds are "host:port" gossip addresses of other nodes. The list may
	// include this node's own address (it is skipped), so every node can be
	// given the same list. Empty means this is the first node: it does not
	// join anybody and waits for others to join it.
	Seeds []string

	// JoinRetry is how long to wait between rounds of join attempts while no
	// seed has answered yet. Each failed round is logged. 0 means
	// DefaultJoinRetry (500ms); negative is invalid.
	JoinRetry time.Duration

	// RejoinInterval is how often, once joined, the node contacts the seeds
	// and the recently failed members that it does not currently see alive,
	// to heal partitions that outlasted Tuning.GossipToTheDeadTime (after
	// which memberlist forgets the other side and never talks to it again).
	// 0 means DefaultRejoinInterval (10s); negative turns the loop off.
	RejoinInterval time.Duration

	// Coalesce is the burst window: the first membership change (join,
	// leave, update, failure) opens a window of this length, and one
	// OnChange reports the state at its end. 0 means DefaultCoalesce
	// (200ms); negative means no window (one OnChange per change, still
	// serial).
	Coalesce time.Duration

	// SecretKey, if set, encrypts and authenticates all gossip with AES-GCM
	// (memberlist keyring). It must be 16, 24 or 32 bytes; every node must
	// use the same key. Nil means plaintext gossip.
	SecretKey []byte

	// SecondaryKeys are further keys of the keyring: gossip encrypted with
	// any of them is accepted, but only SecretKey encrypts. They let a key
	// be rotated with rolling restarts and no split (see doc.go). Each must
	// be 16, 24 or 32 bytes; they need SecretKey. Nil means none.
	SecondaryKeys [][]byte

	// Label, if set, is attached to every gossip packet and stream (and
	// authenticated when SecretKey is set); nodes with a different label are
	// ignored, so two clusters sharing a network cannot merge. At most 255
	// bytes.
	Label string

	// AllowedCIDRs, if non-empty, restricts which source networks may take
	// part in gossip (e.g. "10.0.0.0/8"; IPv4 and IPv6 are listed
	// separately). Empty means any.
	AllowedCIDRs []string

	// Meta is gossiped to every other node. Meta.NodeID is filled from
	// NodeID when empty and must equal it otherwise. Its JSON encoding must
	// fit in memberlist's 512-byte limit.
	Meta Meta

	// OnChange, if set, receives the full current member set (alive members,
	// sorted by ID, this node included) after every coalesced burst of
	// changes whose result differs from the previous call, and once,
	// synchronously inside Start, with the initial set. Calls are serial,
	// never concurrent; a slow OnChange delays the next one (changes
	// meanwhile are coalesced), never the gossip protocol. It must not call
	// Close.
	OnChange func(members []placement.Member)

	// Logger receives one line per significant event (join, leave, failure,
	// rejoin attempt) and memberlist's own log at debug level. The zero
	// value discards everything.
	Logger zerolog.Logger

	// Tuning holds the failure-detection and gossip timings; its zero value
	// means DefaultTuning(), field by field.
	Tuning Tuning

	// Knobs are test hooks; nil in production.
	Knobs *TestingKnobs
}

// Tuning holds memberlist's failure-detection and gossip timings. Each zero
// field takes its value from DefaultTuning(); negative values are invalid.
// doc.go explains the defaults and the failure-detection time they give.
type Tuning struct {
	// ProbeInterval is how often each node probes one other node (round
	// robin). Default 200ms (memberlist LAN: 1s).
	ProbeInterval time.Duration

	// ProbeTimeout is how long a direct probe waits for an ack before
	// indirect probes (and a TCP fallback ping) are tried. Must be below
	// ProbeInterval. Default 100ms (LAN: 500ms).
	ProbeTimeout time.Duration

	// SuspicionMult sets how long a suspected node has to refute before it
	// is declared dead: SuspicionMult × max(1, log10(N)) × ProbeInterval,
	// i.e. 400ms for up to 10 nodes with the defaults. Default 2 (LAN: 4).
	SuspicionMult int

	// SuspicionMaxTimeoutMult bounds the suspicion timeout when fewer peers
	// than expected confirm a suspicion (only in play when SuspicionMult >
	// 2). Default 4 (LAN: 6).
	SuspicionMaxTimeoutMult int

	// GossipInterval is how often queued broadcasts (alive, suspect, dead)
	// are sent to GossipNodes random peers. Default 100ms (LAN: 200ms).
	GossipInterval time.Duration

	// GossipNodes is how many random peers each gossip round reaches.
	// Default 3 (LAN: 3).
	GossipNodes int

	// RetransmitMult: each broadcast is retransmitted RetransmitMult ×
	// log(N+1) times. Default 4 (LAN: 4).
	RetransmitMult int

	// PushPullInterval is how often a full state sync with one random live
	// node runs over TCP. Default 15s (LAN: 30s).
	PushPullInterval time.Duration

	// GossipToTheDeadTime is how long a dead node keeps receiving gossip (a
	// chance to refute); after it memberlist forgets the node entirely, and
	// only the rejoin loop can bring it back. Default 30s (LAN: 30s).
	GossipToTheDeadTime time.Duration

	// TCPTimeout bounds dialling and each read/write of a TCP stream (join,
	// push/pull). It is also the longest Close may wait for a join attempt
	// in flight. Default 3s (LAN: 10s).
	TCPTimeout time.Duration

	// DeadNodeReclaimTime is how long a node must have been dead before its
	// name may come back from a different address (a restart on a new port
	// or IP). Default 2s (memberlist: never, until GossipToTheDeadTime).
	DeadNodeReclaimTime time.Duration
}

// DefaultTuning returns the timings tuned for a LAN or loopback cluster: a
// crashed node leaves every survivor's OnChange about 1 s after it dies
// (doc.go has the measurement), against 5–7 s with memberlist's
// DefaultLANConfig.
func DefaultTuning() Tuning {
	return Tuning{
		ProbeInterval:           200 * time.Millisecond,
		ProbeTimeout:            100 * time.Millisecond,
		SuspicionMult:           2,
		SuspicionMaxTimeoutMult: 4,
		GossipInterval:          100 * time.Millisecond,
		GossipNodes:             3,
		RetransmitMult:          4,
		PushPullInterval:        15 * time.Second,
		GossipToTheDeadTime:     30 * time.Second,
		TCPTimeout:              3 * time.Second,
		DeadNodeReclaimTime:     2 * time.Second,
	}
}

// TestingKnobs are hooks for tests. Production code leaves Config.Knobs nil.
type TestingKnobs struct {
	// WrapTransport, if set, wraps the real UDP/TCP transport before
	// memberlist uses it, e.g. to drop traffic and simulate a partition.
	WrapTransport func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport
}

// withDefaults returns a copy with every zero field replaced by its default.
func (c Config) withDefaults() Config {
	if c.BindAddr == "" {
		c.BindAddr = DefaultBindAddr
	}
	if c.JoinRetry == 0 {
		c.JoinRetry = DefaultJoinRetry
	}
	if c.RejoinInterval == 0 {
		c.RejoinInterval = DefaultRejoinInterval
	}
	if c.Coalesce == 0 {
		c.Coalesce = DefaultCoalesce
	}
	if c.Meta.NodeID == "" {
		c.Meta.NodeID = c.NodeID
	}
	c.Tuning = c.Tuning.withDefaults()
	return c
}

func (t Tuning) withDefaults() Tuning {
	d := DefaultTuning()
	setDur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	setInt := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setDur(&t.ProbeInterval, d.ProbeInterval)
	setDur(&t.ProbeTimeout, d.ProbeTimeout)
	setInt(&t.SuspicionMult, d.SuspicionMult)
	setInt(&t.SuspicionMaxTimeoutMult, d.SuspicionMaxTimeoutMult)
	setDur(&t.GossipInterval, d.GossipInterval)
	setInt(&t.GossipNodes, d.GossipNodes)
	setInt(&t.RetransmitMult, d.RetransmitMult)
	setDur(&t.PushPullInterval, d.PushPullInterval)
	setDur(&t.GossipToTheDeadTime, d.GossipToTheDeadTime)
	setDur(&t.TCPTimeout, d.TCPTimeout)
	setDur(&t.DeadNodeReclaimTime, d.DeadNodeReclaimTime)
	return t
}

// Validate reports every problem in the configuration at once (joined with
// errors.Join), each prefixed "cluster: ". Zero values that Start replaces by
// a default are not problems.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("cluster: "+format, args...))
	}

	if c.NodeID == "" {
		bad("missing node id (Config.NodeID)")
	}
	if c.BindAddr != "" && net.ParseIP(c.BindAddr) == nil {
		bad("bad bind address %q: want an IP address such as 0.0.0.0 or 127.0.0.1", c.BindAddr)
	}
	if c.BindPort < 0 || c.BindPort > 65535 {
		bad("bad bind port %d: want 0..65535 (0 picks a free port)", c.BindPort)
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		bad("bad advertise address %q: want an IP address", c.AdvertiseAddr)
	}
	if c.AdvertisePort < 0 || c.AdvertisePort > 65535 {
		bad("bad advertise port %d: want 0..65535", c.AdvertisePort)
	}
	for _, s := range c.Seeds {
		if err := checkHostPort(s); err != nil {
			bad("bad seed %q: %v", s, err)
		}
	}
	if c.JoinRetry < 0 {
		bad("bad join retry %v: must not be negative", c.JoinRetry)
	}
	if len(c.SecretKey) > 0 {
		if err := memberlist.ValidateKey(c.SecretKey); err != nil {
			bad("bad secret key length %d: must be 16, 24 or 32 bytes (AES-128/192/256)", len(c.SecretKey))
		}
	}
	if len(c.SecondaryKeys) > 0 && len(c.SecretKey) == 0 {
		bad("secondary keys without a SecretKey: the primary key encrypts, secondary keys only decrypt")
	}
	for i, k := range c.SecondaryKeys {
		if err := memberlist.ValidateKey(k); err != nil {
			bad("bad secondary key %d length %d: must be 16, 24 or 32 bytes", i+1, len(k))
		}
	}
	if len(c.Label) > memberlist.LabelMaxSize {
		bad("label is %d bytes, more than %d", len(c.Label), memberlist.LabelMaxSize)
	}
	for _, s := range c.AllowedCIDRs {
		if _, _, err := net.ParseCIDR(s); err != nil {
			bad("bad allowed CIDR %q: want a network such as 10.0.0.0/8", s)
		}
	}
	if c.Meta.NodeID != "" && c.NodeID != "" && c.Meta.NodeID != c.NodeID {
		bad("Meta.NodeID %q differs from NodeID %q (leave it empty)", c.Meta.NodeID, c.NodeID)
	}
	meta := c.Meta
	if meta.NodeID == "" {
		meta.NodeID = c.NodeID
	}
	if _, err := meta.encode(); err != nil {
		errs = append(errs, err)
	}

	t := c.Tuning
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ProbeInterval", t.ProbeInterval}, {"ProbeTimeout", t.ProbeTimeout},
		{"GossipInterval", t.GossipInterval}, {"PushPullInterval", t.PushPullInterval},
		{"GossipToTheDeadTime", t.GossipToTheDeadTime}, {"TCPTimeout", t.TCPTimeout},
		{"DeadNodeReclaimTime", t.DeadNodeReclaimTime},
	} {
		if d.v < 0 {
			bad("bad Tuning.%s %v: must not be negative", d.name, d.v)
		}
	}
	for _, d := range []struct {
		name string
		v    int
	}{
		{"SuspicionMult", t.SuspicionMult}, {"SuspicionMaxTimeoutMult", t.SuspicionMaxTimeoutMult},
		{"GossipNodes", t.GossipNodes}, {"RetransmitMult", t.RetransmitMult},
	} {
		if d.v < 0 {
			bad("bad Tuning.%s %d: must not be negative", d.name, d.v)
		}
	}
	if dt := t.withDefaults(); t.ProbeInterval >= 0 && t.ProbeTimeout >= 0 && dt.ProbeTimeout >= dt.ProbeInterval {
		bad("Tuning.ProbeTimeout %v must be below Tuning.ProbeInterval %v", dt.ProbeTimeout, dt.ProbeInterval)
	}
	return errors.Join(errs...)
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want host:port (%v)", err)
	}
	if host == "" {
		return errors.New("want host:port, host is empty")
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("want host:port, port %q is not in 1..65535", port)
	}
	return nil
}
