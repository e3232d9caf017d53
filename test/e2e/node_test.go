package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
)

// TestAdminEndpoints: /healthz answers ok and /metrics counts commands by outcome.
func TestAdminEndpoints(t *testing.T) {
	e := newEnv(t)
	p := e.start("n1")
	e.waitConverged("n1")
	e.mustOK("OpenAccount", map[string]any{"account_number": "M1", "initial_balance": 1}, "")
	_, _ = e.send("WithdrawMoney", map[string]any{"account_number": "M1", "amount": 5}, "", 5*time.Second)

	resp, err := http.Get("http://" + p.admin + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"ok": true`)) {
		t.Errorf("/healthz: %d %s", resp.StatusCode, body)
	}
	resp, err = http.Get("http://" + p.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`ringleader_commands_total{code="ok",type="OpenAccount"} 1`,
		`ringleader_commands_total{code="rejected",type="WithdrawMoney"} 1`,
		`ringleader_live_aggregates 1`,
		`ringleader_cluster_members 1`,
		`ringleader_pg_pool_connections{state="max"}`,
		`ringleader_pg_pool_connections{state="acquired"}`,
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	resp, err = http.Get("http://" + p.admin + "/")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("dashboard: %v %v", resp, err)
	}
}

// TestNodeRefusesBadConfigurationClearly: a missing database and an unknown flag end
// the process with a message that says what is wrong, not a panic.
func TestNodeRefusesBadConfigurationClearly(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unreachable database", []string{"run", "--dsn=postgres://nobody@127.0.0.1:1/none?connect_timeout=2", "--cluster=none", "--admin-addr=off"}, "cannot reach PostgreSQL at 127.0.0.1:1"},
		{"unknown flag", []string{"run", "--dsn=x", "--colour=blue"}, "flag provided but not defined: -colour"},
		{"missing DSN", []string{"run"}, "no event store DSN"},
		{"unknown subcommand", []string{"launch"}, `unknown command "launch"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, nodeBinary(t), c.args...).CombinedOutput()
			if err == nil {
				t.Fatalf("node %v exited 0:\n%s", c.args, out)
			}
			if strings.Contains(string(out), "panic:") || !strings.Contains(string(out), c.want) {
				t.Fatalf("node %v said:\n%s\nwant a clear message containing %q", c.args, out, c.want)
			}
		})
	}
}

// TestDemo runs `node demo --once` both ways: with PostgreSQL (node processes) and,
// when PostgreSQL is unreachable, with the in-process in-memory fallback.
func TestDemo(t *testing.T) {
	pgtest.Connect(t) // fail (CI) or skip when PostgreSQL is missing
	for _, c := range []struct {
		name, dsn, want string
	}{
		{"postgres", pgtest.DSN(), "store     PostgreSQL"},
		{"in-memory fallback", "postgres://nobody@127.0.0.1:1/none?connect_timeout=1", "using an in-memory event store"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			schema := pgtest.NewSchema(t)
			args := []string{"demo", "--once", "--dsn=" + c.dsn, "--schema=" + schema,
				"--nats-port=0", "--gossip-port=0", "--admin-port=0"}
			out, err := exec.CommandContext(ctx, nodeBinary(t), args...).CombinedOutput()
			text := string(out)
			if err != nil {
				t.Fatalf("demo failed: %v\n%s", err, text)
			}
			for _, want := range []string{c.want, "NATS      nats://127.0.0.1:", "cluster   3 nodes agree on the ring",
				"admin http://127.0.0.1:", "rejected (insufficient_funds): insufficient funds", "duplicate: not applied again", "unknown_command"} {
				if !strings.Contains(text, want) {
					t.Errorf("demo output lacks %q:\n%s", want, text)
				}
			}
			// Every account command ran on the owner /cluster named.
			for _, line := range strings.Split(text, "\n") {
				f := strings.Fields(line)
				if len(f) >= 4 && (f[0] == "OpenAccount" || f[0] == "DepositMoney") && f[2] != f[3] {
					t.Errorf("demo line %q: owner %s but ran on %s", line, f[2], f[3])
				}
			}
		})
	}
}
