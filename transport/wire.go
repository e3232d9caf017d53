package transport

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ringleader-go/ringleader/errcode"
)

// Request header names (docs/wire-contract.md). All are optional.
const (
	// HeaderCommandID is the client-chosen idempotency key.
	HeaderCommandID = "Command-Id"
	// HeaderConsistency is ConsistencyEventual (the default) or ConsistencyStrong.
	HeaderConsistency = "Consistency"
	// HeaderCorrelationID is copied into every event's metadata.
	HeaderCorrelationID = "Correlation-Id"
	// HeaderCausationID is copied into every event's metadata.
	HeaderCausationID = "Causation-Id"
	// HeaderTimeout is a Go duration string ("2s", "750ms"): the node stops waiting
	// after it. It must be positive and at most ServerConfig.MaxTimeout.
	HeaderTimeout = "Timeout"
	// HeaderDeadline is an optional extension of the wire contract: an absolute
	// deadline in RFC 3339 (nanosecond precision allowed). The node uses whichever of
	// Deadline and receive time + Timeout comes first, and drops (answers timeout
	// without executing) a request whose Deadline passed before it was picked up — the
	// case of a publish the client's NATS library buffered across a reconnect and sent
	// after the caller gave up. It compares clocks, so a client whose clock is not
	// synchronised with the nodes' should not send it (see WithDeadlineHeader).
	HeaderDeadline = "Deadline"
	// HeaderExpectedVersion makes the command run only if its aggregate is at the
	// stated version when its turn comes: ExpectAny (the default), ExpectNoStream,
	// ExpectExists, or a version number (0 is the same as ExpectNoStream). Otherwise
	// the reply is conflict and nothing is appended.
	HeaderExpectedVersion = "Expected-Version"
	// HeaderReturn asks for more in the reply: ReturnState adds the aggregate's
	// state after the command (Reply.State).
	HeaderReturn = "Return"
	// HeaderContract is the major version of the wire contract the client speaks; a
	// node refuses (invalid) a request for a version it does not speak. Optional.
	HeaderContract = "Contract"
	// HeaderMetadataPrefix starts a metadata header: "Meta-Tenant: acme" stores
	// tenant=acme in every event's metadata. See MaxMetadata for the limits;
	// eventstore.ReservedMetadataKey names the keys that are refused.
	HeaderMetadataPrefix = "Meta-"
	// HeaderApplicationPrefix starts the headers a request may carry for its own
	// purposes; nodes ignore them. Any other header that is not part of the contract
	// is refused (invalid), so that a misspelt one cannot drop a guarantee silently.
	HeaderApplicationPrefix = "X-"
)

// Values of HeaderExpectedVersion other than a version number.
const (
	ExpectAny      = "any"
	ExpectNoStream = "no_stream"
	ExpectExists   = "exists"
)

// ReturnState is the value of HeaderReturn that asks for the aggregate's state.
const ReturnState = "state"

// ContractVersion is the major version of the wire contract this package speaks,
// which every reply carries (Reply.Contract). It changes only when a change would
// break a client written against the documented contract (docs/wire-contract.md).
const ContractVersion = 1

// Limits of a request's metadata (HeaderMetadataPrefix headers).
const (
	// MaxMetadata is the most metadata entries a request may carry.
	MaxMetadata = 32
	// MaxMetadataKey is the longest key, in bytes.
	MaxMetadataKey = 64
	// MaxMetadataValue is the longest value, in bytes.
	MaxMetadataValue = 1024
)

// Expectation is a parsed HeaderExpectedVersion. Its zero value expects nothing
// (ExpectAny).
type Expectation struct {
	// Kind is ExpectAny, ExpectNoStream, ExpectExists, or "" for an exact Version
	// (above 0; 0 is ExpectNoStream).
	Kind string
	// Version is the expected version when Kind is "".
	Version int64
}

// Internal headers, set only on node-to-node forwards (<prefix>.node.<id>); the
// ingress subject ignores them.
const (
	// HeaderCommandType carries the command type on a forward (the node subject has
	// no room for it).
	HeaderCommandType = "Rl-Command-Type"
	// HeaderForwardedBy marks a forward and names the forwarding node.
	HeaderForwardedBy = "Rl-Forwarded-By"
)

// traceHeaders are the W3C trace-context headers, which a request may carry for
// tracing (nodes ignore them for now).
var traceHeaders = []string{"traceparent", "tracestate", "baggage"}

// Values of HeaderConsistency.
const (
	// ConsistencyEventual: reply once the events are stored (the default).
	ConsistencyEventual = "eventual"
	// ConsistencyStrong: reply once every strongly-consistent handler has processed
	// the events.
	ConsistencyStrong = "strong"
)

// Request is a decoded, validated command request, as the Executor receives it.
type Request struct {
	// CommandType is the last part of the subject <prefix>.cmd.<CommandType> (it may
	// itself contain dots).
	CommandType string
	// Body is the command, a JSON object, exactly as received.
	Body json.RawMessage
	// CommandID is the Command-Id header ("" when absent).
	CommandID string
	// Consistency is ConsistencyEventual or ConsistencyStrong, never "".
	Consistency string
	// CorrelationID and CausationID are the headers of the same names ("" when absent).
	CorrelationID, CausationID string
	// Deadline is when work on the request stops: the earlier of receive time +
	// Timeout (or ServerConfig.DefaultTimeout) and the Deadline header, less a margin
	// (a tenth of the time, at most 250 ms) for the answer to reach the caller.
	Deadline time.Time
	// Forwarded reports that the request arrived from another node on this node's
	// subject; it is never forwarded again.
	Forwarded bool
	// ForwardedBy is the forwarding node's id, for logs ("" unless Forwarded).
	ForwardedBy string
	// Expected is the Expected-Version header (Kind ExpectAny when absent).
	Expected Expectation
	// Metadata holds the Meta- headers, keyed by what follows the prefix (nil when
	// there are none).
	Metadata map[string]string
	// ReturnState reports "Return: state".
	ReturnState bool
	// Command is the command ServerConfig.LocateCommand decoded from Body, when it
	// was called for this request; nil otherwise (the Executor decodes Body).
	Command any
}

// ReplyEvent is one event a command produced.
type ReplyEvent struct {
	Type           string          `json:"type"`
	StreamVersion  int64           `json:"stream_version"`
	GlobalPosition int64           `json:"global_position"`
	Data           json.RawMessage `json:"data"`
}

// ReplyError is the error of a failed command. It implements error, so
// errors.As(reply.Err(), &rerr) finds it.
type ReplyError struct {
	// Code is one of the codes of package errcode.
	Code string `json:"code"`
	// Message is for humans.
	Message string `json:"message"`
	// Reason is the domain's machine-readable reason of a rejection
	// (aggregate.Rejection), when it gave one.
	Reason string `json:"reason,omitempty"`
	// Field is the JSON name of the command's field an invalid answer is about,
	// when it is about one.
	Field string `json:"field,omitempty"`
}

// Error implements error: "<code>: <message>".
func (e *ReplyError) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

// Reply is the reply body of the wire contract (docs/wire-contract.md).
type Reply struct {
	OK               bool         `json:"ok"`
	CommandID        string       `json:"command_id,omitempty"`
	AggregateID      string       `json:"aggregate_id,omitempty"`
	AggregateVersion int64        `json:"aggregate_version,omitempty"`
	Events           []ReplyEvent `json:"events,omitempty"`
	Node             string       `json:"node,omitempty"`
	Duplicate        bool         `json:"duplicate"`
	Error            *ReplyError  `json:"error,omitempty"`
	// State is the aggregate's state after the command, with "Return: state" (absent
	// for a duplicate: the state after the original is gone).
	State json.RawMessage `json:"state,omitempty"`
	// Contract is the ContractVersion of the node that answered.
	Contract int `json:"contract"`
}

// Err returns nil for a successful reply and its *ReplyError otherwise (a generic
// unavailable one if a failed reply carries no error).
func (r Reply) Err() error {
	if r.OK {
		return nil
	}
	if r.Error == nil {
		return &ReplyError{Code: errcode.Unavailable, Message: "reply has ok=false and no error"}
	}
	return r.Error
}

// Code returns "" for a successful reply and the error code otherwise.
func (r Reply) Code() string {
	if r.OK {
		return ""
	}
	if r.Error == nil {
		return errcode.Unavailable
	}
	return r.Error.Code
}

// ErrorReply builds a failed reply.
func ErrorReply(commandID, code, message string) Reply {
	return Reply{CommandID: commandID, Error: &ReplyError{Code: code, Message: message}}
}

// Coder is implemented by errors that know their wire code. ServerConfig.Locate may
// return one (anywhere in the chain, found with errors.As) to choose the reply's code,
// or a *ReplyError to choose the whole error the reply carries.
type Coder interface {
	Code() string
}

// WithCode wraps err so that the server answers it with code (one of the Code*
// constants). The message is err's text.
func WithCode(code string, err error) error {
	return &codedError{code: code, err: err}
}

type codedError struct {
	code string
	err  error
}

func (e *codedError) Error() string {
	if e.err == nil {
		return e.code
	}
	return e.err.Error()
}
func (e *codedError) Code() string  { return e.code }
func (e *codedError) Unwrap() error { return e.err }

// replyErrorOf is the reply error of err: a *ReplyError in its chain as it is, else
// its message with codeOf's code.
func replyErrorOf(err error, fallback string) *ReplyError {
	var re *ReplyError
	if errors.As(err, &re) && errcode.Valid(re.Code) {
		return re
	}
	return &ReplyError{Code: codeOf(err, fallback), Message: err.Error()}
}

// codeOf maps an error to a wire code: a Coder's valid code, else fallback.
func codeOf(err error, fallback string) string {
	var c Coder
	if errors.As(err, &c) && errcode.Valid(c.Code()) {
		return c.Code()
	}
	return fallback
}

// marshalReply encodes r; it cannot fail for a Reply whose Data fields are valid
// JSON, and falls back to a fixed unavailable reply if they are not.
func marshalReply(r Reply) []byte {
	r.Contract = ContractVersion
	b, err := json.Marshal(r)
	if err != nil {
		fb, _ := json.Marshal(Reply{CommandID: r.CommandID, Node: r.Node, Contract: ContractVersion, Error: &ReplyError{
			Code: errcode.Unavailable, Message: fmt.Sprintf("encode reply: %v", err)}})
		return fb
	}
	return b
}
