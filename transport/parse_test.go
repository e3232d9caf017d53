package transport

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/ringleader-go/ringleader/errcode"
)

var testLimits = limits{maxBody: 32, defaultTimeout: 5 * time.Second, maxTimeout: time.Minute}

func hdr(kv ...string) nats.Header {
	h := nats.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func TestParseRequestAccepts(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name         string
		commandType  string
		forwarded    bool
		h            nats.Header
		body         string
		wantType     string
		wantDeadline time.Time
		wantCons     string
	}{
		{"defaults", "Open", false, hdr(), `{}`, "Open", now.Add(5 * time.Second), ConsistencyEventual},
		{"timeout", "Open", false, hdr(HeaderTimeout, "250ms"), ` {"a":1} `, "Open", now.Add(250 * time.Millisecond), ConsistencyEventual},
		{"strong, any case", "Open", false, hdr(HeaderConsistency, "Strong"), `{}`, "Open", now.Add(5 * time.Second), ConsistencyStrong},
		{"earlier Deadline wins", "Open", false,
			hdr(HeaderTimeout, "10s", HeaderDeadline, now.Add(time.Second).Format(time.RFC3339Nano)), `{}`,
			"Open", now.Add(time.Second), ConsistencyEventual},
		{"later Deadline loses", "Open", false,
			hdr(HeaderTimeout, "1s", HeaderDeadline, now.Add(time.Hour).Format(time.RFC3339Nano)), `{}`,
			"Open", now.Add(time.Second), ConsistencyEventual},
		{"dotted type", "bank.Open", false, hdr(), `{}`, "bank.Open", now.Add(5 * time.Second), ConsistencyEventual},
		{"forwarded type from header", "", true, hdr(HeaderCommandType, "Open", HeaderForwardedBy, "n1"), `{}`,
			"Open", now.Add(5 * time.Second), ConsistencyEventual},
		{"names in any case; application and trace headers ignored", "Open", false,
			hdr("consistency", "strong", "X-Request-Source", "cli", "traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"), `{}`,
			"Open", now.Add(5 * time.Second), ConsistencyStrong},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.h.Set(HeaderCommandID, "c-1")
			tc.h.Set(HeaderCorrelationID, "corr")
			tc.h.Set(HeaderCausationID, "cause")
			req, rerr := parseRequest(tc.commandType, tc.forwarded, tc.h, []byte(tc.body), now, testLimits)
			if rerr != nil {
				t.Fatalf("refused: %v", rerr)
			}
			if req.CommandType != tc.wantType || !req.Deadline.Equal(tc.wantDeadline) || req.Consistency != tc.wantCons {
				t.Fatalf("got %+v", req)
			}
			if req.CommandID != "c-1" || req.CorrelationID != "corr" || req.CausationID != "cause" || string(req.Body) != tc.body {
				t.Fatalf("got %+v", req)
			}
			if req.Forwarded != tc.forwarded || (tc.forwarded && req.ForwardedBy != "n1") || (!tc.forwarded && req.ForwardedBy != "") {
				t.Fatalf("forwarded fields %+v", req)
			}
		})
	}
}

func TestParseRequestRefuses(t *testing.T) {
	now := time.Now()
	cases := map[string]struct {
		h    nats.Header
		body string
		want string
	}{
		"empty":           {hdr(), "", "empty"},
		"malformed":       {hdr(), `{`, "malformed"},
		"number":          {hdr(), `12`, "a number"},
		"bool":            {hdr(), `true`, "a boolean"},
		"too big":         {hdr(), `{"a":"` + strings.Repeat("x", 40) + `"}`, "exceeds the limit of 32"},
		"timeout zero":    {hdr(HeaderTimeout, "0s"), `{}`, "positive"},
		"timeout no unit": {hdr(HeaderTimeout, "5"), `{}`, "not a duration"},
		"timeout max":     {hdr(HeaderTimeout, "61s"), `{}`, "maximum"},
		"consistency":     {hdr(HeaderConsistency, "eventually"), `{}`, "eventually"},
		"deadline":        {hdr(HeaderDeadline, "12:00"), `{}`, "RFC 3339"},
		"timeout words":   {hdr(HeaderTimeout, "soon"), `{}`, `"soon" is not a duration`},
		// A header the contract does not know is refused, so a typo cannot drop a
		// guarantee without a word.
		"misspelt header":   {hdr("Expected-Versoin", "1"), `{}`, "Expected-Versoin is not part of the wire contract"},
		"internal header":   {hdr(HeaderCommandType, "Other"), `{}`, "only for requests on a node's own subject"},
		"given twice":       {nats.Header{HeaderExpectedVersion: {"1", "2"}}, `{}`, "given 2 times"},
		"expected version":  {hdr(HeaderExpectedVersion, "latest"), `{}`, `"latest" is none of`},
		"negative version":  {hdr(HeaderExpectedVersion, "-1"), `{}`, "none of"},
		"return":            {hdr(HeaderReturn, "events"), `{}`, `"events" is not "state"`},
		"contract":          {hdr(HeaderContract, "2"), `{}`, "speaks version 1"},
		"reserved metadata": {hdr("Meta-command_id", "x"), `{}`, `"command_id" is reserved`},
		"rl_ metadata":      {hdr("Meta-rl_route", "x"), `{}`, "reserved"},
		"empty key":         {hdr("Meta-", "x"), `{}`, "empty"},
		"key characters":    {hdr("Meta-a b", "x"), `{}`, "only letters"},
		"long key":          {hdr("Meta-"+strings.Repeat("k", MaxMetadataKey+1), "x"), `{}`, "at most 64"},
		"long value":        {hdr("Meta-k", strings.Repeat("v", MaxMetadataValue+1)), `{}`, "at most 1024"},
		"too much metadata": {manyMetadata(MaxMetadata + 1), `{}`, "at most 32"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			tc.h.Set(HeaderCommandID, "c-9")
			req, rerr := parseRequest("Open", false, tc.h, []byte(tc.body), now, testLimits)
			if rerr == nil {
				t.Fatalf("accepted %+v", req)
			}
			if rerr.Code != errcode.Invalid || !strings.Contains(rerr.Message, tc.want) {
				t.Fatalf("got %v, want invalid mentioning %q", rerr, tc.want)
			}
			if req.CommandID != "c-9" {
				t.Fatal("the command id is lost for the reply")
			}
		})
	}
	if _, rerr := parseRequest("", true, hdr(), []byte(`{}`), now, testLimits); rerr == nil {
		t.Fatal("a forward without Rl-Command-Type was accepted")
	}
}

func manyMetadata(n int) nats.Header {
	h := nats.Header{}
	for i := range n {
		h.Set(fmt.Sprintf("Meta-k%d", i), "v")
	}
	return h
}

// TestParseRequestOptions: the headers that shape what the command does.
func TestParseRequestOptions(t *testing.T) {
	now := time.Now()
	cases := []struct {
		h        nats.Header
		expected Expectation
		state    bool
		meta     map[string]string
	}{
		{hdr(), Expectation{Kind: ExpectAny}, false, nil},
		{hdr(HeaderExpectedVersion, "4"), Expectation{Version: 4}, false, nil},
		{hdr(HeaderExpectedVersion, "0"), Expectation{Kind: ExpectNoStream}, false, nil},
		{hdr("expected-version", "No_Stream"), Expectation{Kind: ExpectNoStream}, false, nil},
		{hdr(HeaderExpectedVersion, "exists"), Expectation{Kind: ExpectExists}, false, nil},
		{hdr(HeaderExpectedVersion, "any", HeaderReturn, "state", HeaderContract, "1"), Expectation{Kind: ExpectAny}, true, nil},
		{hdr("Meta-Tenant", "acme", "meta-region", "eu-1"), Expectation{Kind: ExpectAny}, false, map[string]string{"Tenant": "acme", "region": "eu-1"}},
		{manyMetadata(MaxMetadata), Expectation{Kind: ExpectAny}, false, manyMetadataMap(MaxMetadata)},
	}
	for _, tc := range cases {
		req, rerr := parseRequest("Open", false, tc.h, []byte(`{}`), now, testLimits)
		if rerr != nil {
			t.Fatalf("%v refused: %v", tc.h, rerr)
		}
		if req.Expected != tc.expected || req.ReturnState != tc.state || !maps.Equal(req.Metadata, tc.meta) {
			t.Fatalf("%v: got expected %+v, state %v, metadata %v", tc.h, req.Expected, req.ReturnState, req.Metadata)
		}
		// What a forward sends is read back the same.
		fwd := nats.Header{}
		setRequestOptions(fwd, req.Expected, req.ReturnState, req.Metadata)
		fwd.Set(HeaderCommandType, "Open")
		again, rerr := parseRequest("", true, fwd, []byte(`{}`), now, testLimits)
		if rerr != nil || again.Expected != req.Expected || again.ReturnState != req.ReturnState || !maps.Equal(again.Metadata, req.Metadata) {
			t.Fatalf("forwarded %v: %+v, %v", fwd, again, rerr)
		}
	}
}

func manyMetadataMap(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m[fmt.Sprintf("k%d", i)] = "v"
	}
	return m
}

func TestReplyEncoding(t *testing.T) {
	got := string(marshalReply(Reply{CommandID: "c-2", Error: &ReplyError{Code: errcode.Rejected, Message: "insufficient funds", Reason: "insufficient_funds"}}))
	want := `{"ok":false,"command_id":"c-2","duplicate":false,"error":{"code":"rejected","message":"insufficient funds","reason":"insufficient_funds"},"contract":1}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	// Invalid raw event data cannot produce invalid JSON on the wire.
	bad := Reply{OK: true, CommandID: "c-3", Events: []ReplyEvent{{Type: "X", Data: []byte("{")}}}
	got = string(marshalReply(bad))
	if !strings.HasPrefix(got, `{"ok":false,"command_id":"c-3","duplicate":false,"error":{"code":"unavailable"`) {
		t.Fatalf("got %s", got)
	}
	if (Reply{OK: true}).Err() != nil || (Reply{}).Err() == nil || (Reply{}).Code() != errcode.Unavailable {
		t.Fatal("Err/Code of the zero replies")
	}
}
