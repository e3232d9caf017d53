package nodebin

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// The builds of earlier commits, one per commit as the caller named it.
var (
	atMu     sync.Mutex
	atBuilds = map[string]*build{}
)

// BuildAt returns the path of cmd/node built from commit (any name git rev-parse
// understands) of this repository, for tests of mixed-version clusters, failing t
// if it does not build. A clone without the commit (a shallow one: git fetch
// --unshallow) skips t, or fails it when CI is set, as a missing service does. The commit's tree is exported with git archive into a temporary directory
// (the working tree, index and HEAD are not touched) and built there with its own
// go.mod and go.sum, the Go module proxy serving dependencies the module cache lacks.
// The binary reports the commit's hash, 12 digits, as its version (node.version, as make
// stamps it; the nodes gossip it, and /cluster lists it per member), so a test can
// tell which members still run it.
//
// The binary is kept in the user's cache directory under the full commit hash and
// the Go version, so only the first run on a machine pays for the build (about 10 s
// with a warm module cache); within one test binary it is built at most once.
func BuildAt(t testing.TB, commit string) string {
	t.Helper()
	atMu.Lock()
	b := atBuilds[commit]
	if b == nil {
		b = &build{}
		atBuilds[commit] = b
	}
	atMu.Unlock()
	b.once.Do(func() { b.path, b.err = buildAt(commit) })
	switch {
	case errors.Is(b.err, errCommitMissing) && os.Getenv("CI") == "":
		t.Skipf("%v (set CI=true to make this a failure)", b.err)
	case b.err != nil:
		t.Fatal(b.err)
	}
	return b.path
}

// errCommitMissing is buildAt's error when the clone lacks the commit.
var errCommitMissing = errors.New("commit not in this clone")

// buildAt does BuildAt's work: resolve commit, reuse a cached binary, or export the
// tree and build it into the cache.
func buildAt(commit string) (string, error) {
	_, here, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(here), "..", "..")
	full, err := output(root, "git", "rev-parse", "--verify", "--quiet", commit+"^{commit}")
	if err != nil {
		return "", fmt.Errorf("nodebin: %w: %s (a shallow clone lacks it: git fetch --unshallow): %v", errCommitMissing, commit, err)
	}
	goVersion, err := output(root, "go", "env", "GOVERSION")
	if err != nil {
		return "", fmt.Errorf("nodebin: %v", err)
	}
	short := full[:min(12, len(full))]
	cache := cacheDir()
	bin := filepath.Join(cache, full+"-"+goVersion, "node")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return bin, nil
	}

	src, err := os.MkdirTemp("", "ringleader-src-"+short+"-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(src)
	if err := export(root, full, src); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	// Built beside its final name and renamed: a concurrent test binary building the
	// same commit never runs a half-written file.
	tmp, err := os.CreateTemp(filepath.Dir(bin), "node-*.tmp")
	if err != nil {
		return "", err
	}
	_ = tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.Command("go", "build", "-o", tmp.Name(),
		"-ldflags", "-X github.com/ringleader-go/ringleader/node.version="+short, "./cmd/node")
	cmd.Dir = src
	// The exported tree is a module of its own: no workspace of the caller applies.
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("nodebin: build %s: %s: %v\n%s", short, strings.Join(cmd.Args, " "), err, out)
	}
	if err := os.Rename(tmp.Name(), bin); err != nil {
		return "", err
	}
	return bin, nil
}

// cacheDir is where BuildAt keeps binaries: the user's cache directory, or the
// temporary directory when there is none.
func cacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "ringleader-nodebin")
	}
	return filepath.Join(os.TempDir(), "ringleader-nodebin")
}

// export writes commit's tree into dir: git archive piped into tar.
func export(root, commit, dir string) error {
	archive := exec.Command("git", "archive", "--format=tar", commit)
	archive.Dir = root
	untar := exec.Command("tar", "-x", "-C", dir)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return err
	}
	var archiveErr, untarErr strings.Builder
	archive.Stderr = &archiveErr
	untar.Stdin, untar.Stderr = pipe, &untarErr
	if err := archive.Start(); err != nil {
		return fmt.Errorf("nodebin: git archive: %v", err)
	}
	if err := untar.Run(); err != nil {
		_, _ = io.Copy(io.Discard, pipe)
		_ = archive.Wait()
		return fmt.Errorf("nodebin: tar -x of %s: %v: %s", commit, err, untarErr.String())
	}
	if err := archive.Wait(); err != nil {
		return fmt.Errorf("nodebin: git archive %s: %v: %s", commit, err, archiveErr.String())
	}
	return nil
}

// output runs name with args in dir and returns its trimmed standard output.
func output(dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return "", fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(ee.Stderr)))
		}
		return "", fmt.Errorf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}
