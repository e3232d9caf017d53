// Package nodebin builds the node binary (cmd/node) for the black-box suites
// (test/e2e, test/chaos, test/browser, cmd/rl's tests), once per test binary and
// flavour, and runs node processes for them (Start). The flavours are a normal build
// with or without the race detector (Build) and the chaos suite's broken build
// (BuildUnsafe), compiled with the ringleader_unsafe tag so that appends skip the
// store's expected-version check. BuildAt builds cmd/node as it was at an earlier
// commit, for the chaos suite's mixed-version upgrade scenario.
package nodebin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// build caches one flavour's build for the life of the test binary.
type build struct {
	once sync.Once
	path string
	err  error
}

// The cached builds, one per flavour.
var (
	plainBuild, raceBuild, unsafeBuild build
)

// Build returns the path of a freshly built cmd/node, compiled with the race
// detector when race is set, failing t if the build fails.
func Build(t testing.TB, race bool) string {
	t.Helper()
	if race {
		return raceBuild.get(t, "-race")
	}
	return plainBuild.get(t)
}

// BuildUnsafe returns the path of a freshly built cmd/node compiled with the
// ringleader_unsafe tag (no race detector), failing t if the build fails. Its nodes
// append without checking the expected version and corrupt streams when two of them
// own one aggregate: only the chaos suite's broken-build check may run it.
func BuildUnsafe(t testing.TB) string {
	t.Helper()
	return unsafeBuild.get(t, "-tags", "ringleader_unsafe")
}

// get builds cmd/node with the extra go build flags once and returns its path,
// failing t if the build failed.
func (b *build) get(t testing.TB, flags ...string) string {
	t.Helper()
	b.once.Do(func() {
		_, here, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(here), "..", "..")
		dir, err := os.MkdirTemp("", "ringleader-node-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, "node")
		args := append([]string{"build", "-o", b.path}, flags...)
		cmd := exec.Command("go", append(args, "./cmd/node")...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}
