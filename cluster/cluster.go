package cluster

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader/placement"
)

const (
	// leaveTimeout bounds how long Close waits for the leave broadcast.
	leaveTimeout = 2 * time.Second
	// failedRetention is how long a failed (not left) member's address stays
	// among the rejoin loop's targets.
	failedRetention = 30 * time.Minute
	// resolveTimeout bounds the DNS look-up of one seed.
	resolveTimeout = 2 * time.Second
)

// ErrClosed is returned by operations on a closed Cluster.
var ErrClosed = errors.New("cluster: closed")

// Cluster is this node's membership in the cluster. Create it with Start and
// release it with Close. All methods are safe for concurrent use.
type Cluster struct {
	cfg  Config
	log  zerolog.Logger
	ml   *memberlist.Memberlist
	self selfAddrs

	changed chan struct{} // capacity 1: "membership changed since last look"
	stop    chan struct{} // closed by Close
	wg      sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	meta atomic.Pointer[[]byte] // what NodeMeta gossips

	mu sync.Mutex
	// alive mirrors memberlist's alive members, kept by the event delegate.
	// memberlist.Members returns pointers into state it keeps mutating, so
	// reading them races; the callbacks run under memberlist's lock and copy.
	alive  map[string]aliveMember  // by node name; guarded by mu
	failed map[string]failedMember // by node name; guarded by mu
}

type aliveMember struct {
	addr string // ip:port
	meta []byte // as gossiped, leave intent included
}

type failedMember struct {
	addr  string // ip:port
	since time.Time
}

// Start creates this node's memberlist (binding the gossip port), calls
// cfg.OnChange once with the initial member set (this node alone), and
// returns. Joining the seeds happens in the background and is retried every
// cfg.JoinRetry until one answers, so Start never waits for other nodes:
// until then the node runs alone. ctx bounds start-up only; the Cluster lives
// until Close.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("cluster: start: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cfg.Seeds = slices.Clone(cfg.Seeds)
	cfg.SecretKey = slices.Clone(cfg.SecretKey)
	cfg.SecondaryKeys = slices.Clone(cfg.SecondaryKeys)

	meta, err := cfg.Meta.encode()
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		cfg:     cfg,
		log:     cfg.Logger.With().Str("component", "cluster").Str("node", cfg.NodeID).Logger(),
		changed: make(chan struct{}, 1),
		stop:    make(chan struct{}),
		alive:   make(map[string]aliveMember),
		failed:  make(map[string]failedMember),
	}
	c.meta.Store(&meta)

	mc, nt, err := c.memberlistConfig()
	if err != nil {
		return nil, err
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		_ = nt.Shutdown()
		if strings.Contains(err.Error(), "private IP") {
			return nil, fmt.Errorf("cluster: start: %w (bound to %s: set AdvertiseAddr or a specific BindAddr)", err, cfg.BindAddr)
		}
		return nil, fmt.Errorf("cluster: start: %w", err)
	}
	c.ml = ml
	c.self = newSelfAddrs(ml.LocalNode(), cfg.BindAddr, mc.BindPort)

	c.log.Info().Str("gossip", c.GossipAddr()).Strs("seeds", cfg.Seeds).
		Bool("encrypted", len(cfg.SecretKey) > 0).Str("label", cfg.Label).Msg("cluster: started")

	initial := c.Members()
	if cfg.OnChange != nil {
		cfg.OnChange(initial)
		c.wg.Add(1)
		go c.notifyLoop(initial)
	}
	c.wg.Add(1)
	go c.membershipLoop()
	return c, nil
}

// memberlistConfig builds memberlist's configuration and the network
// transport it will use (created here so tests can wrap it).
func (c *Cluster) memberlistConfig() (*memberlist.Config, *memberlist.NetTransport, error) {
	cfg := c.cfg
	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.NodeID
	mc.Logger = log.New(logWriter{log: c.log}, "", 0)
	mc.BindAddr = cfg.BindAddr
	mc.Label = cfg.Label
	if len(cfg.SecretKey) > 0 {
		// The keyring's primary key encrypts; every key in it decrypts.
		kr, err := memberlist.NewKeyring(cfg.SecondaryKeys, cfg.SecretKey)
		if err != nil {
			return nil, nil, fmt.Errorf("cluster: keyring: %w", err)
		}
		mc.Keyring = kr
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	}
	if len(cfg.AllowedCIDRs) > 0 {
		nets, err := memberlist.ParseCIDRs(cfg.AllowedCIDRs)
		if err != nil {
			return nil, nil, fmt.Errorf("cluster: allowed CIDRs: %w", err)
		}
		mc.CIDRsAllowed = nets
	}

	t := cfg.Tuning
	mc.ProbeInterval = t.ProbeInterval
	mc.ProbeTimeout = t.ProbeTimeout
	mc.SuspicionMult = t.SuspicionMult
	mc.SuspicionMaxTimeoutMult = t.SuspicionMaxTimeoutMult
	mc.GossipInterval = t.GossipInterval
	mc.GossipNodes = t.GossipNodes
	mc.RetransmitMult = t.RetransmitMult
	mc.PushPullInterval = t.PushPullInterval
	mc.GossipToTheDeadTime = t.GossipToTheDeadTime
	mc.TCPTimeout = t.TCPTimeout
	mc.DeadNodeReclaimTime = t.DeadNodeReclaimTime

	d := &delegate{c: c}
	mc.Delegate = d
	mc.Events = d
	mc.Alive = d
	mc.Conflict = d

	nt, err := newNetTransport(cfg.BindAddr, cfg.BindPort, mc.Logger)
	if err != nil {
		return nil, nil, err
	}
	mc.BindPort = nt.GetAutoBindPort()
	mc.AdvertiseAddr = cfg.AdvertiseAddr
	mc.AdvertisePort = cfg.AdvertisePort
	if mc.AdvertisePort == 0 {
		mc.AdvertisePort = mc.BindPort
	}
	mc.Transport = nt
	if cfg.Knobs != nil && cfg.Knobs.WrapTransport != nil {
		mc.Transport = cfg.Knobs.WrapTransport(nt)
	}
	return mc, nt, nil
}

// newNetTransport binds UDP and TCP on addr:port. With port 0 the kernel
// picks the TCP port and UDP may find it taken, so it retries a few times as
// memberlist itself does.
func newNetTransport(addr string, port int, logger *log.Logger) (*memberlist.NetTransport, error) {
	tries := 1
	if port == 0 {
		tries = 10
	}
	var err error
	for range tries {
		var nt *memberlist.NetTransport
		nt, err = memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{addr},
			BindPort:  port,
			Logger:    logger,
		})
		if err == nil {
			return nt, nil
		}
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, fmt.Errorf("cluster: bind gossip on %s: %w", net.JoinHostPort(addr, strconv.Itoa(port)), err)
}

// Members returns the alive members (suspected ones included, failed and
// departed ones not), this node included, sorted by ID. Member.Meta is the
// JSON-encoded Meta; read it with DecodeMeta.
func (c *Cluster) Members() []placement.Member {
	c.mu.Lock()
	out := make([]placement.Member, 0, len(c.alive))
	for name, m := range c.alive {
		_, meta := leaving(m.meta)
		out = append(out, placement.Member{ID: name, Meta: string(meta)})
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b placement.Member) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// LocalID returns this node's ID (Config.NodeID).
func (c *Cluster) LocalID() string { return c.cfg.NodeID }

// GossipAddr returns the host:port other nodes reach this node's gossip at:
// the advertised IP (the bound one unless AdvertiseAddr says otherwise) and
// the actual port (the one picked when BindPort was 0). Use it as a seed.
func (c *Cluster) GossipAddr() string { return c.ml.LocalNode().Address() }

// Close leaves the cluster gracefully and releases everything: it gossips a
// leave intent and then memberlist's leave message (each waited for at most
// 2s), so the others drop this node at once and log a leave rather than
// detect a failure; then it shuts memberlist down and waits for the
// package's goroutines, including a join attempt in flight (at most
// Tuning.TCPTimeout). It is idempotent: later calls return the first call's
// result. Typically it takes one or two gossip intervals.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		close(c.stop)
		var errs []error
		if c.ml.NumMembers() > 1 {
			intent, err := wireMeta{Meta: c.cfg.Meta, Leaving: true}.encode()
			if err == nil {
				c.meta.Store(&intent)
				err = c.ml.UpdateNode(leaveTimeout)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("cluster: announce leave: %w", err))
			}
		}
		if err := c.ml.Leave(leaveTimeout); err != nil {
			errs = append(errs, fmt.Errorf("cluster: leave: %w", err))
		}
		if err := c.ml.Shutdown(); err != nil {
			errs = append(errs, fmt.Errorf("cluster: shutdown: %w", err))
		}
		c.wg.Wait()
		c.closeErr = errors.Join(errs...)
		c.log.Info().Err(c.closeErr).Msg("cluster: left")
	})
	return c.closeErr
}

// signal records that membership changed; never blocks (it runs under
// memberlist's locks).
func (c *Cluster) signal() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// notifyLoop delivers coalesced membership changes to OnChange, serially.
func (c *Cluster) notifyLoop(last []placement.Member) {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case <-c.changed:
		}
		if c.cfg.Coalesce > 0 {
			t := time.NewTimer(c.cfg.Coalesce)
			select {
			case <-c.stop:
				t.Stop()
				return
			case <-t.C:
			}
		}
		// Changes signalled during the window are in the snapshot below.
		select {
		case <-c.changed:
		default:
		}
		cur := c.Members()
		if slices.Equal(cur, last) {
			continue
		}
		last = cur
		c.cfg.OnChange(cur)
	}
}

// membershipLoop joins the seeds (retrying until one answers), then runs the
// periodic rejoin until Close.
func (c *Cluster) membershipLoop() {
	defer c.wg.Done()
	if len(c.cfg.Seeds) > 0 && !c.joinUntilJoined() {
		return
	}
	if c.cfg.RejoinInterval < 0 {
		return
	}
	t := time.NewTicker(c.cfg.RejoinInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		c.rejoin()
	}
}

// joinQuietPeriod is how long after start failed joins are logged at info level, not
// as warnings.
const joinQuietPeriod = 10 * time.Second

// joinUntilJoined retries joining the seeds until this node sees another
// member. It returns false if Close came first.
func (c *Cluster) joinUntilJoined() bool {
	start := time.Now()
	for attempt := 1; ; attempt++ {
		targets, resolveErrs := c.seedTargets()
		contacted, err := c.join(targets)
		if n := c.ml.NumMembers(); n > 1 {
			c.log.Info().Int("attempt", attempt).Int("contacted", contacted).Int("members", n).
				Dur("took", time.Since(start)).Msg("cluster: joined")
			return true
		}
		if len(targets) == 0 && len(resolveErrs) == 0 {
			c.log.Info().Msg("cluster: every seed is this node; waiting for others to join")
			return true
		}
		// While a cluster starts together its seeds are still starting: a refused
		// join is expected then, and only a node alone for longer is worth a warning.
		ev := c.log.Info()
		if time.Since(start) > joinQuietPeriod {
			ev = c.log.Warn()
		}
		ev.Int("attempt", attempt).Strs("seeds", c.cfg.Seeds).
			Err(errors.Join(append(resolveErrs, err)...)).Dur("retry_in", c.cfg.JoinRetry).
			Msg("cluster: join failed, retrying")
		t := time.NewTimer(c.cfg.JoinRetry)
		select {
		case <-c.stop:
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// rejoin contacts every seed and recently failed member that is not alive
// in the current member set. This heals partitions that outlasted
// GossipToTheDeadTime, after which memberlist alone never contacts the other
// side again (hashicorp/memberlist#222).
func (c *Cluster) rejoin() {
	alive := make(map[string]bool)
	c.mu.Lock()
	for _, m := range c.alive {
		alive[m.addr] = true
	}
	c.mu.Unlock()
	seeds, _ := c.seedTargets()
	var targets []string
	for _, t := range seeds {
		if !alive[t] {
			targets = append(targets, t)
		}
	}
	c.mu.Lock()
	for name, f := range c.failed {
		if time.Since(f.since) > failedRetention {
			delete(c.failed, name)
			continue
		}
		if !alive[f.addr] && !slices.Contains(targets, f.addr) {
			targets = append(targets, f.addr)
		}
	}
	c.mu.Unlock()
	if len(targets) == 0 {
		return
	}
	slices.Sort(targets)
	before := c.ml.NumMembers()
	contacted, err := c.join(targets)
	ev := c.log.Info()
	if contacted == 0 {
		ev = c.log.Warn().Err(err)
	}
	ev.Strs("targets", targets).Int("contacted", contacted).Int("members_before", before).
		Int("members_after", c.ml.NumMembers()).Msg("cluster: rejoin attempt")
}

// join contacts targets one at a time (so Close never waits for more than
// one TCP timeout) and returns how many answered.
func (c *Cluster) join(targets []string) (int, error) {
	contacted := 0
	var errs []error
	for _, t := range targets {
		select {
		case <-c.stop:
			return contacted, ErrClosed
		default:
		}
		n, err := c.ml.Join([]string{t})
		contacted += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	if contacted > 0 {
		return contacted, nil
	}
	return 0, errors.Join(errs...)
}

// seedTargets resolves the seeds to ip:port strings, dropping this node's
// own addresses.
func (c *Cluster) seedTargets() ([]string, []error) {
	var out []string
	var errs []error
	for _, s := range c.cfg.Seeds {
		host, portStr, _ := net.SplitHostPort(s) // validated in Start
		port, _ := strconv.Atoi(portStr)
		var ips []net.IP
		if ip := net.ParseIP(host); ip != nil {
			ips = []net.IP{ip}
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
			addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
			cancel()
			if err != nil {
				errs = append(errs, fmt.Errorf("resolve seed %q: %w", s, err))
				continue
			}
			for _, a := range addrs {
				ips = append(ips, a.IP)
			}
		}
		for _, ip := range ips {
			if c.self.is(ip, port) {
				continue
			}
			a := net.JoinHostPort(ip.String(), portStr)
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out, errs
}

// selfAddrs recognises this node's own gossip address in a seed list.
type selfAddrs struct {
	advertised string   // ip:port other nodes reach us at
	port       int      // bound port
	ips        []net.IP // IPs bound on that port
	anyLocal   bool     // bound to 0.0.0.0 or ::, so every local IP is us
}

func newSelfAddrs(local *memberlist.Node, bindAddr string, bindPort int) selfAddrs {
	s := selfAddrs{advertised: local.Address(), port: bindPort}
	if bind := net.ParseIP(bindAddr); bind != nil && !bind.IsUnspecified() {
		s.ips = []net.IP{bind}
		return s
	}
	s.anyLocal = true
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				s.ips = append(s.ips, ipn.IP)
			}
		}
	}
	return s
}

func (s selfAddrs) is(ip net.IP, port int) bool {
	if net.JoinHostPort(ip.String(), strconv.Itoa(port)) == s.advertised {
		return true
	}
	if port != s.port {
		return false
	}
	if s.anyLocal && (ip.IsLoopback() || ip.IsUnspecified()) {
		return true
	}
	return slices.ContainsFunc(s.ips, ip.Equal)
}

// delegate receives memberlist's callbacks. They run under memberlist's
// locks, so they only log, record and signal; they never call back into
// memberlist.
type delegate struct {
	c *Cluster
}

var (
	_ memberlist.Delegate         = (*delegate)(nil)
	_ memberlist.EventDelegate    = (*delegate)(nil)
	_ memberlist.AliveDelegate    = (*delegate)(nil)
	_ memberlist.ConflictDelegate = (*delegate)(nil)
)

func (d *delegate) NodeMeta(limit int) []byte {
	meta := *d.c.meta.Load()
	if len(meta) > limit {
		return nil // unreachable: Start checked the size
	}
	return meta
}

func (d *delegate) NotifyMsg([]byte)                           {}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

// record copies n into the alive set. Callers hold no lock of ours;
// memberlist holds its node lock, so n is stable.
func (d *delegate) record(n *memberlist.Node) {
	d.c.mu.Lock()
	d.c.alive[n.Name] = aliveMember{addr: n.Address(), meta: slices.Clone(n.Meta)}
	delete(d.c.failed, n.Name)
	d.c.mu.Unlock()
}

func (d *delegate) NotifyJoin(n *memberlist.Node) {
	c := d.c
	d.record(n)
	if n.Name == c.cfg.NodeID {
		return
	}
	c.log.Info().Str("member", n.Name).Str("addr", n.Address()).Msg("cluster: member joined")
	c.signal()
}

func (d *delegate) NotifyLeave(n *memberlist.Node) {
	c := d.c
	c.mu.Lock()
	delete(c.alive, n.Name)
	c.mu.Unlock()
	if n.Name == c.cfg.NodeID {
		return
	}
	// memberlist leaves n.State unset here, so the leave intent in the
	// node's last meta is what tells a graceful leave from a failure.
	left, _ := leaving(n.Meta)
	c.mu.Lock()
	if left {
		delete(c.failed, n.Name)
	} else {
		c.failed[n.Name] = failedMember{addr: n.Address(), since: time.Now()}
	}
	c.mu.Unlock()
	if left {
		c.log.Info().Str("member", n.Name).Str("addr", n.Address()).Msg("cluster: member left")
	} else {
		c.log.Warn().Str("member", n.Name).Str("addr", n.Address()).Msg("cluster: member failed")
	}
	c.signal()
}

func (d *delegate) NotifyUpdate(n *memberlist.Node) {
	d.record(n)
	if n.Name == d.c.cfg.NodeID {
		return
	}
	msg := "cluster: member updated"
	if left, _ := leaving(n.Meta); left {
		msg = "cluster: member leaving"
	}
	d.c.log.Info().Str("member", n.Name).Str("addr", n.Address()).Msg(msg)
	d.c.signal()
}

// NotifyAlive keeps nodes that are not Ringleader members (a foreign
// memberlist application on the same network and label) out of the set.
func (d *delegate) NotifyAlive(n *memberlist.Node) error {
	_, err := DecodeMeta(placement.Member{ID: n.Name, Meta: string(n.Meta)})
	return err
}

func (d *delegate) NotifyConflict(existing, other *memberlist.Node) {
	d.c.log.Error().Str("member", existing.Name).Str("addr", existing.Address()).
		Str("other_addr", other.Address()).Msg("cluster: two nodes claim the same node id")
}
