// Package readme runs what README.md tells a new user to do, so that the README
// cannot drift from the code. TestYourOwnDomainWalkthrough follows the "Your own
// domain" walkthrough literally: it writes the Go file the README shows and runs
// its shell blocks, in order, in one bash script in a fresh directory next to a
// link named ringleader to this repository, against the local PostgreSQL and NATS.
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
	cmd := exec.CommandContext(runCtx, "bash", "-c", script(walkthrough(t, string(readme))))
	cmd.Dir = dir
	// A prefix of its own keeps the walkthrough's nodes apart from other tests'.
	cmd.Env = append(os.Environ(), "RL_PREFIX="+natstest.Prefix(t), "RL_NATS="+natstest.URL())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("the walkthrough failed: %v\n%s", err, out.String())
	}
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
