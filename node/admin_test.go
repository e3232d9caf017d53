package node_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
	"github.com/ringleader-go/ringleader/internal/testport"
	"github.com/ringleader-go/ringleader/node"
	"github.com/ringleader-go/ringleader/transport/natstest"
)

// startAdminNode starts a gossip-less node with its admin listener on a free port and
// returns it (stopped when the test ends).
func startAdminNode(t *testing.T, extra ...string) *node.Node {
	t.Helper()
	natstest.Connect(t) // fail or skip early when NATS is missing
	schema := pgtest.NewSchema(t)
	args := append([]string{"--node-id=admin1", "--nats=" + natstest.URL(), "--prefix=" + natstest.Prefix(t), "--dsn=" + pgtest.NodeDSN(),
		"--schema=" + schema, "--cluster=none", fmt.Sprintf("--admin-addr=127.0.0.1:%d", testport.Free(t))}, extra...)
	n := startFromFlags(t, args...)
	t.Cleanup(func() { _ = n.Shutdown(context.Background()) })
	return n
}

// TestAdminTokenRequired: with --admin-token set, an admin request without the token
// or with a wrong one is answered 401; with it, 200. /healthz stays open for probes,
// and the dashboard's ?token= sets a cookie that authorises the page's requests.
func TestAdminTokenRequired(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL and NATS skipped in -short mode")
	}
	n := startAdminNode(t, "--admin-token=s3cret-token")
	base := "http://" + n.AdminAddr()
	get := func(client *http.Client, method, path, token string) int {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	plain := &http.Client{Timeout: 5 * time.Second}
	for _, path := range []string{"/", "/cluster", "/handlers", "/metrics", "/stats", "/overview", "/streams/counter-C1", "/streams/counter-C1/commands/c-1"} {
		if code := get(plain, "GET", path, ""); code != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: %d, want 401", path, code)
		}
		if code := get(plain, "GET", path, "wrong-token"); code != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong token: %d, want 401", path, code)
		}
		if code := get(plain, "GET", path, "s3cret-token"); code != http.StatusOK {
			t.Errorf("GET %s with the token: %d, want 200", path, code)
		}
	}
	if code := get(plain, "POST", "/handlers/testapp_counters/reset", ""); code != http.StatusUnauthorized {
		t.Errorf("POST reset without a token: %d, want 401", code)
	}
	if code := get(plain, "GET", "/healthz", ""); code != http.StatusOK {
		t.Errorf("GET /healthz without a token: %d, want 200 (probes stay open)", code)
	}

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Timeout: 5 * time.Second, Jar: jar}
	if code := get(browser, "GET", "/?token=wrong", ""); code != http.StatusUnauthorized {
		t.Errorf("dashboard with a wrong ?token=: %d, want 401", code)
	}
	resp, err := browser.Get(base + "/?token=s3cret-token")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Ringleader") {
		t.Fatalf("dashboard with ?token=: %d %.80q", resp.StatusCode, body)
	}
	if code := get(browser, "GET", "/cluster", ""); code != http.StatusOK {
		t.Errorf("GET /cluster with the dashboard's cookie: %d, want 200", code)
	}
}
