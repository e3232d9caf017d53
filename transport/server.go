package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/ringleader-go/ringleader/errcode"
	"github.com/ringleader-go/ringleader/tracing"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Defaults of ServerConfig.
const (
	DefaultPrefix         = "rl"
	DefaultMaxBodyBytes   = 1 << 20
	DefaultTimeout        = 5 * time.Second
	DefaultMaxTimeout     = 5 * time.Minute
	DefaultMaxInFlight    = 1024
	shutdownPollInterval  = 50 * time.Millisecond
	observerCodeOK        = "ok"
	ingressQueueGroupName = "ingress"
)

// ErrServerClosed is returned by Start after Shutdown, or on a second Start.
var ErrServerClosed = errors.New("transport: server already started or shut down")

// Executor runs a request on this node. The node implements it with the aggregate
// dispatcher. It must honour ctx, whose deadline is req.Deadline and which is
// cancelled early if Shutdown's context expires. It should not panic; if it does,
// the server recovers, logs the panic and answers unavailable.
//
// A failed reply must carry an Error with one of the six codes; one that does not is
// answered unavailable. The server fills in CommandID and Node when they are empty.
type Executor interface {
	Execute(ctx context.Context, req Request) Reply
}

// ExecutorFunc adapts a function to Executor.
type ExecutorFunc func(ctx context.Context, req Request) Reply

// Execute calls f.
func (f ExecutorFunc) Execute(ctx context.Context, req Request) Reply { return f(ctx, req) }

// Observer is an optional metrics hook. Its methods are called from many goroutines
// at once and must not block.
type Observer interface {
	// CommandDone is called once per request this node answered. code is "ok" on
	// success, otherwise the reply's wire code. forwarded is true when this node
	// relayed the request to its owner and the owner's reply (whose code is reported)
	// went back; to count each command once across a cluster, count calls with
	// forwarded == false. commandType comes from the subject, i.e. from the client:
	// map unknown types before using it as a metric label. ctx carries the request's
	// span, if it is traced (for exemplars).
	CommandDone(ctx context.Context, commandType, code string, forwarded bool, elapsed time.Duration)
	// Forwarded is called when this node starts forwarding a request to toNode.
	Forwarded(toNode string)
}

// ServerConfig configures a Server. Zero values take the documented defaults.
type ServerConfig struct {
	// Conn is the NATS connection to serve on. Required. The server never closes it.
	Conn *nats.Conn
	// Prefix is the subject prefix. Default "rl". Commands arrive on
	// <Prefix>.cmd.<CommandType> in the queue group <Prefix>.ingress.
	Prefix string
	// NodeID is this node's id; it receives forwards on <Prefix>.node.<NodeID>.
	// Required; a single subject token (no dots, spaces or wildcards).
	NodeID string
	// MaxBodyBytes is the largest command body accepted; a larger one is answered
	// invalid. Default 1 MiB.
	MaxBodyBytes int
	// DefaultTimeout is the time a request without a Timeout header gets. Default 5s.
	DefaultTimeout time.Duration
	// MaxTimeout is the largest Timeout header accepted; a larger one is answered
	// invalid. Default 5 min.
	MaxTimeout time.Duration
	// MaxInFlight bounds the requests handled at once; beyond it a request is
	// answered unavailable at once. Default 1024.
	MaxInFlight int
	// Locate names the node that owns req's aggregate. "" or NodeID means this node.
	// An error is answered with its code if it (or an error in its chain) implements
	// Coder with a valid code (see WithCode), otherwise invalid. Required.
	Locate func(req Request) (ownerNodeID string, err error)
	// LocateCommand, if set, is used instead of Locate: it also returns the command
	// it decoded to find the owner, which the Executor then finds in Request.Command
	// when the request runs on this node, so that the body is decoded once. Either
	// Locate or LocateCommand is required.
	LocateCommand func(req Request) (ownerNodeID string, command any, err error)
	// Executor runs requests this node owns. Required.
	Executor Executor
	// Observer is an optional metrics hook.
	Observer Observer
	// Logger receives one line per significant event. The zero value discards.
	Logger zerolog.Logger
	// Now is the clock deadlines are decided with. Default time.Now.
	Now func() time.Time
}

func (c *ServerConfig) setDefaults() {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.DefaultTimeout == 0 {
		c.DefaultTimeout = DefaultTimeout
	}
	if c.MaxTimeout == 0 {
		c.MaxTimeout = DefaultMaxTimeout
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports every problem of c at once. It expects defaults to be set.
func (c *ServerConfig) Validate() error {
	var errs []error
	if c.Conn == nil {
		errs = append(errs, errors.New("transport: Conn is required"))
	}
	if err := checkSubject(c.Prefix, true); err != nil {
		errs = append(errs, fmt.Errorf("transport: Prefix %q: %w", c.Prefix, err))
	}
	if c.NodeID == "" {
		errs = append(errs, errors.New("transport: NodeID is required"))
	} else if err := checkSubject(c.NodeID, false); err != nil {
		errs = append(errs, fmt.Errorf("transport: NodeID %q: %w", c.NodeID, err))
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("transport: MaxBodyBytes %d is negative", c.MaxBodyBytes))
	}
	if c.DefaultTimeout < 0 {
		errs = append(errs, fmt.Errorf("transport: DefaultTimeout %s is negative", c.DefaultTimeout))
	}
	if c.MaxTimeout < 0 {
		errs = append(errs, fmt.Errorf("transport: MaxTimeout %s is negative", c.MaxTimeout))
	}
	if c.DefaultTimeout > c.MaxTimeout {
		errs = append(errs, fmt.Errorf("transport: DefaultTimeout %s exceeds MaxTimeout %s", c.DefaultTimeout, c.MaxTimeout))
	}
	if c.MaxInFlight < 0 {
		errs = append(errs, fmt.Errorf("transport: MaxInFlight %d is negative", c.MaxInFlight))
	}
	if c.Locate == nil && c.LocateCommand == nil {
		errs = append(errs, errors.New("transport: Locate is required"))
	}
	if c.Executor == nil {
		errs = append(errs, errors.New("transport: Executor is required"))
	}
	return errors.Join(errs...)
}

// checkSubject rejects what cannot be (part of) a literal NATS subject.
func checkSubject(s string, dotsAllowed bool) error {
	if s == "" {
		return errors.New("empty")
	}
	if strings.ContainsAny(s, " \t\r\n*>") {
		return errors.New("contains whitespace or a wildcard")
	}
	if !dotsAllowed && strings.Contains(s, ".") {
		return errors.New("contains a dot")
	}
	for _, tok := range strings.Split(s, ".") {
		if tok == "" {
			return errors.New("has an empty token")
		}
	}
	return nil
}

// Server is a node's NATS ingress and forwarding endpoint. Create it with
// NewServer, then Start it; Shutdown stops it. Its methods are safe for concurrent
// use.
type Server struct {
	cfg       ServerConfig
	log       zerolog.Logger
	cmdPrefix string // "<prefix>.cmd."
	sem       chan struct{}

	base       context.Context // parent of every request's context; done: workers exit
	cancelBase context.CancelFunc
	jobs       chan job // admitted requests, to idle workers (unbuffered)

	mu       sync.Mutex
	started  bool
	stopping bool // Shutdown called: no Start any more
	closing  bool // no new in-flight requests: answer unavailable
	subs     []*nats.Subscription
	wg       sync.WaitGroup // in-flight requests; Add only under mu with !closing
	done     chan struct{}  // closed when subscriptions are gone and in-flight is zero
}

// NewServer validates cfg (after applying defaults) and returns a server that is not
// yet subscribed.
func NewServer(cfg ServerConfig) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	base, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg:        cfg,
		log:        cfg.Logger.With().Str("component", "transport").Str("node", cfg.NodeID).Logger(),
		cmdPrefix:  cfg.Prefix + ".cmd.",
		sem:        make(chan struct{}, cfg.MaxInFlight),
		base:       base,
		cancelBase: cancel,
		jobs:       make(chan job),
		done:       make(chan struct{}),
	}, nil
}

// IngressSubject is the wildcard subject every node serves in the queue group
// IngressQueue.
func (s *Server) IngressSubject() string { return s.cfg.Prefix + ".cmd.>" }

// IngressQueue is the queue group of the ingress subscription.
func (s *Server) IngressQueue() string { return s.cfg.Prefix + "." + ingressQueueGroupName }

// NodeSubject is the subject this node receives forwards on.
func (s *Server) NodeSubject() string { return NodeSubject(s.cfg.Prefix, s.cfg.NodeID) }

// NodeSubject is the subject node nodeID receives forwards on under prefix.
func NodeSubject(prefix, nodeID string) string { return prefix + ".node." + nodeID }

// Start subscribes to the ingress subject (queue group) and the node subject, and
// returns once the NATS server has registered both. It fails after Shutdown or on a
// second call.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.stopping {
		return ErrServerClosed
	}
	ingress, err := s.cfg.Conn.QueueSubscribe(s.IngressSubject(), s.IngressQueue(), s.callback(false))
	if err != nil {
		return fmt.Errorf("transport: subscribe %s: %w", s.IngressSubject(), err)
	}
	node, err := s.cfg.Conn.Subscribe(s.NodeSubject(), s.callback(true))
	if err != nil {
		_ = ingress.Unsubscribe()
		return fmt.Errorf("transport: subscribe %s: %w", s.NodeSubject(), err)
	}
	if err := s.cfg.Conn.Flush(); err != nil {
		_ = ingress.Unsubscribe()
		_ = node.Unsubscribe()
		return fmt.Errorf("transport: flush subscriptions: %w", err)
	}
	s.subs = []*nats.Subscription{ingress, node}
	s.started = true
	s.log.Info().Str("ingress", s.IngressSubject()).Str("queue", s.IngressQueue()).
		Str("node_subject", s.NodeSubject()).Msg("transport: serving")
	return nil
}

// Shutdown stops taking requests and waits for the ones in flight. It drains both
// subscriptions (the NATS server stops routing to this node; messages already
// delivered to it are still handled), then waits until every in-flight request is
// answered. A request that reaches the server after that point is answered
// unavailable. If ctx ends first, Shutdown unsubscribes at once, cancels the
// in-flight requests' contexts and returns ctx.Err(); they are still answered (with
// what their Executor returns) in the background. Shutdown is idempotent and safe
// to call concurrently; every call waits for the same completion.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.stopping {
		s.stopping = true
		subs := s.subs
		go s.stop(subs)
	}
	s.mu.Unlock()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.abort()
		return ctx.Err()
	}
}

// stop drains subs, waits until they are closed, then waits for in-flight requests.
func (s *Server) stop(subs []*nats.Subscription) {
	defer close(s.done)
	for _, sub := range subs {
		closed := sub.StatusChanged(nats.SubscriptionClosed)
		if err := sub.Drain(); err != nil {
			s.log.Warn().Err(err).Str("subject", sub.Subject).Msg("transport: drain subscription")
			_ = sub.Unsubscribe()
			continue
		}
		s.waitClosed(sub, closed)
	}
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.wg.Wait()
	s.cancelBase()
	s.log.Info().Msg("transport: stopped")
}

// waitClosed waits for sub's drain to finish. The channel covers the normal case;
// the poll covers a connection closed mid-drain, which never closes the subscription.
func (s *Server) waitClosed(sub *nats.Subscription, closed <-chan nats.SubStatus) {
	t := time.NewTicker(shutdownPollInterval)
	defer t.Stop()
	for {
		select {
		case <-closed:
			return
		case <-t.C:
			if !sub.IsValid() || s.cfg.Conn.IsClosed() {
				return
			}
		}
	}
}

// abort is Shutdown's way out when its context ends: stop deliveries now and cancel
// in-flight work.
func (s *Server) abort() {
	s.mu.Lock()
	s.closing = true
	subs := s.subs
	s.mu.Unlock()
	for _, sub := range subs {
		if sub.IsValid() {
			_ = sub.Unsubscribe()
		}
	}
	s.cancelBase()
}

// callback returns the NATS handler of one subscription. It runs on the
// subscription's delivery goroutine, so it only admits the request and hands it to an
// idle worker, or to a new one (see work).
func (s *Server) callback(forwarded bool) nats.MsgHandler {
	return func(msg *nats.Msg) {
		recv := s.cfg.Now()
		if msg.Reply == "" {
			s.log.Debug().Str("subject", msg.Subject).Msg("transport: ignoring a request without a reply subject")
			return
		}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			s.refuse(msg, forwarded, recv, "node is shutting down")
			return
		}
		select {
		case s.sem <- struct{}{}:
		default:
			s.mu.Unlock()
			s.refuse(msg, forwarded, recv, fmt.Sprintf("node is at its limit of %d requests in flight", s.cfg.MaxInFlight))
			return
		}
		s.wg.Add(1)
		s.mu.Unlock()
		j := job{msg: msg, forwarded: forwarded, recv: recv}
		select {
		case s.jobs <- j: // an idle worker takes it
		default:
			go s.work(j)
		}
	}
}

// job is one admitted request on its way to a worker.
type job struct {
	msg       *nats.Msg
	forwarded bool
	recv      time.Time
}

// workerIdleTimeout is how long a worker waits for another request before it exits.
const workerIdleTimeout = 10 * time.Second

// work handles j and then further requests until it has been idle for
// workerIdleTimeout or the server stops. Requests are handled by workers that stay
// rather than by a goroutine each, so that their stacks, grown by decoding and
// executing a request, are not grown again for every request (stack growth was ~6%
// of a node's CPU).
func (s *Server) work(j job) {
	idle := time.NewTimer(workerIdleTimeout)
	defer idle.Stop()
	for {
		s.serve(j)
		idle.Reset(workerIdleTimeout)
		select {
		case j = <-s.jobs:
		case <-idle.C:
			return
		case <-s.base.Done():
			return
		}
	}
}

// serve handles one admitted request and releases its admission.
func (s *Server) serve(j job) {
	defer s.wg.Done()
	defer func() { <-s.sem }()
	s.handle(j.msg, j.forwarded, j.recv)
}

// refuse answers unavailable without handling the request.
func (s *Server) refuse(msg *nats.Msg, forwarded bool, recv time.Time, why string) {
	ct := s.commandType(msg, forwarded)
	s.log.Warn().Str("command_type", ct).Str("command_id", msg.Header.Get(HeaderCommandID)).Msg("transport: refused: " + why)
	s.respond(msg, ErrorReply(msg.Header.Get(HeaderCommandID), errcode.Unavailable, why))
	s.observe(context.Background(), ct, errcode.Unavailable, false, recv)
}

func (s *Server) commandType(msg *nats.Msg, forwarded bool) string {
	if forwarded {
		return msg.Header.Get(HeaderCommandType)
	}
	return strings.TrimPrefix(msg.Subject, s.cmdPrefix)
}

// handle decodes, routes and answers one request. It never panics.
func (s *Server) handle(msg *nats.Msg, forwarded bool, recv time.Time) {
	commandType := s.commandType(msg, forwarded)
	defer func() {
		if p := recover(); p != nil {
			s.log.Error().Str("command_type", commandType).Str("command_id", msg.Header.Get(HeaderCommandID)).
				Str("panic", fmt.Sprint(p)).Bytes("stack", debug.Stack()).Msg("transport: panic while handling a request")
			s.respond(msg, ErrorReply(msg.Header.Get(HeaderCommandID), errcode.Unavailable, fmt.Sprintf("internal error: %v", p)))
			s.observe(context.Background(), commandType, errcode.Unavailable, false, recv)
		}
	}()

	// The request's span continues the client's trace (or the forwarding node's);
	// every answer below records its code on it (see answer).
	ctx, span := tracing.Tracer().Start(tracing.Extract(s.base, msg.Header), "command "+commandType,
		trace.WithSpanKind(trace.SpanKindServer))
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(tracing.AttrNode.String(s.cfg.NodeID), tracing.AttrCommandType.String(commandType),
			tracing.AttrCommandID.String(msg.Header.Get(HeaderCommandID)), tracing.AttrForwarded.Bool(forwarded))
	}

	lim := limits{maxBody: s.cfg.MaxBodyBytes, defaultTimeout: s.cfg.DefaultTimeout, maxTimeout: s.cfg.MaxTimeout}
	req, rerr := parseRequest(commandType, forwarded, msg.Header, msg.Data, recv, lim)
	if rerr != nil {
		s.log.Debug().Str("command_type", commandType).Str("command_id", req.CommandID).Str("error", rerr.Message).Msg("transport: invalid request")
		s.answer(ctx, msg, req, Reply{CommandID: req.CommandID, Error: rerr}, recv)
		return
	}
	if !s.cfg.Now().Before(req.Deadline) {
		// Late delivery (e.g. buffered across a reconnect): the caller has given up,
		// so do not execute; the reply is for anyone still listening.
		s.log.Info().Str("command_type", commandType).Str("command_id", req.CommandID).
			Time("deadline", req.Deadline).Bool("forwarded", req.Forwarded).Msg("transport: dropped a request whose deadline had passed")
		s.answer(ctx, msg, req, ErrorReply(req.CommandID, errcode.Timeout, "deadline passed before the command was picked up; it was not executed"), recv)
		return
	}
	// Work stops a little before the deadline, so that the answer (a
	// consistency_timeout, say) reaches the caller, or the node that forwarded the
	// request, before it gives up at the deadline itself.
	req.Deadline = req.Deadline.Add(-replyMargin(req.Deadline.Sub(recv)))

	if !req.Forwarded {
		var owner string
		var err error
		_, decode := tracing.Tracer().Start(ctx, "decode")
		if s.cfg.LocateCommand != nil {
			owner, req.Command, err = s.cfg.LocateCommand(req)
		} else {
			owner, err = s.cfg.Locate(req)
		}
		decode.End()
		if err != nil {
			s.log.Debug().Str("command_type", commandType).Str("command_id", req.CommandID).Err(err).Msg("transport: locate failed")
			s.answer(ctx, msg, req, Reply{CommandID: req.CommandID, Error: replyErrorOf(err, errcode.Invalid)}, recv)
			return
		}
		if owner != "" && owner != s.cfg.NodeID {
			if s.forward(ctx, msg, req, owner, recv) {
				return
			}
		}
		// (A request executed here after a failed forward keeps its decoded command.)
	}
	s.answer(ctx, msg, req, s.execute(ctx, req), recv)
}

// replyMargin is how long before a request's deadline its work stops, to leave time
// for the answer to travel: a tenth of the time the request has, at most
// maxReplyMargin.
func replyMargin(budget time.Duration) time.Duration {
	return min(budget/10, maxReplyMargin)
}

// maxReplyMargin bounds replyMargin: NATS takes well under a millisecond to carry a
// reply on a healthy network, so 250 ms covers a node pausing for garbage collection.
const maxReplyMargin = 250 * time.Millisecond

// execute runs req on the Executor with a context ending at req.Deadline. ctx is the
// request's, carrying its span; it ends when the server stops.
func (s *Server) execute(ctx context.Context, req Request) Reply {
	ctx, cancel := context.WithTimeout(ctx, req.Deadline.Sub(s.cfg.Now()))
	defer cancel()
	r := s.cfg.Executor.Execute(ctx, req)
	if !r.OK && (r.Error == nil || !errcode.Valid(r.Error.Code)) {
		msg := "executor returned a failed reply without a valid error code"
		if r.Error != nil {
			msg += fmt.Sprintf(" (%q: %s)", r.Error.Code, r.Error.Message)
		}
		r.Error = &ReplyError{Code: errcode.Unavailable, Message: msg}
	}
	return r
}

// forward relays req to owner and its reply back. It reports false when the owner
// has no subscriber (it left before gossip noticed): the caller then executes the
// request here and the event store's optimistic concurrency arbitrates should the
// owner still be alive somewhere. This trades a possible OCC retry for never
// answering "unavailable" during the seconds membership needs to converge.
func (s *Server) forward(ctx context.Context, msg *nats.Msg, req Request, owner string, recv time.Time) bool {
	remaining := req.Deadline.Sub(s.cfg.Now())
	if remaining <= 0 {
		s.answer(ctx, msg, req, ErrorReply(req.CommandID, errcode.Timeout, "deadline passed before forwarding"), recv)
		return true
	}
	fm := nats.NewMsg(NodeSubject(s.cfg.Prefix, owner))
	fm.Data = req.Body
	h := fm.Header
	setIf(h, HeaderCommandID, req.CommandID)
	h.Set(HeaderConsistency, req.Consistency)
	setIf(h, HeaderCorrelationID, req.CorrelationID)
	setIf(h, HeaderCausationID, req.CausationID)
	h.Set(HeaderTimeout, remaining.String())
	h.Set(HeaderDeadline, req.Deadline.UTC().Format(time.RFC3339Nano))
	h.Set(HeaderCommandType, req.CommandType)
	h.Set(HeaderForwardedBy, s.cfg.NodeID)
	setRequestOptions(h, req.Expected, req.ReturnState, req.Metadata)
	ctx, span := tracing.Tracer().Start(ctx, "forward "+req.CommandType, trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(tracing.AttrOwner.String(owner))
	}
	tracing.Inject(ctx, h)

	if s.cfg.Observer != nil {
		s.cfg.Observer.Forwarded(owner)
	}
	ctx, cancel := context.WithTimeout(ctx, remaining)
	defer cancel()
	resp, err := s.cfg.Conn.RequestMsgWithContext(ctx, fm)
	ev := s.log.Debug()
	if err != nil {
		ev = s.log.Warn()
	}
	ev = ev.Str("command_type", req.CommandType).Str("command_id", req.CommandID).Str("owner", owner)
	switch {
	case err == nil && len(resp.Data) > 0:
		ev.Msg("transport: forwarded")
		if rerr := msg.Respond(resp.Data); rerr != nil {
			s.log.Warn().Err(rerr).Str("command_id", req.CommandID).Msg("transport: relay reply")
		}
		s.observe(ctx, req.CommandType, relayedCode(resp.Data), true, recv)
		return true
	case err == nil:
		ev.Str("status", resp.Header.Get("Status")).Msg("transport: owner sent an empty reply")
		s.answer(ctx, msg, req, ErrorReply(req.CommandID, errcode.Unavailable, "owner "+owner+" sent an empty reply"), recv)
		return true
	case errors.Is(err, nats.ErrNoResponders):
		ev.Msg("transport: owner has no subscriber; executing here, the event store arbitrates")
		return false
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		ev.Err(err).Msg("transport: forward timed out")
		s.answer(ctx, msg, req, ErrorReply(req.CommandID, errcode.Timeout, "owner "+owner+" did not answer in time; the command may or may not have been applied"), recv)
		return true
	case errors.Is(err, context.Canceled):
		ev.Err(err).Msg("transport: forward cancelled by shutdown")
		s.answer(ctx, msg, req, ErrorReply(req.CommandID, errcode.Unavailable, "node is shutting down; the command may or may not have been applied"), recv)
		return true
	default:
		ev.Err(err).Msg("transport: forward failed")
		s.answer(ctx, msg, req, ErrorReply(req.CommandID, errcode.Unavailable, fmt.Sprintf("forward to owner %s: %v", owner, err)), recv)
		return true
	}
}

func setIf(h nats.Header, k, v string) {
	if v != "" {
		h.Set(k, v)
	}
}

// setRequestOptions sets the Expected-Version, Return and Meta- headers, where they
// differ from the defaults.
func setRequestOptions(h nats.Header, expected Expectation, returnState bool, metadata map[string]string) {
	if expected != (Expectation{}) && expected.Kind != ExpectAny {
		h.Set(HeaderExpectedVersion, expected.String())
	}
	if returnState {
		h.Set(HeaderReturn, ReturnState)
	}
	for k, v := range metadata {
		h.Set(HeaderMetadataPrefix+k, v)
	}
}

// okPrefix starts every successful reply marshalReply encodes.
var okPrefix = []byte(`{"ok":true,`)

// relayedCode extracts the Observer code of a relayed reply.
func relayedCode(data []byte) string {
	if bytes.HasPrefix(data, okPrefix) {
		// marshalReply's encoding of a success: no need to decode the whole reply.
		return observerCodeOK
	}
	var r struct {
		OK    bool `json:"ok"`
		Error *struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return errcode.Unavailable
	}
	if r.OK {
		return observerCodeOK
	}
	if r.Error == nil || r.Error.Code == "" {
		return errcode.Unavailable
	}
	return r.Error.Code
}

// answer completes r (command id, node), sends it and reports it to the Observer
// and on the request's span.
func (s *Server) answer(ctx context.Context, msg *nats.Msg, req Request, r Reply, recv time.Time) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(tracing.AttrCode.String(r.Code()))
		if !r.OK {
			span.SetStatus(codes.Error, r.Code())
		}
	}
	if r.CommandID == "" {
		r.CommandID = req.CommandID
	}
	if r.Node == "" {
		r.Node = s.cfg.NodeID
	}
	s.respond(msg, r)
	code := observerCodeOK
	if !r.OK {
		code = r.Code()
	}
	s.observe(ctx, req.CommandType, code, false, recv)
}

// respond sends r; a reply too large for NATS is replaced by an unavailable one.
func (s *Server) respond(msg *nats.Msg, r Reply) {
	if r.Node == "" {
		r.Node = s.cfg.NodeID
	}
	err := msg.Respond(marshalReply(r))
	if errors.Is(err, nats.ErrMaxPayload) {
		s.log.Warn().Str("command_id", r.CommandID).Msg("transport: reply exceeds the NATS max payload")
		err = msg.Respond(marshalReply(Reply{CommandID: r.CommandID, Node: r.Node, Error: &ReplyError{
			Code: errcode.Unavailable, Message: "the reply exceeds the NATS max payload; the command may have been applied"}}))
	}
	if err != nil {
		s.log.Warn().Err(err).Str("command_id", r.CommandID).Msg("transport: send reply")
	}
}

func (s *Server) observe(ctx context.Context, commandType, code string, forwarded bool, recv time.Time) {
	if s.cfg.Observer != nil {
		s.cfg.Observer.CommandDone(ctx, commandType, code, forwarded, s.cfg.Now().Sub(recv))
	}
}
