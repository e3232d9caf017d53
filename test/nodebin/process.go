package nodebin

import (
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/internal/syncbuf"
)

// StopTimeout is how long Stop waits after SIGTERM before it sends SIGKILL.
const StopTimeout = 20 * time.Second

// Process is a node process a test started.
type Process struct {
	// Cmd is the running command.
	Cmd *exec.Cmd
	// Logs collects the process's stdout and stderr.
	Logs *syncbuf.Buffer

	done     chan struct{}
	stopOnce sync.Once
	stopped  bool // Stop's verdict: it exited within StopTimeout of SIGTERM
}

// Start runs bin with args, failing t if it cannot start. When the test ends the
// process is stopped (Stop) and, if the test failed, its output is logged under name.
func Start(t testing.TB, name, bin string, args ...string) *Process {
	t.Helper()
	p := &Process{Cmd: exec.Command(bin, args...), Logs: &syncbuf.Buffer{}, done: make(chan struct{})}
	p.Cmd.Stdout, p.Cmd.Stderr = p.Logs, p.Logs
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = p.Cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("---- log of %s ----\n%s", name, p.Logs.String())
		}
	})
	return p
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Stop sends SIGTERM (a graceful leave) and waits for the process to exit,
// sending SIGKILL after StopTimeout. It reports whether the process exited within
// StopTimeout (true if it had already exited). Later calls return the first verdict.
func (p *Process) Stop() bool {
	p.stopOnce.Do(func() {
		_ = p.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			p.stopped = true
		case <-time.After(StopTimeout):
			_ = p.Cmd.Process.Kill()
			<-p.done
		}
	})
	return p.stopped
}

// Kill sends SIGKILL (no leave, no drain) and waits for the process to exit.
func (p *Process) Kill() {
	_ = p.Cmd.Process.Kill()
	<-p.done
}
