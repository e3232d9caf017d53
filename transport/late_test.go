package transport_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ringleader-go/ringleader/transport"
	"github.com/ringleader-go/ringleader/transport/natstest"
)

// cutProxy is a TCP proxy to NATS whose connections the test can cut: while cut,
// new connections are closed at once, so a client stays in reconnecting state and
// buffers what it publishes.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  []net.Conn
	wg     sync.WaitGroup
}

func startProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.setCut(true)
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.conns = append(p.conns, c, up)
		p.wg.Add(2)
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			_, _ = io.Copy(dst, src)
			_ = dst.Close()
			_ = src.Close()
		}
		go pipe(up, c)
		go pipe(c, up)
	}
}

func (p *cutProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.conns = nil
	}
}

// A client publishes while its connection is down; the NATS library buffers the
// request and sends it after reconnecting, long after Send gave up. With the
// Deadline header the node drops it; without, it is executed (and only Command-Id
// deduplication protects the caller who retried).
func TestLateDeliveryAfterReconnect(t *testing.T) {
	for _, withDeadline := range []bool{true, false} {
		name := "with Deadline header"
		if !withDeadline {
			name = "without Deadline header"
		}
		t.Run(name, func(t *testing.T) {
			prefix := natstest.Prefix(t)
			n := startNode(t, prefix, "n1", owns("n1"))
			u, err := url.Parse(natstest.URL())
			if err != nil {
				t.Fatal(err)
			}
			proxy := startProxy(t, u.Host)
			nc, err := nats.Connect("nats://"+proxy.ln.Addr().String(),
				nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond), nats.ReconnectJitter(0, 0))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			c := transport.NewClient(nc, transport.WithPrefix(prefix), transport.WithDeadlineHeader(withDeadline))
			if r, err := c.Send(context.Background(), "Warmup", map[string]int{}); err != nil || !r.OK {
				t.Fatalf("warm-up: %+v %v", r, err)
			}

			proxy.setCut(true)
			waitFor(t, 5*time.Second, func() error {
				if nc.Status() != nats.RECONNECTING {
					return errNotYet
				}
				return nil
			})
			_, err = c.Send(context.Background(), "Late", map[string]int{}, transport.WithTimeout(200*time.Millisecond))
			if !errors.Is(err, transport.ErrTimeout) {
				t.Fatalf("send while disconnected: %v, want ErrTimeout", err)
			}
			proxy.setCut(false)
			waitFor(t, 5*time.Second, func() error {
				done, _ := n.obs.snapshot()
				if !slices.ContainsFunc(done, func(d string) bool { return len(d) > 5 && d[:5] == "Late/" }) {
					return errNotYet
				}
				return nil
			})
			done, _ := n.obs.snapshot()
			executed := slices.ContainsFunc(n.exec.Calls(), func(r transport.Request) bool { return r.CommandType == "Late" })
			if withDeadline {
				if executed || !slices.Contains(done, "Late/timeout/false") {
					t.Fatalf("late request executed=%v, observed %v; want dropped as timeout", executed, done)
				}
			} else if !executed {
				t.Fatalf("without a Deadline header the node cannot tell; observed %v", done)
			}
		})
	}
}
