package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader/admin"
	"github.com/ringleader-go/ringleader/config"
	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
	"github.com/ringleader-go/ringleader/examples/bank"
	"github.com/ringleader-go/ringleader/internal/testport"
	"github.com/ringleader-go/ringleader/internal/testwait"
	"github.com/ringleader-go/ringleader/node"
	"github.com/ringleader-go/ringleader/test/nodebin"
	"github.com/ringleader-go/ringleader/transport/natstest"
)

// world is one test's node: its schema, NATS prefix and admin address.
type world struct {
	schema, prefix, admin, token string
}

// startNode starts an in-process gossip-less node (real PostgreSQL, real NATS) on
// schema, with an admin token, stopped when the test ends.
func startNode(t *testing.T, schema string) world {
	t.Helper()
	natstest.Connect(t) // fail (CI) or skip early when NATS is missing
	w := world{schema: schema, prefix: natstest.Prefix(t), admin: fmt.Sprintf("127.0.0.1:%d", testport.Free(t)), token: "rl-test-token"}
	cfg, err := config.Load([]string{"--node-id=rl1", "--nats=" + natstest.URL(), "--prefix=" + w.prefix, "--dsn=" + pgtest.NodeDSN(),
		"--schema=" + schema, "--cluster=none", "--admin-addr=" + w.admin, "--admin-token=" + w.token}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := node.Start(ctx, node.Options{App: bank.App(), Config: cfg, Logger: zerolog.Nop(), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown(context.Background()) })
	return w
}

// startNodeProcess starts the node binary (built without the race detector, so that
// a projection replays at production speed) gossip-less on schema, with an admin
// token, and waits until it is healthy; it gets SIGTERM when the test ends.
func startNodeProcess(t *testing.T, schema string) world {
	t.Helper()
	natstest.Connect(t)
	w := world{schema: schema, prefix: natstest.Prefix(t), admin: fmt.Sprintf("127.0.0.1:%d", testport.Free(t)), token: "rl-test-token"}
	p := nodebin.Start(t, "rl1", nodebin.Build(t, false), "run", "--node-id=rl1", "--nats="+natstest.URL(), "--prefix="+w.prefix,
		"--dsn="+pgtest.NodeDSN(), "--schema="+schema, "--cluster=none", "--admin-addr="+w.admin, "--admin-token="+w.token)
	testwait.For(t, 30*time.Second, func() error {
		select {
		case <-p.Done():
			t.Fatal("the node exited")
		default:
		}
		resp, err := http.Get("http://" + w.admin + "/healthz")
		if err != nil {
			return fmt.Errorf("the node did not become healthy: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("the node did not become healthy: /healthz %s", resp.Status)
		}
		return nil
	})
	return w
}

// rl runs the CLI with the world's settings in the environment.
func (w world) rl(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	env := map[string]string{"RL_NATS": natstest.URL(), "RL_PREFIX": w.prefix, "RL_ADMIN_ADDR": w.admin, "RL_ADMIN_TOKEN": w.token}
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code = run(ctx, args, func(k string) string { return env[k] }, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

func TestSendMembersRingHandlersEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL and NATS skipped in -short mode")
	}
	w := startNode(t, pgtest.NewSchema(t))

	// Flags after the positional arguments, as docs/operations.md writes them.
	out, errs, code := w.rl(t, "", "send", "OpenAccount", `{"account_number":"A1","initial_balance":100}`, "--command-id", "c-1", "--consistency", "strong")
	if code != 0 || !strings.Contains(out, `"ok": true`) || !strings.Contains(out, `"AccountOpened"`) {
		t.Fatalf("send OpenAccount: code %d\n%s%s", code, out, errs)
	}
	out, errs, code = w.rl(t, `{"account_number":"A1","amount":25}`, "send", "DepositMoney", "-")
	if code != 0 || !strings.Contains(out, `"MoneyDeposited"`) {
		t.Fatalf("send DepositMoney from stdin: code %d\n%s%s", code, out, errs)
	}
	out, _, code = w.rl(t, "", "send", "WithdrawMoney", `{"account_number":"A1","amount":1000}`)
	if code != 1 || !strings.Contains(out, `"rejected"`) || !strings.Contains(out, `"reason": "insufficient_funds"`) {
		t.Fatalf("send an overdraft: code %d (want 1) and a rejected reply with its reason\n%s", code, out)
	}
	// The wire contract's other headers, on an account of their own.
	out, errs, code = w.rl(t, "", "send", "--expected-version=no_stream", "--return-state", "--meta=tenant=acme", "OpenAccount", `{"account_number":"B1","initial_balance":7}`)
	if code != 0 || !strings.Contains(out, `"balance": 7`) || !strings.Contains(out, `"aggregate_version": 1`) {
		t.Fatalf("send with --expected-version=no_stream --return-state: code %d\n%s%s", code, out, errs)
	}
	if out, _, code = w.rl(t, "", "send", "--expected-version=0", "DepositMoney", `{"account_number":"B1","amount":1}`); code != 1 || !strings.Contains(out, `"conflict"`) {
		t.Fatalf("send with a stale --expected-version: code %d\n%s", code, out)
	}
	if _, errs, code = w.rl(t, "", "send", "--expected-version=latest", "DepositMoney", `{"account_number":"A1","amount":1}`); code != 2 || !strings.Contains(errs, "--expected-version") {
		t.Fatalf("send with a bad --expected-version: code %d %s", code, errs)
	}
	if _, errs, code = w.rl(t, "", "send", "DepositMoney", `{not json`); code != 2 || !strings.Contains(errs, "not valid JSON") {
		t.Fatalf("send bad JSON: code %d %s", code, errs)
	}

	out, errs, code = w.rl(t, "", "members")
	if code != 0 || !regexp.MustCompile(`(?m)^rl1\s+`+regexp.QuoteMeta(w.admin)+`\s+test\s+\d+`).MatchString(out) {
		t.Fatalf("members: code %d\n%s%s", code, out, errs)
	}
	out, errs, code = w.rl(t, "", "ring")
	if code != 0 || !regexp.MustCompile(`(?m)^rl1\s+(\d+)\s+0-(\d+)$`).MatchString(out) {
		t.Fatalf("ring: code %d\n%s%s", code, out, errs)
	}
	out, errs, code = w.rl(t, "", "handlers")
	if code != 0 || !regexp.MustCompile(`(?m)^bank_accounts\s+0\s+rl1\s+running\s+\d+\s+\d+`).MatchString(out) {
		t.Fatalf("handlers: code %d\n%s%s", code, out, errs)
	}
	out, errs, code = w.rl(t, "", "events", "account-A1")
	if code != 0 || !regexp.MustCompile(`(?m)^1\s+\d+\s+AccountOpened\s`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^2\s+\d+\s+MoneyDeposited\s`).MatchString(out) || !strings.Contains(out, "2 events in account-A1") {
		t.Fatalf("events: code %d\n%s%s", code, out, errs)
	}
	out, _, code = w.rl(t, "", "events", "--json", "--from=2", "account-A1")
	var e struct {
		StreamVersion int64  `json:"stream_version"`
		Type          string `json:"type"`
	}
	if code != 0 || json.Unmarshal([]byte(strings.TrimSpace(out)), &e) != nil || e.StreamVersion != 2 || e.Type != "MoneyDeposited" {
		t.Fatalf("events --json --from=2: code %d %q", code, out)
	}

	// What became of a command: its events, its recorded rejection, or nothing.
	out, errs, code = w.rl(t, "", "command", "account-A1", "c-1")
	if code != 0 || !regexp.MustCompile(`(?m)^1\s+\d+\s+AccountOpened\s`).MatchString(out) || !strings.Contains(out, "command c-1 appended 1 events to account-A1") {
		t.Fatalf("command c-1: code %d\n%s%s", code, out, errs)
	}
	if out, _, code = w.rl(t, "", "send", "--command-id=w-1", "WithdrawMoney", `{"account_number":"A1","amount":1000}`); code != 1 || !strings.Contains(out, `"rejected"`) {
		t.Fatalf("send an overdraft with a Command-Id: code %d\n%s", code, out)
	}
	out, errs, code = w.rl(t, "", "command", "account-A1", "w-1")
	if code != 0 || !regexp.MustCompile(`^command w-1 was rejected at version 2 of account-A1 \(.+\): .*insufficient`).MatchString(out) {
		t.Fatalf("command w-1: code %d\n%s%s", code, out, errs)
	}
	out, errs, code = w.rl(t, "", "command", "--json", "account-A1", "w-1")
	var cv admin.CommandView
	if code != 0 || json.Unmarshal([]byte(out), &cv) != nil || cv.Outcome == nil || cv.Outcome.Code != "rejected" || len(cv.Events) != 0 {
		t.Fatalf("command --json w-1: code %d\n%s%s", code, out, errs)
	}
	if out, _, code = w.rl(t, "", "command", "account-A1", "never"); code != 0 || !strings.HasPrefix(out, "no outcome of command never in account-A1") {
		t.Fatalf("command never: code %d\n%s", code, out)
	}
	if _, _, code = w.rl(t, "", "command", "account-A1"); code != 2 {
		t.Fatalf("command with one argument: code %d, want 2", code)
	}

	// Without the token the admin listener refuses, and rl says how to fix it.
	env := map[string]string{"RL_ADMIN_ADDR": w.admin}
	var errb bytes.Buffer
	if code := run(context.Background(), []string{"members"}, func(k string) string { return env[k] }, nil, io.Discard, &errb); code != 1 ||
		!strings.Contains(errb.String(), "401") || !strings.Contains(errb.String(), "RL_ADMIN_TOKEN") {
		t.Fatalf("members without a token: code %d %s", code, errb.String())
	}
}

// appendAccounts writes accounts × perAccount bank events (an opening, then
// deposits) straight through the store, in transactions of a whole stream each.
func appendAccounts(t *testing.T, schema string, accounts, perAccount int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	store, err := pgstore.Open(ctx, pgtest.DSN(), pgstore.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for a := range accounts {
		number := fmt.Sprintf("R%05d", a)
		events := make([]eventstore.EventData, 0, perAccount)
		data, _ := json.Marshal(bank.AccountOpened{AccountNumber: number, InitialBalance: 0})
		events = append(events, eventstore.EventData{Type: "AccountOpened", Data: data, Metadata: map[string]string{eventstore.MetaCommandID: "open-" + number}})
		for i := 1; i < perAccount; i++ {
			data, _ := json.Marshal(bank.MoneyDeposited{AccountNumber: number, Amount: 1, Balance: int64(i)})
			events = append(events, eventstore.EventData{Type: "MoneyDeposited", Data: data, Metadata: map[string]string{eventstore.MetaCommandID: "dep-" + number + "-" + strconv.Itoa(i)}})
		}
		if _, err := store.Append(ctx, bank.AccountStreamPrefix+number, eventstore.NoStream, events); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReplayShowsProgress: `rl replay bank_accounts` against a node process on a
// 100k-event store resets
// the projection and prints progress lines whose percentage rises to 100% with an
// ETA, and the rebuilt projection holds every account's balance.
func TestReplayShowsProgress(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL and NATS skipped in -short mode")
	}
	const accounts, perAccount = 100, 1000
	schema := pgtest.NewSchema(t)
	began := time.Now()
	appendAccounts(t, schema, accounts, perAccount)
	t.Logf("appended %d events in %s", accounts*perAccount, time.Since(began).Round(time.Millisecond))
	w := startNodeProcess(t, schema)

	// Let the projection's first catch-up finish, so that the replay is the job measured.
	waitLag0 := func() {
		testwait.For(t, 90*time.Second, func() error {
			out, errs, code := w.rl(t, "", "handlers")
			if code != 0 {
				t.Fatalf("handlers: %d %s", code, errs)
			}
			if regexp.MustCompile(`(?m)^bank_accounts\s+\d+\s+\S+\s+\S+\s+\d+\s+[1-9]`).MatchString(out) {
				return fmt.Errorf("bank_accounts did not catch up:\n%s", out)
			}
			return nil
		})
	}
	waitLag0()
	t.Logf("first catch-up done %s after the start", time.Since(began).Round(time.Millisecond))

	began = time.Now()
	out, errs, code := w.rl(t, "", "replay", "--interval=250ms", "bank_accounts")
	t.Logf("rl replay bank_accounts (%s):\n%s", time.Since(began).Round(time.Millisecond), out)
	if code != 0 {
		t.Fatalf("replay: code %d %s", code, errs)
	}
	line := regexp.MustCompile(`(?m)^\[[#.]{30}\]\s+(\d+\.\d)%  lag (\d+) events  ETA (\S+)$`)
	matches := line.FindAllStringSubmatch(out, -1)
	if len(matches) < 3 {
		t.Fatalf("want at least 3 progress lines, got %d", len(matches))
	}
	last := -1.0
	etas, partial := 0, 0
	for _, m := range matches {
		pct, _ := strconv.ParseFloat(m[1], 64)
		if pct < last {
			t.Errorf("progress went back from %.1f%% to %.1f%%", last, pct)
		}
		last = pct
		if pct > 0 && pct < 100 {
			partial++
		}
		if m[3] != "?" {
			if _, err := time.ParseDuration(m[3]); err != nil {
				t.Errorf("ETA %q is not a duration", m[3])
			}
			etas++
		}
	}
	if final := matches[len(matches)-1]; final[1] != "100.0" || final[2] != "0" {
		t.Errorf("last progress line %q, want 100.0%% and lag 0", final[0])
	}
	if partial == 0 || etas == 0 {
		t.Errorf("want progress lines between 0%% and 100%% (%d) with an ETA (%d)", partial, etas)
	}
	if !strings.Contains(out, "bank_accounts replayed in") {
		t.Error("no closing line")
	}

	// The rebuilt projection has every account at its final balance.
	db := pgtest.Connect(t)
	var n int
	var sum int64
	q := fmt.Sprintf(`SELECT count(*), coalesce(sum(balance), 0)::bigint FROM %q.bank_accounts`, schema)
	if err := db.QueryRow(context.Background(), q).Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	if n != accounts || sum != int64(accounts*(perAccount-1)) {
		t.Fatalf("bank_accounts after the replay: %d accounts, balance %d; want %d, %d", n, sum, accounts, accounts*(perAccount-1))
	}
}

func TestProgressLine(t *testing.T) {
	var p progress
	p.observe(400, time.Second)
	if got := p.line(); !strings.Contains(got, "  0.0%") || !strings.Contains(got, "ETA ?") {
		t.Errorf("start: %q", got)
	}
	p.observe(100, 3*time.Second)
	if got := p.line(); !strings.HasPrefix(got, "[######################........]  75.0%  lag 100 events  ETA 1s") {
		t.Errorf("75%%: %q", got)
	}
	p.observe(0, 4*time.Second)
	if got := p.line(); !strings.Contains(got, "100.0%") || !strings.Contains(got, "ETA 0s") {
		t.Errorf("end: %q", got)
	}
	if got := ranges([]string{"a", "a", "b", "a", "b", "b", "a"}, "a"); got != "0-1,3,6" {
		t.Errorf("ranges: %q", got)
	}
}

// TestFlagsAnywhere: flags go before, between or after the positional arguments, and
// a usage error names the argument it did not expect.
func TestFlagsAnywhere(t *testing.T) {
	cases := []struct {
		args     []string
		wantID   string
		wantPos  []string
		wantErr  string
		min, max int
	}{
		{[]string{"Open", `{"a":1}`, "--command-id", "c-1"}, "c-1", []string{"Open", `{"a":1}`}, "", 1, 2},
		{[]string{"--command-id=c-2", "Open"}, "c-2", []string{"Open"}, "", 1, 2},
		{[]string{"Open", "--command-id", "c-3", "-"}, "c-3", []string{"Open", "-"}, "", 1, 2},
		{[]string{"Open", "--", "--not-a-flag"}, "", []string{"Open", "--not-a-flag"}, "", 1, 2},
		{[]string{"Open", "{}", "extra", "--command-id", "c-4"}, "", nil, `unexpected argument "extra"`, 1, 2},
		{[]string{"--command-id", "c-5"}, "", nil, "missing argument", 1, 2},
	}
	for _, c := range cases {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		id := fs.String("command-id", "", "")
		pos, err := parseArgs(fs, c.args, c.min, c.max, "t <a> [b]")
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) || !errors.Is(err, errUsage) {
				t.Errorf("%q: err %v, want a usage error with %q", c.args, err, c.wantErr)
			}
			continue
		}
		if err != nil || *id != c.wantID || !slices.Equal(pos, c.wantPos) {
			t.Errorf("%q: positional %q, command id %q, err %v; want %q, %q", c.args, pos, *id, err, c.wantPos, c.wantID)
		}
	}
}
