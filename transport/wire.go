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
)

// Internal headers, set only on node-to-node forwards (<prefix>.node.<id>); the
// ingress subject ignores them.
const (
	// HeaderCommandType carries the command type on a forward (the node subject has
	// no room for it).
	HeaderCommandType = "Rl-Command-Type"
	// HeaderForwardedBy marks a forward and names the forwarding node.
	HeaderForwardedBy = "Rl-Forwarded-By"
)

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
	// Deadline is the earlier of receive time + Timeout (or ServerConfig.DefaultTimeout)
	// and the Deadline header.
	Deadline time.Time
	// Forwarded reports that the request arrived from another node on this node's
	// subject; it is never forwarded again.
	Forwarded bool
	// ForwardedBy is the forwarding node's id, for logs ("" unless Forwarded).
	ForwardedBy string
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
	// Code is one of the Code* constants.
	Code string `json:"code"`
	// Message is for humans.
	Message string `json:"message"`
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
// return one (anywhere in the chain, found with errors.As) to choose the reply's code.
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
	b, err := json.Marshal(r)
	if err != nil {
		fb, _ := json.Marshal(Reply{CommandID: r.CommandID, Node: r.Node, Error: &ReplyError{
			Code: errcode.Unavailable, Message: fmt.Sprintf("encode reply: %v", err)}})
		return fb
	}
	return b
}
