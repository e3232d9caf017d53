package transport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/ringleader-go/ringleader/errcode"
	"github.com/ringleader-go/ringleader/eventstore"
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
	req := Request{CommandType: commandType, Forwarded: forwarded, Expected: Expectation{Kind: ExpectAny}}
	invalid := func(format string, args ...any) (Request, *ReplyError) {
		return req, &ReplyError{Code: errcode.Invalid, Message: fmt.Sprintf(format, args...)}
	}
	h, problem := readHeaders(hdr, forwarded)
	req.CommandID = h.get(HeaderCommandID)
	if problem != "" {
		return invalid("%s", problem)
	}
	req.CorrelationID = h.get(HeaderCorrelationID)
	req.CausationID = h.get(HeaderCausationID)
	req.Metadata = h.metadata
	if forwarded {
		req.CommandType = h.get(HeaderCommandType)
		req.ForwardedBy = h.get(HeaderForwardedBy)
	}
	if req.CommandType == "" {
		return invalid("missing command type")
	}

	if v := h.get(HeaderContract); v != "" && v != strconv.Itoa(ContractVersion) {
		return invalid("header %s: this node speaks version %d of the wire contract, not %q", HeaderContract, ContractVersion, v)
	}

	switch c := strings.ToLower(strings.TrimSpace(h.get(HeaderConsistency))); c {
	case "", ConsistencyEventual:
		req.Consistency = ConsistencyEventual
	case ConsistencyStrong:
		req.Consistency = ConsistencyStrong
	default:
		return invalid("header %s: %q is neither %q nor %q", HeaderConsistency, h.get(HeaderConsistency), ConsistencyEventual, ConsistencyStrong)
	}

	if v := h.get(HeaderExpectedVersion); v != "" {
		e, ok := parseExpectation(v)
		if !ok {
			return invalid("header %s: %q is none of %q, %q, %q or a version number (0 or more)", HeaderExpectedVersion, v, ExpectAny, ExpectNoStream, ExpectExists)
		}
		req.Expected = e
	}

	switch v := strings.ToLower(strings.TrimSpace(h.get(HeaderReturn))); v {
	case "":
	case ReturnState:
		req.ReturnState = true
	default:
		return invalid("header %s: %q is not %q", HeaderReturn, h.get(HeaderReturn), ReturnState)
	}

	timeout := lim.defaultTimeout
	if v := h.get(HeaderTimeout); v != "" {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		switch {
		case err != nil:
			return invalid("header %s: %q is not a duration such as \"5s\" or \"750ms\"", HeaderTimeout, v)
		case d <= 0:
			return invalid("header %s: %q must be positive", HeaderTimeout, v)
		case d > lim.maxTimeout:
			return invalid("header %s: %s exceeds the maximum %s", HeaderTimeout, d, lim.maxTimeout)
		}
		timeout = d
	}
	req.Deadline = now.Add(timeout)
	if v := h.get(HeaderDeadline); v != "" {
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

// parseExpectation reads an Expected-Version value.
func parseExpectation(v string) (Expectation, bool) {
	switch v = strings.ToLower(strings.TrimSpace(v)); v {
	case ExpectAny, ExpectNoStream, ExpectExists:
		return Expectation{Kind: v}, true
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return Expectation{}, false
	}
	if n == 0 {
		return Expectation{Kind: ExpectNoStream}, true
	}
	return Expectation{Version: n}, true
}

// String is the header value of e.
func (e Expectation) String() string {
	if e.Kind != "" {
		return e.Kind
	}
	return strconv.FormatInt(e.Version, 10)
}

// requestHeaders are the contract's headers on <prefix>.cmd.>, by lower-case name.
var requestHeaders = lowerNames(HeaderCommandID, HeaderConsistency, HeaderCorrelationID, HeaderCausationID,
	HeaderTimeout, HeaderDeadline, HeaderExpectedVersion, HeaderReturn, HeaderContract)

// nodeHeaders are the headers a request on a node's own subject may carry besides
// requestHeaders.
var nodeHeaders = lowerNames(HeaderCommandType, HeaderForwardedBy)

// ignoredHeaders are headers outside the contract that a request may carry.
var ignoredHeaders = lowerNames(traceHeaders...)

func lowerNames(names ...string) map[string]string {
	m := make(map[string]string, len(names))
	for _, n := range names {
		m[strings.ToLower(n)] = n
	}
	return m
}

// headers are a request's contract headers, by canonical name, and its metadata.
type headers struct {
	values   map[string]string
	metadata map[string]string
}

func (h headers) get(name string) string { return h.values[name] }

// readHeaders sorts a request's headers: the contract's (matched without regard to
// case), metadata, and those it may ignore. It returns what it could read and, for a
// header it must refuse, why. Refused: a header outside the contract (a misspelling
// would otherwise drop a guarantee without a word), one given twice, and bad
// metadata.
func readHeaders(hdr nats.Header, forwarded bool) (headers, string) {
	h := headers{values: make(map[string]string, len(hdr))}
	var problem string
	refuse := func(format string, args ...any) {
		if problem == "" {
			problem = fmt.Sprintf(format, args...)
		}
	}
	for name, vals := range hdr {
		lower := strings.ToLower(name)
		canonical, known := requestHeaders[lower]
		if !known && forwarded {
			canonical, known = nodeHeaders[lower]
		}
		switch {
		case known:
			if len(vals) > 1 {
				refuse("header %s is given %d times; send it once", canonical, len(vals))
			}
			if len(vals) > 0 {
				h.values[canonical] = vals[0]
			}
		case strings.HasPrefix(lower, strings.ToLower(HeaderMetadataPrefix)):
			key := name[len(HeaderMetadataPrefix):]
			if why := checkMetadata(key, vals); why != "" {
				refuse("header %s: %s", name, why)
				continue
			}
			if h.metadata == nil {
				h.metadata = map[string]string{}
			}
			h.metadata[key] = vals[0]
		case strings.HasPrefix(lower, strings.ToLower(HeaderApplicationPrefix)), ignoredHeaders[lower] != "":
		case nodeHeaders[lower] != "":
			refuse("header %s is only for requests on a node's own subject (%s)", name, "<prefix>.node.<id>")
		default:
			refuse("header %s is not part of the wire contract; check its spelling (docs/wire-contract.md), or name it %s… to have nodes ignore it", name, HeaderApplicationPrefix)
		}
	}
	if len(h.metadata) > MaxMetadata {
		refuse("%d metadata headers (%s…); at most %d are allowed", len(h.metadata), HeaderMetadataPrefix, MaxMetadata)
	}
	return h, problem
}

// checkMetadata says what is wrong with a metadata entry, or "".
func checkMetadata(key string, vals []string) string {
	switch {
	case key == "":
		return "the metadata key after " + HeaderMetadataPrefix + " is empty"
	case len(key) > MaxMetadataKey:
		return fmt.Sprintf("the metadata key is %d bytes long; at most %d are allowed", len(key), MaxMetadataKey)
	case strings.IndexFunc(key, func(r rune) bool { return !isKeyRune(r) }) >= 0:
		return "a metadata key may hold only letters, digits, '_', '-' and '.'"
	case eventstore.ReservedMetadataKey(key):
		return fmt.Sprintf("metadata key %q is reserved for Ringleader", key)
	case len(vals) != 1:
		return fmt.Sprintf("given %d times; send it once", len(vals))
	case len(vals[0]) > MaxMetadataValue:
		return fmt.Sprintf("the value is %d bytes long; at most %d are allowed", len(vals[0]), MaxMetadataValue)
	case !utf8.ValidString(vals[0]) || strings.ContainsRune(vals[0], 0):
		return "the value must be UTF-8 text without NUL"
	}
	return ""
}

func isKeyRune(r rune) bool {
	return r == '_' || r == '-' || r == '.' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9')
}
