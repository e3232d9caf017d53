package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/transport/natstest"
)

// cli sends one command with the nats CLI: `nats request <prefix>.cmd.<type> <body>
// -H <header> ...`, exactly as the README shows it.
func (e *env) cli(bin, commandType, body string, headers ...string) reply {
	e.t.Helper()
	return e.cliSubject(bin, e.prefix+".cmd."+commandType, body, headers...)
}

// cliSubject is cli to any subject.
func (e *env) cliSubject(bin, subject, body string, headers ...string) reply {
	e.t.Helper()
	args := []string{"--server", natsURL(), "--timeout", "15s", "request", "--raw", "--no-templates", subject, body}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		e.t.Fatalf("nats %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var r reply
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &r); err != nil {
		e.t.Fatalf("nats %s: the reply is not JSON: %q", strings.Join(args, " "), stdout.String())
	}
	if r.Contract == nil || *r.Contract != 1 {
		e.t.Fatalf("nats %s: the reply does not say it is contract version 1: %s", strings.Join(args, " "), stdout.String())
	}
	return r
}

// want fails unless r has the code ("" for success), and for an error the reason and
// field given ("-" for any).
func want(t *testing.T, what string, r reply, code, reason, field string) {
	t.Helper()
	if r.code() != code {
		t.Fatalf("%s: %+v (error %+v), want code %q", what, r, r.Error, code)
	}
	if r.Error == nil {
		return
	}
	if reason != "-" && r.Error.Reason != reason {
		t.Fatalf("%s: reason %q, want %q (%+v)", what, r.Error.Reason, reason, r.Error)
	}
	if field != "-" && r.Error.Field != field {
		t.Fatalf("%s: field %q, want %q (%+v)", what, r.Error.Field, field, r.Error)
	}
}

// TestWireContractWithNATSCLI is the conformance test of docs/wire-contract.md from a
// client that is not Ringleader's Go code: the nats CLI against three real node
// processes (so most requests are forwarded from the node that received them to the
// aggregate's owner). Every header and every code a client can provoke is tried.
func TestWireContractWithNATSCLI(t *testing.T) {
	bin := natstest.CLI(t)
	e := newEnv(t)
	e.start("n1")
	e.start("n2")
	e.start("n3")
	e.waitConverged("n1", "n2", "n3")
	events := func(stream string) int {
		var n int
		if err := e.db.QueryRow(context.Background(), fmt.Sprintf(`SELECT count(*) FROM %q.events WHERE stream_id = $1`, e.schema), stream).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// Return: state, and Command-Id: a repeat is a duplicate with the same version.
	r := e.cli(bin, "OpenAccount", `{"account_number":"C1","initial_balance":100}`, "Command-Id:open-C1", "Return:state")
	want(t, "open", r, "", "", "")
	var state struct {
		Balance int64 `json:"balance"`
		Open    bool  `json:"open"`
	}
	if err := json.Unmarshal(r.State, &state); err != nil || state.Balance != 100 || !state.Open || r.AggregateVersion != 1 {
		t.Fatalf("open with Return: state: state %s (%v), version %d", r.State, err, r.AggregateVersion)
	}
	if r = e.cli(bin, "OpenAccount", `{"account_number":"C1","initial_balance":100}`, "Command-Id:open-C1"); r.code() != "" || !r.Duplicate || r.AggregateVersion != 1 {
		t.Fatalf("repeat of open-C1: %+v", r)
	}

	// Expected-Version: a mismatch is a conflict and appends nothing; the right
	// version appends. Header names are matched in any case.
	want(t, "deposit expecting 4 at 1", e.cli(bin, "DepositMoney", `{"account_number":"C1","amount":5}`, "Expected-Version:4"), "conflict", "", "")
	if n := events("account-C1"); n != 1 {
		t.Fatalf("a conflicting deposit appended: %d events", n)
	}
	r = e.cli(bin, "DepositMoney", `{"account_number":"C1","amount":5}`, "expected-version:1")
	want(t, "deposit expecting 1", r, "", "", "")
	if r.AggregateVersion != 2 {
		t.Fatalf("deposit expecting 1: version %d", r.AggregateVersion)
	}
	want(t, "no_stream on an account", e.cli(bin, "DepositMoney", `{"account_number":"C1","amount":5}`, "Expected-Version:no_stream"), "conflict", "", "")
	want(t, "exists on no account", e.cli(bin, "OpenAccount", `{"account_number":"C2","initial_balance":1}`, "Expected-Version:exists"), "conflict", "", "")
	want(t, "no_stream on no account", e.cli(bin, "OpenAccount", `{"account_number":"C2","initial_balance":1}`, "Expected-Version:no_stream"), "", "", "")
	want(t, "exists on an account", e.cli(bin, "DepositMoney", `{"account_number":"C2","amount":1}`, "Expected-Version:exists"), "", "", "")
	want(t, "any", e.cli(bin, "DepositMoney", `{"account_number":"C2","amount":1}`, "Expected-Version:any"), "", "", "")
	want(t, "bad Expected-Version", e.cli(bin, "DepositMoney", `{"account_number":"C2","amount":1}`, "Expected-Version:latest"), "invalid", "", "")

	// Rejections carry the domain's reason, also on every node the request may land
	// on, and a retry of the same Command-Id gets the recorded reason back.
	for i := range 6 {
		r = e.cli(bin, "WithdrawMoney", `{"account_number":"C1","amount":1000}`, fmt.Sprintf("Command-Id:poor-%d", i))
		want(t, "overdraw", r, "rejected", "insufficient_funds", "")
	}
	want(t, "retry of an overdraw", e.cli(bin, "WithdrawMoney", `{"account_number":"C1","amount":1}`, "Command-Id:poor-0"), "rejected", "insufficient_funds", "")

	// Metadata reaches the events; reserved keys and too long values are refused.
	want(t, "metadata", e.cli(bin, "DepositMoney", `{"account_number":"C2","amount":1}`, "Command-Id:meta-1", "Meta-Tenant:acme", "Meta-channel:mobile",
		"Correlation-Id:corr-1", "Causation-Id:cause-1"), "", "", "")
	var tenant, channel, correlation, causation string
	if err := e.db.QueryRow(context.Background(), fmt.Sprintf(`SELECT metadata->>'Tenant', metadata->>'channel', metadata->>'correlation_id', metadata->>'causation_id'
		FROM %q.events WHERE metadata->>'command_id' = 'meta-1'`, e.schema)).Scan(&tenant, &channel, &correlation, &causation); err != nil ||
		tenant != "acme" || channel != "mobile" || correlation != "corr-1" || causation != "cause-1" {
		t.Fatalf("metadata stored: %q %q %q %q %v", tenant, channel, correlation, causation, err)
	}
	want(t, "reserved metadata", e.cli(bin, "DepositMoney", `{"account_number":"C2","amount":1}`, "Meta-command_id:x"), "invalid", "", "")
	want(t, "long metadata", e.cli(bin, "DepositMoney", `{"account_number":"C2","amount":1}`, "Meta-k:"+strings.Repeat("v", 1025)), "invalid", "", "")

	// A header outside the contract is refused, not ignored; X- headers and trace
	// context are ignored.
	before := events("account-C1")
	r = e.cli(bin, "DepositMoney", `{"account_number":"C1","amount":5}`, "Expected-Versoin:1")
	want(t, "misspelt header", r, "invalid", "", "")
	if !strings.Contains(r.Error.Message, "Expected-Versoin") || events("account-C1") != before {
		t.Fatalf("misspelt header: %+v, %d events (had %d)", r.Error, events("account-C1"), before)
	}
	want(t, "application header", e.cli(bin, "DepositMoney", `{"account_number":"C1","amount":5}`, "X-Request-Source:cli", "traceparent:00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"), "", "", "")
	want(t, "contract 1", e.cli(bin, "DepositMoney", `{"account_number":"C1","amount":5}`, "Contract:1"), "", "", "")
	want(t, "contract 2", e.cli(bin, "DepositMoney", `{"account_number":"C1","amount":5}`, "Contract:2"), "invalid", "", "")
	want(t, "bad consistency", e.cli(bin, "DepositMoney", `{"account_number":"C1","amount":5}`, "Consistency:eventually"), "invalid", "", "")
	want(t, "bad timeout", e.cli(bin, "DepositMoney", `{"account_number":"C1","amount":5}`, "Timeout:5"), "invalid", "", "")
	want(t, "bad return", e.cli(bin, "DepositMoney", `{"account_number":"C1","amount":5}`, "Return:everything"), "invalid", "", "")

	// Invalid commands name the field, in JSON's words, not Go's.
	for _, c := range []struct{ what, typ, body, field string }{
		{"wrong type", "DepositMoney", `{"account_number":"C1","amount":"ten"}`, "amount"},
		{"unknown field", "DepositMoney", `{"account_number":"C1","amount":1,"note":"x"}`, "note"},
		{"missing identity", "DepositMoney", `{"amount":1}`, "account_number"},
		{"failed validation", "DepositMoney", `{"account_number":"C1","amount":0}`, "amount"},
		{"malformed JSON", "DepositMoney", `{"account_number":`, ""},
		{"not an object", "DepositMoney", `[1]`, ""},
	} {
		r = e.cli(bin, c.typ, c.body)
		want(t, c.what, r, "invalid", "", c.field)
		for _, goWord := range []string{"Go struct", "int64", "bank.", "json:"} {
			if strings.Contains(r.Error.Message, goWord) {
				t.Fatalf("%s: the message speaks Go (%q): %s", c.what, goWord, r.Error.Message)
			}
		}
	}
	want(t, "unknown command", e.cli(bin, "LaunchRocket", `{}`), "unknown_command", "", "")

	// A node's own subject, as a ring-aware client uses it: the command type in
	// Rl-Command-Type, executed by that node. On the ingress subject the header is
	// refused.
	r = e.cliSubject(bin, e.prefix+".node.n2", `{"account_number":"C1","amount":1}`, "Rl-Command-Type:DepositMoney")
	if r.code() != "" || r.Node != "n2" {
		t.Fatalf("a command on n2's subject: %+v %+v", r, r.Error)
	}
	want(t, "Rl-Command-Type on the ingress", e.cli(bin, "DepositMoney", `{"account_number":"C1","amount":1}`, "Rl-Command-Type:DepositMoney"), "invalid", "", "")

	// timeout: a request whose Deadline has passed is not executed.
	before = events("account-C1")
	want(t, "deadline passed", e.cli(bin, "DepositMoney", `{"account_number":"C1","amount":5}`, "Deadline:2001-01-01T00:00:00Z"), "timeout", "", "")
	if events("account-C1") != before {
		t.Fatal("a request past its deadline was executed")
	}

	// consistency_timeout: the bank's strongly consistent projection is held up (its
	// table locked), so the events are stored but not projected within the timeout.
	// The reply says so and carries the events; once the projection runs, a retry with
	// the same Command-Id is a duplicate that waits for it.
	lock, err := e.db.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(context.Background(), fmt.Sprintf(`LOCK TABLE %q.bank_accounts IN ACCESS EXCLUSIVE MODE`, e.schema)); err != nil {
		t.Fatal(err)
	}
	r = e.cli(bin, "DepositMoney", `{"account_number":"C1","amount":7}`, "Command-Id:strong-1", "Consistency:strong", "Timeout:2s")
	_ = lock.Rollback(context.Background())
	want(t, "strong deposit with the projection held up", r, "consistency_timeout", "", "")
	if len(r.Events) != 1 || r.Events[0].Type != "MoneyDeposited" {
		t.Fatalf("consistency_timeout without the stored events: %+v", r)
	}
	r = e.cli(bin, "DepositMoney", `{"account_number":"C1","amount":7}`, "Command-Id:strong-1", "Consistency:strong", "Timeout:10s")
	if r.code() != "" || !r.Duplicate {
		t.Fatalf("retry of strong-1: %+v %+v", r, r.Error)
	}
}
