package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/ringleader-go/ringleader/tracing"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Client errors. Send wraps the underlying NATS or context error with them, so both
// errors.Is(err, ErrTimeout) and errors.Is(err, context.DeadlineExceeded) hold.
var (
	// ErrNoNodes: no node serves the prefix (NATS reported no responders).
	ErrNoNodes = errors.New("transport: no node is serving commands")
	// ErrTimeout: no reply before the deadline. The command may or may not have been
	// applied; resend it with the same Command-Id to find out.
	ErrTimeout = errors.New("transport: timed out waiting for a reply")
	// ErrBadReply: the reply was not a valid reply body.
	ErrBadReply = errors.New("transport: malformed reply")
)

// Client sends commands to a Ringleader cluster over NATS. It is safe for concurrent
// use and holds no resources of its own: closing the *nats.Conn is the caller's job.
type Client struct {
	nc       *nats.Conn
	prefix   string
	deadline bool
	route    func(commandType string, body []byte) string
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithPrefix sets the subject prefix (default "rl").
func WithPrefix(prefix string) ClientOption { return func(c *Client) { c.prefix = prefix } }

// WithDeadlineHeader chooses whether Send adds the absolute Deadline header (default
// true), which lets a node drop a command that reaches it after the caller gave up.
// Turn it off when this machine's clock may be far from the nodes' clocks.
func WithDeadlineHeader(on bool) ClientOption { return func(c *Client) { c.deadline = on } }

// WithRouter makes the client ring-aware: route names the node that owns a command
// (its aggregate's owner on the cluster's ring, e.g. from a node's /cluster), and
// Send addresses that node's own subject instead of the ingress queue group, which
// saves the hop through a receiving node that is not the owner (with N nodes, a
// fraction (N-1)/N of commands). route returns "" when it does not know; then, and
// when the named node has no subscriber (it left), the command goes through the
// ingress subject as usual. A node executes what arrives on its subject without
// forwarding it again, so a stale ring costs at worst an optimistic-concurrency
// retry in the event store, never a wrong result.
func WithRouter(route func(commandType string, body []byte) (nodeID string)) ClientOption {
	return func(c *Client) { c.route = route }
}

// clientRouterName is what a ring-aware client puts in HeaderForwardedBy.
const clientRouterName = "client"

// NewClient returns a client sending over nc.
func NewClient(nc *nats.Conn, opts ...ClientOption) *Client {
	c := &Client{nc: nc, prefix: DefaultPrefix, deadline: true}
	for _, o := range opts {
		o(c)
	}
	return c
}

// SendOption sets a header of one command.
type SendOption func(*sendOptions)

type sendOptions struct {
	commandID, consistency, correlationID, causationID string
	timeout                                            time.Duration
	expected                                           Expectation
	returnState                                        bool
	metadata                                           map[string]string
}

// WithExpectedVersion sets the Expected-Version header to version n (0: the
// aggregate must have no events yet).
func WithExpectedVersion(n int64) SendOption {
	return func(o *sendOptions) {
		o.expected = Expectation{Version: n}
		if n == 0 {
			o.expected = Expectation{Kind: ExpectNoStream}
		}
	}
}

// WithExpectation sets the Expected-Version header to ExpectAny, ExpectNoStream or
// ExpectExists.
func WithExpectation(kind string) SendOption {
	return func(o *sendOptions) { o.expected = Expectation{Kind: kind} }
}

// WithReturnState asks for the aggregate's state after the command (Reply.State).
func WithReturnState() SendOption { return func(o *sendOptions) { o.returnState = true } }

// WithMetadata adds Meta- headers: entries stored in every event's metadata (see
// MaxMetadata for the limits).
func WithMetadata(m map[string]string) SendOption {
	return func(o *sendOptions) {
		if o.metadata == nil {
			o.metadata = map[string]string{}
		}
		maps.Copy(o.metadata, m)
	}
}

// WithCommandID sets the Command-Id header, the command's idempotency key.
func WithCommandID(id string) SendOption { return func(o *sendOptions) { o.commandID = id } }

// WithConsistency sets the Consistency header (ConsistencyEventual or ConsistencyStrong).
func WithConsistency(c string) SendOption { return func(o *sendOptions) { o.consistency = c } }

// WithCorrelationID sets the Correlation-Id header.
func WithCorrelationID(id string) SendOption { return func(o *sendOptions) { o.correlationID = id } }

// WithCausationID sets the Causation-Id header.
func WithCausationID(id string) SendOption { return func(o *sendOptions) { o.causationID = id } }

// WithTimeout bounds the wait for the reply and tells the node (Timeout header).
// Without it the context's deadline is used; without either, DefaultTimeout.
func WithTimeout(d time.Duration) SendOption { return func(o *sendOptions) { o.timeout = d } }

// Send sends command as <prefix>.cmd.<commandType> and waits for the reply. command
// is marshalled to JSON, except that json.RawMessage and []byte are sent as they are.
//
// A reply arriving — successful or not — is returned with a nil error: inspect
// Reply.OK, or call Reply.Err. A non-nil error means no reply: ErrNoNodes,
// ErrTimeout (also when ctx's deadline passed), ErrBadReply, or a wrapped
// marshalling, context or NATS error.
func (c *Client) Send(ctx context.Context, commandType string, command any, opts ...SendOption) (reply Reply, err error) {
	var o sendOptions
	for _, opt := range opts {
		opt(&o)
	}
	if err := checkSubject(commandType, true); err != nil {
		return Reply{}, fmt.Errorf("transport: command type %q: %w", commandType, err)
	}
	var body []byte
	switch v := command.(type) {
	case json.RawMessage:
		body = v
	case []byte:
		body = v
	default:
		b, err := json.Marshal(command)
		if err != nil {
			return Reply{}, fmt.Errorf("transport: marshal %s: %w", commandType, err)
		}
		body = b
	}

	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	} else if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()

	ctx, span := tracing.Tracer().Start(ctx, "send "+commandType, trace.WithSpanKind(trace.SpanKindClient))
	defer func() { endSendSpan(span, commandType, reply, err) }()
	msg := nats.NewMsg(c.prefix + ".cmd." + commandType)
	msg.Data = body
	tracing.Inject(ctx, msg.Header)
	setIf(msg.Header, HeaderCommandID, o.commandID)
	setIf(msg.Header, HeaderConsistency, o.consistency)
	setIf(msg.Header, HeaderCorrelationID, o.correlationID)
	setIf(msg.Header, HeaderCausationID, o.causationID)
	setRequestOptions(msg.Header, o.expected, o.returnState, o.metadata)
	remaining := time.Until(deadline)
	if remaining <= 0 {
		return Reply{}, fmt.Errorf("%w: %w", ErrTimeout, context.DeadlineExceeded)
	}
	msg.Header.Set(HeaderTimeout, remaining.String())
	if c.deadline {
		msg.Header.Set(HeaderDeadline, deadline.UTC().Format(time.RFC3339Nano))
	}

	if c.route != nil {
		if owner := c.route(commandType, body); owner != "" && checkSubject(owner, false) == nil {
			direct := nats.NewMsg(NodeSubject(c.prefix, owner))
			direct.Data = body
			for k, v := range msg.Header {
				direct.Header[k] = v
			}
			direct.Header.Set(HeaderCommandType, commandType)
			direct.Header.Set(HeaderForwardedBy, clientRouterName)
			resp, err := c.nc.RequestMsgWithContext(ctx, direct)
			if !errors.Is(err, nats.ErrNoResponders) {
				return c.reply(commandType, resp, err)
			}
			// The owner is gone: let the cluster route it.
		}
	}
	resp, err := c.nc.RequestMsgWithContext(ctx, msg)
	return c.reply(commandType, resp, err)
}

// endSendSpan records a Send's outcome on its span, if traced, and ends it.
func endSendSpan(span trace.Span, commandType string, r Reply, err error) {
	if span.IsRecording() {
		span.SetAttributes(tracing.AttrCommandType.String(commandType), tracing.AttrCommandID.String(r.CommandID),
			tracing.AttrCode.String(r.Code()), tracing.AttrNode.String(r.Node))
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}

// reply turns a request's outcome into Send's results.
func (c *Client) reply(commandType string, resp *nats.Msg, err error) (Reply, error) {
	switch {
	case err == nil:
	case errors.Is(err, nats.ErrNoResponders):
		return Reply{}, fmt.Errorf("%w: %w", ErrNoNodes, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return Reply{}, fmt.Errorf("%w: %w", ErrTimeout, err)
	default:
		return Reply{}, fmt.Errorf("transport: send %s: %w", commandType, err)
	}
	var r Reply
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return Reply{}, fmt.Errorf("%w: %w", ErrBadReply, err)
	}
	return r, nil
}
