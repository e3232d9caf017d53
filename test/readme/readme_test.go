// Package readme runs what README.md and docs/ tell a user to do, so that they
// cannot drift from the code. Every shell block is run by one of its tests, or says
// in a marker why it cannot run here (see blocks_test.go); a block without one fails
// TestEveryShellBlockIsTested.
//
// TestYourOwnDomainWalkthrough follows the "Your own domain" walkthrough literally:
// it writes the Go file the README shows (so the README's Go compiles) and runs its
// shell blocks, in order, in one bash script in a fresh directory next to a link
// named ringleader to this repository, against the local PostgreSQL and NATS; the
// README's wire-contract lines run inside it while the to-do cluster is up.
// TestBankNodeBlocks runs the docs' rl and nats lines against a node of cmd/node,
// and TestDemoBlock runs make demo. Each command line must exit 0 with output of its
// shape; a nats line must get the code its comment names.
package readme

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
	"github.com/ringleader-go/ringleader/transport/natstest"
)

// repoRoot is the repository's root directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(here), "..", "..")
}

// step is one block of the walkthrough: a shell block, or a file to save.
type step struct {
	file string // the file a Go block is saved as; "" for a shell block
	text string
}

var (
	fence  = regexp.MustCompile("(?s)```(go|sh)\n(.*?)```")
	marker = regexp.MustCompile(`<!-- file: (\S+) -->\s*$`)
)

// walkthrough returns the steps between the walkthrough markers of readme.
func walkthrough(t *testing.T, readme string) []step {
	t.Helper()
	_, rest, ok1 := strings.Cut(readme, "<!-- walkthrough:start -->")
	section, _, ok2 := strings.Cut(rest, "<!-- walkthrough:end -->")
	if !ok1 || !ok2 {
		t.Fatal("README.md has no <!-- walkthrough:start --> … <!-- walkthrough:end --> section")
	}
	var steps []step
	for _, m := range fence.FindAllStringSubmatchIndex(section, -1) {
		lang, body := section[m[2]:m[3]], section[m[4]:m[5]]
		if lang == "sh" {
			steps = append(steps, step{text: body})
			continue
		}
		name := marker.FindStringSubmatch(strings.TrimRight(section[:m[0]], "\n"))
		if name == nil {
			t.Fatalf("a go block of the walkthrough has no <!-- file: name --> line before it:\n%.200s", body)
		}
		steps = append(steps, step{file: name[1], text: body})
	}
	return steps
}

// script turns the steps into one bash script: shell blocks as written, files saved
// with a here-document where the README says to save them.
func script(steps []step) string {
	var b strings.Builder
	b.WriteString("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n")
	for _, s := range steps {
		if s.file == "" {
			b.WriteString(s.text)
			continue
		}
		fmt.Fprintf(&b, "cat > %s <<'README_FILE_END'\n%sREADME_FILE_END\n", s.file, s.text)
	}
	return b.String()
}

func TestYourOwnDomainWalkthrough(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "psql", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			pgtest.Unavailable(t, "the README walkthrough needs "+tool+" on the PATH")
		}
	}
	natstest.Connect(t) // skips, or fails in CI, without NATS
	conn := pgtest.Connect(t)
	ctx := context.Background()
	dropSchema := func() {
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS todo CASCADE`); err != nil {
			t.Fatal(err)
		}
	}
	dropSchema()
	t.Cleanup(dropSchema)

	root := repoRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(root, filepath.Join(dir, "ringleader")); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	blocks, errs := shellBlocks(root)
	if len(errs) > 0 {
		t.Fatal(errs[0])
	}
	steps, clusterLines := withClusterLines(t, walkthrough(t, string(readme)), ofKind(blocks, kindTodoCluster))
	cmd := exec.CommandContext(runCtx, "bash", "-c", script(steps))
	cmd.Dir = dir
	// A prefix of its own keeps the walkthrough's nodes apart from other tests'.
	cmd.Env = append(os.Environ(), "RL_PREFIX="+natstest.Prefix(t), "RL_NATS="+natstest.URL(),
		"NATS_URL="+natstest.URL(), "PATH="+filepath.Dir(natstest.CLI(t))+":"+os.Getenv("PATH"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("the walkthrough failed: %v\n%s", err, out.String())
	}
	checkClusterLines(t, out.String(), clusterLines)
	for _, want := range []string{
		`"title": "write the docs"`, // AddTodo's reply carries its event
		`"type": "TodoCompleted"`,   // CompleteTodo's
		`"code": "rejected"`,        // the second CompleteTodo
		`"message": "already done"`, // … says why
		"refused, as it should be",  // and rl exited 1
		"t1 | write the docs | t",   // the projection, read after a strong command
		"MEMBER  ADMIN",             // rl members' table
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the walkthrough's output lacks %q:\n%s", want, out.String())
		}
	}
}

// clusterLine is a line of a todo-cluster block, run inside the walkthrough.
type clusterLine struct {
	where, line string
}

// withClusterLines inserts the lines of the todo-cluster blocks into the
// walkthrough's last shell block, before its last line (which stops the cluster),
// each between markers that checkClusterLines reads its exit status and output by.
func withClusterLines(t *testing.T, steps []step, blocks []block) ([]step, []clusterLine) {
	t.Helper()
	last := len(steps) - 1
	for last >= 0 && steps[last].file != "" {
		last--
	}
	if last < 0 {
		t.Fatal("the walkthrough has no shell block")
	}
	body := strings.TrimRight(steps[last].text, "\n")
	i := strings.LastIndex(body, "\n")
	if !strings.HasPrefix(body[i+1:], "kill ") {
		t.Fatalf("the walkthrough's last shell block must end by stopping the cluster (kill …); it ends %q", body[i+1:])
	}
	var lines []clusterLine
	var b strings.Builder
	for _, blk := range blocks {
		for _, l := range blk.commandLines() {
			if blk.skipped(l) != "" {
				continue
			}
			fmt.Fprintf(&b, "echo '@@LINE %d'\nset +e\n%s\necho \"@@EXIT $?\"\nset -e\n", len(lines), withPrefix(l))
			lines = append(lines, clusterLine{where: blk.where(), line: l})
		}
	}
	if len(lines) == 0 {
		t.Fatal("no todo-cluster blocks: the README's wire-contract lines are not tested")
	}
	steps = append([]step(nil), steps...)
	steps[last].text = body[:i+1] + b.String() + body[i+1:] + "\n"
	return steps, lines
}

var lineOutput = regexp.MustCompile(`(?s)@@LINE (\d+)\n(.*?)@@EXIT (\d+)`)

// checkClusterLines checks each inserted line's exit status and output.
func checkClusterLines(t *testing.T, out string, lines []clusterLine) {
	t.Helper()
	seen := map[int]bool{}
	for _, m := range lineOutput.FindAllStringSubmatch(out, -1) {
		var i int
		fmt.Sscan(m[1], &i)
		if i >= len(lines) {
			continue
		}
		seen[i] = true
		l := lines[i]
		if m[3] != "0" {
			t.Errorf("%s: %s\nexited with %s:\n%s", l.where, l.line, m[3], m[2])
			continue
		}
		if err := checkShape(l.line, m[2]); err != nil {
			t.Errorf("%s: %s\n%v:\n%s", l.where, l.line, err, m[2])
		}
	}
	for i, l := range lines {
		if !seen[i] {
			t.Errorf("%s: %s did not run", l.where, l.line)
		}
	}
}
