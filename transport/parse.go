package transport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/ringleader-go/ringleader/errcode"
)

// limits are the parsing knobs of a ServerConfig.
type limits struct {
	maxBody        int
	defaultTimeout time.Duration
	maxTimeout     time.Duration
}

// parseRequest decodes and validates one request. It is pure: now is the receive
// time. commandType is "" on the node subject, where it comes from
// HeaderCommandType. The returned *ReplyError is non-nil (code invalid) when the
// request must be refused; the returned Request then holds whatever was decoded
// (at least CommandID, for the reply).
func parseRequest(commandType string, forwarded bool, hdr nats.Header, body []byte, now time.Time, lim limits) (Request, *ReplyError) {
	req := Request{
		CommandType:   commandType,
		CommandID:     hdr.Get(HeaderCommandID),
		CorrelationID: hdr.Get(HeaderCorrelationID),
		CausationID:   hdr.Get(HeaderCausationID),
		Forwarded:     forwarded,
	}
	invalid := func(format string, args ...any) (Request, *ReplyError) {
		return req, &ReplyError{Code: errcode.Invalid, Message: fmt.Sprintf(format, args...)}
	}
	if forwarded {
		req.CommandType = hdr.Get(HeaderCommandType)
		req.ForwardedBy = hdr.Get(HeaderForwardedBy)
	}
	if req.CommandType == "" {
		return invalid("missing command type")
	}

	switch c := strings.ToLower(strings.TrimSpace(hdr.Get(HeaderConsistency))); c {
	case "", ConsistencyEventual:
		req.Consistency = ConsistencyEventual
	case ConsistencyStrong:
		req.Consistency = ConsistencyStrong
	default:
		return invalid("header %s: %q is neither %q nor %q", HeaderConsistency, hdr.Get(HeaderConsistency), ConsistencyEventual, ConsistencyStrong)
	}

	timeout := lim.defaultTimeout
	if v := hdr.Get(HeaderTimeout); v != "" {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		switch {
		case err != nil:
			return invalid("header %s: %q is not a Go duration such as \"5s\"", HeaderTimeout, v)
		case d <= 0:
			return invalid("header %s: %q must be positive", HeaderTimeout, v)
		case d > lim.maxTimeout:
			return invalid("header %s: %s exceeds the maximum %s", HeaderTimeout, d, lim.maxTimeout)
		}
		timeout = d
	}
	req.Deadline = now.Add(timeout)
	if v := hdr.Get(HeaderDeadline); v != "" {
		dl, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(v))
		if err != nil {
			return invalid("header %s: %q is not an RFC 3339 time", HeaderDeadline, v)
		}
		if dl.Before(req.Deadline) {
			req.Deadline = dl
		}
	}

	if len(body) > lim.maxBody {
		return invalid("body of %d bytes exceeds the limit of %d bytes", len(body), lim.maxBody)
	}
	if err := checkObject(body); err != nil {
		return invalid("body: %v", err)
	}
	req.Body = json.RawMessage(body)
	return req, nil
}

// jsonSpace is the whitespace JSON allows around a value (RFC 8259).
const jsonSpace = " \t\r\n"

// checkObject reports why body is not a single well-formed JSON object.
func checkObject(body []byte) error {
	// Only JSON's own whitespace: bytes.TrimSpace would also drop \v, \f, U+0085
	// and U+00A0 and accept a body that is not JSON (found by FuzzDecodeRequest).
	trimmed := bytes.Trim(body, jsonSpace)
	if len(trimmed) == 0 {
		return fmt.Errorf("empty; the command must be a JSON object")
	}
	if !json.Valid(trimmed) {
		var v any
		err := json.Unmarshal(trimmed, &v)
		return fmt.Errorf("malformed JSON: %v", err)
	}
	if trimmed[0] != '{' {
		return fmt.Errorf("the command must be a JSON object, not %s", jsonKind(trimmed[0]))
	}
	return nil
}

func jsonKind(first byte) string {
	switch first {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	default:
		return "a number"
	}
}
