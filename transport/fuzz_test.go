package transport

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/errcode"
	"github.com/ringleader-go/ringleader/internal/testapp"
)

// FuzzDecodeRequest feeds arbitrary subjects, headers and bodies through the request
// decoder a node runs on every NATS message (parseRequest), then through a router's
// DecodeTarget (what LocateCommand does; testapp's router, the runtime's test
// application), and through relayedCode (what a forwarding node does with the
// owner's reply). None of them may panic, a refusal is always code invalid, and an
// accepted request is a single JSON object within the limits with a deadline no later
// than the maximum timeout. A command the router decodes goes to the stream of the
// identity it names; DecodeTarget refuses anything else as an unknown command type
// or invalid (the corpus's older, bank-shaped inputs are unknown types to testapp).
//
// The seed corpus (testdata/fuzz/FuzzDecodeRequest plus the f.Add calls) runs with
// every `go test`; run the fuzzer itself with
//
//	go test -run '^$' -fuzz FuzzDecodeRequest -fuzztime 10m ./transport/
func FuzzDecodeRequest(f *testing.F) {
	router := testapp.NewRouter()
	lim := limits{maxBody: 4096, defaultTimeout: 5 * time.Second, maxTimeout: 5 * time.Minute}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

	type seed struct {
		typ                                    string
		forwarded                              bool
		commandID, consistency, timeout, dline string
		body                                   string
	}
	for _, s := range []seed{
		{"Add", false, "c-1", "", "", "", `{"id":"C1","n":100}`},
		{"Add", false, "c-2", "strong", "2s", "", `{"id":"C1","n":10,"note":"Ann"}`},
		{"Add", false, "", "eventual", "750ms", "2030-01-01T00:00:01Z", `{"id":"C1","n":1e3}`},
		{"Forget", false, "", "", "", "", `{"id":"C1"}`},
		{"Close", true, "c-3", "", "", "", `{"id":"C1"}`},
		{"Add", false, "", "weird", "-1s", "yesterday", `{"id":"C1","unknown":true}`},
		{"Nope", false, "", "", "10m", "", `[1,2,3]`},
		{"", false, "", "", "", "", ``},
		{"Add", false, "", "", "", "", `{"id":"C1","n":"ten"} trailing`},
		{"Add", false, "", "", "", "", "{\"id\":\"\xff\xfe\",\"n\":1}"},
		{"Add", false, "", "", "", "", `{"id":null}`},
		{"Add", false, "", "", "", "", `{"id":"C1","n":0}`},
		{"Close", false, "", "", "", "", `{"id":""}`},
		{"Add", false, "", "", "", "", `{"id":"C1","n":99999999999999999999999}`},
	} {
		f.Add(s.typ, s.forwarded, s.commandID, s.consistency, s.timeout, s.dline, []byte(s.body))
	}

	f.Fuzz(func(t *testing.T, typ string, forwarded bool, commandID, consistency, timeout, deadline string, body []byte) {
		h := nats.Header{}
		set := func(k, v string) {
			if v != "" {
				h.Set(k, v)
			}
		}
		set(HeaderCommandID, commandID)
		set(HeaderConsistency, consistency)
		set(HeaderTimeout, timeout)
		set(HeaderDeadline, deadline)
		subjectType := typ
		if forwarded {
			set(HeaderCommandType, typ)
			set(HeaderForwardedBy, "n1")
			subjectType = ""
		}
		req, rerr := parseRequest(subjectType, forwarded, h, body, now, lim)
		if rerr != nil {
			if rerr.Code != errcode.Invalid {
				t.Fatalf("refusal with code %q, want invalid: %v", rerr.Code, rerr)
			}
			if req.CommandID != h.Get(HeaderCommandID) {
				t.Fatalf("refusal lost the Command-Id: %q", req.CommandID)
			}
			return
		}
		if req.CommandType == "" {
			t.Fatal("accepted a request without a command type")
		}
		if len(req.Body) > lim.maxBody {
			t.Fatalf("accepted a body of %d bytes over the limit", len(req.Body))
		}
		// An accepted body is one JSON object (JSON whitespace around it allowed).
		// The fuzzer once found "\v{}" accepted, when the decoder trimmed with
		// bytes.TrimSpace; that input stays in the corpus
		// (found-vertical-tab-before-object) and is now refused.
		if trimmed := bytes.Trim(req.Body, " \t\r\n"); !json.Valid(req.Body) || len(trimmed) == 0 || trimmed[0] != '{' {
			t.Fatalf("accepted a body that is not a JSON object: %q", req.Body)
		}
		if req.Consistency != ConsistencyEventual && req.Consistency != ConsistencyStrong {
			t.Fatalf("consistency %q", req.Consistency)
		}
		if req.Deadline.After(now.Add(lim.maxTimeout)) {
			t.Fatalf("deadline %v beyond the maximum timeout", req.Deadline)
		}

		// What LocateCommand does with an accepted request: decode it for the router.
		cmd, target, err := router.DecodeTarget(req.CommandType, req.Body)
		switch {
		case err == nil:
			if cmd == nil || target.AggregateID == "" || target.StreamID != testapp.StreamPrefix+target.AggregateID || target.CommandType != req.CommandType {
				t.Fatalf("decoded %T of %q with target %+v", cmd, req.CommandType, target)
			}
		case errors.Is(err, aggregate.ErrUnknownCommand), errors.Is(err, aggregate.ErrInvalid):
		default:
			t.Fatalf("DecodeTarget error is neither unknown command nor invalid: %v", err)
		}

		// A forwarding node relays the owner's reply and reports its code. Any bytes
		// give a code. (It is the owner's code verbatim, even one that is not a wire
		// code: the fuzzer found {"error":{"Code":"0"}} → "0", kept in the corpus. The
		// owner is a trusted node, so this is only about metric labels.)
		if code := relayedCode(body); code == "" {
			t.Fatalf("relayedCode(%q) is empty", body)
		}
	})
}
