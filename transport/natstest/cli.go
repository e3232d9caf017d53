package natstest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// CLIVersion is the nats CLI the tests that act as an outside client drive
// (.ci/services installs it).
const CLIVersion = "v0.5.0"

// CLI returns the path of the nats CLI CLIVersion: $NATS_CLI, then
// $(go env GOPATH)/bin/nats, then nats on the PATH. Without it the test fails if CI
// is set and is skipped otherwise, as for a missing server.
func CLI(t testing.TB) string {
	t.Helper()
	candidates := []string{os.Getenv("NATS_CLI")}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		candidates = append(candidates, filepath.Join(strings.TrimSpace(string(out)), "bin", "nats"))
	}
	if p, err := exec.LookPath("nats"); err == nil {
		candidates = append(candidates, p)
	}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if out, err := exec.Command(c, "--version").Output(); err == nil && strings.TrimSpace(string(out)) == CLIVersion {
			return c
		}
	}
	Unavailable(t, "the nats CLI "+CLIVersion+" is not installed (go install github.com/nats-io/natscli/nats@"+CLIVersion+", or bash .ci/services)")
	return ""
}
