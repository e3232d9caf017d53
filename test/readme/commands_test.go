package readme

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
	"github.com/ringleader-go/ringleader/internal/syncbuf"
	"github.com/ringleader-go/ringleader/internal/testport"
	"github.com/ringleader-go/ringleader/internal/testwait"
	"github.com/ringleader-go/ringleader/test/nodebin"
	"github.com/ringleader-go/ringleader/transport/natstest"
)

// TestEveryShellBlockIsTested: every shell block of README.md and docs/ is run by a
// test of this package, or its marker says why it cannot run here.
func TestEveryShellBlockIsTested(t *testing.T) {
	blocks, errs := shellBlocks(repoRoot(t))
	for _, err := range errs {
		t.Error(err)
	}
	for _, b := range blocks {
		if b.kind == kindSkip {
			t.Logf("%s: not run (%s)", b.where(), strings.Join(b.commandLines(), " | "))
		}
		for _, l := range b.commandLines() {
			if why := b.skipped(l); why != "" {
				t.Logf("%s: %q not run: %s", b.where(), l, why)
			}
		}
	}
	if len(blocks) < 8 {
		t.Fatalf("found only %d shell blocks; the fence pattern no longer matches the docs", len(blocks))
	}
}

// withPrefix points a documented subject (rl.…) at the test's own prefix, the one
// change the test makes to a documented line: it keeps the test apart from others
// on the shared NATS server.
func withPrefix(line string) string {
	return strings.ReplaceAll(line, " rl.", ` "$RL_PREFIX".`)
}

// comment is the line's trailing "# …" comment, or "".
func comment(line string) string {
	if i := strings.LastIndex(line, " # "); i >= 0 {
		return strings.TrimSpace(line[i+3:])
	}
	return ""
}

var quoted = regexp.MustCompile(`^"([a-z_]+)"`)

// checkReply checks the output of a `nats req` line: a wire reply of contract 1,
// with the code its comment names first in quotes ("rejected", …), or ok.
func checkReply(line, output string) error {
	// The reply is the line the CLI prints after "Received"; in the walkthrough the
	// nodes' JSON logs share the output, so take the first line that is a reply.
	var body string
	for _, l := range strings.Split(output, "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, `{"ok":`) {
			body = l
			break
		}
	}
	var r struct {
		OK       bool `json:"ok"`
		Contract int  `json:"contract"`
		Error    *struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil || r.Contract != 1 {
		return fmt.Errorf("no wire reply of contract 1 in the output (%v)", err)
	}
	want := ""
	if m := quoted.FindStringSubmatch(comment(line)); m != nil {
		want = m[1]
	}
	got := ""
	if !r.OK && r.Error != nil {
		got = r.Error.Code
	}
	if got != want {
		return fmt.Errorf("answered %q, the README says %q", got, want)
	}
	return nil
}

// shapes are what the output of a documented command looks like, by how the line
// starts (after any `echo … |`).
var shapes = []struct {
	prefix string
	shape  *regexp.Regexp
}{
	{"rl send", regexp.MustCompile(`"ok": true`)},
	{"rl members", regexp.MustCompile(`(?m)^MEMBER\s+ADMIN`)},
	{"rl ring", regexp.MustCompile(`(?m)^\S+\s+\d+\s+0-\d+`)},
	{"rl handlers", regexp.MustCompile(`(?m)^bank_accounts\s+0\s`)},
	{"rl replay", regexp.MustCompile(`replayed in`)},
	{"rl events", regexp.MustCompile(`\d+ events in \S+`)},
	{"rl command", regexp.MustCompile(`command \S+`)},
}

// checkShape checks a command line's output against its shape, if it has one.
func checkShape(line, output string) error {
	if strings.HasPrefix(line, "nats req") {
		return checkReply(line, output)
	}
	cmd := line
	if _, after, ok := strings.Cut(line, "| "); ok && strings.HasPrefix(line, "echo ") {
		cmd = after
	}
	for _, s := range shapes {
		if strings.HasPrefix(cmd, s.prefix) && !s.shape.MatchString(output) {
			return fmt.Errorf("the output does not match %s", s.shape)
		}
	}
	return nil
}

// TestBankNodeBlocks runs the bank-node blocks line by line against a node of the
// reference binary, as an operator would after `go build ./cmd/rl`: each line must
// exit 0 with output of its shape.
func TestBankNodeBlocks(t *testing.T) {
	blocks, errs := shellBlocks(repoRoot(t))
	if len(errs) > 0 {
		t.Fatal(errs[0])
	}
	blocks = ofKind(blocks, kindBankNode)
	if len(blocks) == 0 {
		t.Fatal("no bank-node blocks: the docs' rl and nats examples are not tested")
	}
	natsDir := filepath.Dir(natstest.CLI(t))
	natstest.Connect(t)
	bin := t.TempDir()
	node := nodebin.Build(t, false)
	if err := os.Symlink(node, filepath.Join(bin, "node")); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "rl"), "./cmd/rl")
	build.Dir = repoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/rl: %v\n%s", err, out)
	}
	prefix := natstest.Prefix(t)
	admin := fmt.Sprintf("127.0.0.1:%d", testport.Free(t))
	nodebin.Start(t, "b1", node, "run", "--node-id=b1", "--nats="+natstest.URL(), "--prefix="+prefix,
		"--dsn="+pgtest.NodeDSN(), "--schema="+pgtest.NewSchema(t), "--cluster=none", "--admin-addr="+admin)
	testwait.For(t, 30*time.Second, func() error {
		resp, err := http.Get("http://" + admin + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	})
	env := append(os.Environ(), "PATH="+bin+":"+natsDir+":"+os.Getenv("PATH"),
		"RL_NATS="+natstest.URL(), "NATS_URL="+natstest.URL(), "RL_PREFIX="+prefix, "RL_ADMIN_ADDR="+admin)
	for _, b := range blocks {
		for _, line := range b.commandLines() {
			if b.skipped(line) != "" {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			cmd := exec.CommandContext(ctx, "bash", "-c", withPrefix(line))
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			cancel()
			if err != nil {
				t.Errorf("%s: %s\nexited with %v:\n%s", b.where(), line, err, out)
				continue
			}
			if err := checkShape(line, string(out)); err != nil {
				t.Errorf("%s: %s\n%v:\n%s", b.where(), line, err, out)
			}
		}
	}
}

// TestDemoBlock runs `make demo` as the quick start says, until it says the cluster
// keeps running, and stops it with Ctrl-C.
func TestDemoBlock(t *testing.T) {
	blocks, errs := shellBlocks(repoRoot(t))
	if len(errs) > 0 {
		t.Fatal(errs[0])
	}
	var lines []string
	for _, b := range ofKind(blocks, kindDemo) {
		for _, l := range b.commandLines() {
			if b.skipped(l) == "" {
				lines = append(lines, l)
			}
		}
	}
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "make demo") {
		t.Fatalf("the demo blocks hold %q; this test runs exactly one line, make demo", lines)
	}
	pgtest.Connect(t) // the demo uses the local test database when it can
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", "exec "+lines[0])
	cmd.Dir = repoRoot(t)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var ready error
	for deadline := time.Now().Add(3 * time.Minute); !strings.Contains(out.String(), "The cluster keeps running"); {
		select {
		case err := <-done:
			done <- err
			ready = fmt.Errorf("make demo exited before the cluster ran: %v", err)
		case <-time.After(200 * time.Millisecond):
			if time.Now().After(deadline) {
				ready = errors.New("make demo did not say the cluster keeps running within 3 minutes")
			}
		}
		if ready != nil {
			break
		}
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) // Ctrl-C reaches make and the node
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		t.Errorf("make demo did not stop within 30 s of Ctrl-C")
	}
	if ready != nil {
		t.Fatalf("make demo: %v\n%s", ready, out.String())
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^node n1\s+admin http://`),
		regexp.MustCompile(`(?m)^OpenAccount\s+\S+\s+n\d\s+n\d\s+1\s+ok$`),
		regexp.MustCompile(`(?m)^WithdrawMoney\s.*rejected`),
		regexp.MustCompile(`stopping`),
	} {
		if !want.MatchString(out.String()) {
			t.Errorf("make demo's output lacks %s:\n%s", want, out.String())
		}
	}
	if bytes.Contains([]byte(out.String()), []byte("panic:")) {
		t.Errorf("make demo panicked:\n%s", out.String())
	}
}
