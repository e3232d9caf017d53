// Package testport hands out loopback ports for tests that start servers
// which must keep their address across restarts (a killed node that comes
// back on the same gossip port).
//
// Asking the kernel for port 0 and closing the listener is not enough for
// that: the port goes back to the ephemeral pool, and the next "port 0"
// request — or any outgoing connection — may receive it while the node that
// owned it is down. Ports from this package come from below the ephemeral
// range, are each handed out once per process, and start at an offset
// derived from the process id so that test packages running in parallel
// walk different parts of the range.
package testport

import (
	"fmt"
	"net"
	"os"
	"sync"
)

// The range sits below Linux's default ephemeral range (32768–60999), so the
// kernel never picks these ports on its own.
const (
	low  = 20000
	high = 32000
)

var (
	mu   sync.Mutex
	next = low + (os.Getpid()*397)%(high-low)
)

// TB is the part of testing.TB this package needs.
type TB interface {
	Helper()
	Fatal(args ...any)
}

// Free returns a port on 127.0.0.1 that was free for both TCP and UDP
// (memberlist uses both) and that this process has not handed out before.
func Free(t TB) int {
	t.Helper()
	port, err := free()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func free() (int, error) {
	mu.Lock()
	defer mu.Unlock()
	for range high - low {
		port := next
		next++
		if next >= high {
			next = low
		}
		if available(port) {
			return port, nil
		}
	}
	return 0, fmt.Errorf("testport: no free port in %d-%d", low, high)
}

func available(port int) bool {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer l.Close()
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	return u.Close() == nil
}
