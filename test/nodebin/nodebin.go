// Package nodebin builds the node binary (cmd/node) for the black-box suites
// (test/e2e, test/chaos, test/browser, cmd/rl's tests), once per test binary and
// flavour, and runs node processes for them (Start).
package nodebin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// builds caches one build per flavour (with or without the race detector) for the
// life of the test binary.
type build struct {
	once sync.Once
	path string
	err  error
}

var builds [2]build // index 1: -race

// Build returns the path of a freshly built cmd/node, compiled with the race
// detector when race is set, failing t if the build fails.
func Build(t testing.TB, race bool) string {
	t.Helper()
	b := &builds[0]
	if race {
		b = &builds[1]
	}
	b.once.Do(func() {
		_, here, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(here), "..", "..")
		dir, err := os.MkdirTemp("", "ringleader-node-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, "node")
		args := []string{"build", "-o", b.path}
		if race {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./cmd/node")...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build ./cmd/node: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}
