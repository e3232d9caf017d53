package transport

import (
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
		{"ingress ignores internal headers", "Open", false, hdr(HeaderCommandType, "Other", HeaderForwardedBy, "n1"), `{}`,
			"Open", now.Add(5 * time.Second), ConsistencyEventual},
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
		"timeout no unit": {hdr(HeaderTimeout, "5"), `{}`, "Go duration"},
		"timeout max":     {hdr(HeaderTimeout, "61s"), `{}`, "maximum"},
		"consistency":     {hdr(HeaderConsistency, "eventually"), `{}`, "eventually"},
		"deadline":        {hdr(HeaderDeadline, "12:00"), `{}`, "RFC 3339"},
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

func TestReplyEncoding(t *testing.T) {
	got := string(marshalReply(ErrorReply("c-2", errcode.Rejected, "insufficient funds")))
	want := `{"ok":false,"command_id":"c-2","duplicate":false,"error":{"code":"rejected","message":"insufficient funds"}}`
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
