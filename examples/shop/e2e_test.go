package shop_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
	"github.com/ringleader-go/ringleader/transport"
	"github.com/ringleader-go/ringleader/transport/natstest"
)

// TestShopEndToEnd runs the shop as three node processes built from cmd/shop,
// joined by gossip, and drives them over NATS only, as a client in any language
// would; the read model is checked in PostgreSQL.
func TestShopEndToEnd(t *testing.T) {
	nc := natstest.Connect(t)
	schema := pgtest.NewSchema(t)
	bin := filepath.Join(t.TempDir(), "shop")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/shop").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/shop: %v\n%s", err, out)
	}
	prefix := natstest.Prefix(t)
	ports := freePorts(t, 6)
	var admins []string
	for i := range 3 {
		admin := fmt.Sprintf("127.0.0.1:%d", ports[3+i])
		admins = append(admins, admin)
		startProcess(t, fmt.Sprintf("n%d", i+1), bin, "run",
			fmt.Sprintf("--node-id=n%d", i+1), "--nats="+natstest.URL(), "--prefix="+prefix,
			"--dsn="+pgtest.NodeDSN(), "--schema="+schema,
			fmt.Sprintf("--gossip-addr=127.0.0.1:%d", ports[i]), fmt.Sprintf("--seeds=127.0.0.1:%d", ports[0]),
			"--admin-addr="+admin, "--reservation-timeout=1m")
	}
	waitFor(t, 60*time.Second, func() error {
		for _, a := range admins {
			if n, err := members(a); err != nil || n != 3 {
				return fmt.Errorf("node at %s sees %d members (%v), want 3", a, n, err)
			}
		}
		return nil
	})

	client := transport.NewClient(nc, transport.WithPrefix(prefix))
	send := func(t *testing.T, commandType string, command any) string {
		t.Helper()
		reply, err := client.Send(context.Background(), commandType, command, transport.WithConsistency("strong"))
		if err != nil || !reply.OK {
			t.Fatalf("%s: %+v, %v", commandType, reply, err)
		}
		return reply.Node
	}
	db := pgtest.Connect(t)
	if _, err := db.Exec(context.Background(), "SET search_path TO "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	nodes := placeOrders(t, send, db)
	if len(nodes) < 2 {
		t.Errorf("every command ran on %v: the nodes did not share the aggregates", nodes)
	}

	// Bad input over the wire gets a clear answer.
	reply, err := client.Send(context.Background(), "PlaceOrder", map[string]any{"order_id": "o9"})
	if err != nil || reply.Code() != "invalid" || !strings.Contains(reply.Error.Message, "at least one line") {
		t.Errorf("an order without lines: %+v, %v", reply, err)
	}
}

// members asks a node's admin listener how many members it sees.
func members(admin string) (int, error) {
	resp, err := http.Get("http://" + admin + "/cluster")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var view struct {
		Members []json.RawMessage `json:"members"`
	}
	err = json.NewDecoder(resp.Body).Decode(&view)
	return len(view.Members), err
}

// startProcess runs a node process until the test ends (SIGTERM, then SIGKILL
// after 15 s), printing its output if the test failed.
func startProcess(t *testing.T, name, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var mu sync.Mutex
	var out strings.Builder
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			mu.Lock()
			t.Logf("---- %s ----\n%s", name, out.String())
			mu.Unlock()
		}
	})
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	out := make([]int, n)
	for i := range out {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		out[i] = l.Addr().(*net.TCPAddr).Port
	}
	return out
}
