package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/admin"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
	"github.com/ringleader-go/ringleader/internal/testapp"
	"github.com/ringleader-go/ringleader/internal/testport"
	"github.com/ringleader-go/ringleader/node"
	"github.com/ringleader-go/ringleader/transport"
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
		want := http.StatusOK
		if path == "/streams/counter-C1" {
			want = http.StatusNotFound // let in, and told the stream has no events
		}
		if code := get(plain, "GET", path, "s3cret-token"); code != want {
			t.Errorf("GET %s with the token: %d, want %d", path, code, want)
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

// TestAdminEndpointsReadTheNode: the admin API (package admin) serves what the node
// provides: its health, ring, handlers, counters and store.
func TestAdminEndpointsReadTheNode(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL and NATS skipped in -short mode")
	}
	prefix := natstest.Prefix(t)
	n := startAdminNode(t, "--prefix="+prefix)
	client := transport.NewClient(natstest.Connect(t), transport.WithPrefix(prefix))
	ctx := context.Background()
	if reply, err := client.Send(ctx, "Add", testapp.Add{ID: "C1", N: 3}, transport.WithCommandID("c-1")); err != nil || !reply.OK {
		t.Fatalf("Add: %+v %v", reply, err)
	}
	if reply, err := client.Send(ctx, "Close", testapp.Close{ID: "C1"}, transport.WithCommandID("c-2")); err != nil || reply.Code() != "rejected" {
		t.Fatalf("Close: %+v %v", reply, err)
	}
	base := "http://" + n.AdminAddr()
	get := func(method, path string, out any) int {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: %d: %v", method, path, resp.StatusCode, err)
		}
		return resp.StatusCode
	}

	var h admin.HealthView
	if code := get("GET", "/healthz", &h); code != http.StatusOK || h != (admin.HealthView{Node: "admin1", OK: true, Ready: true, NATS: "connected", Store: "ok"}) {
		t.Errorf("/healthz: %d %+v", code, h)
	}
	var cv admin.ClusterView
	if code := get("GET", "/cluster?key=counter-C1", &cv); code != http.StatusOK || cv.Node != "admin1" || cv.Mode != "none" ||
		cv.Owner != "admin1" || cv.Partition == nil || len(cv.Members) != 1 || cv.Members[0].AdminAddr != n.AdminAddr() ||
		cv.Members[0].Partitions != cv.Ring.Partitions || len(cv.Ring.Owners) != cv.Ring.Partitions {
		t.Errorf("/cluster?key=: %d %+v", code, cv)
	}
	var hv admin.HandlersView
	if code := get("GET", "/handlers", &hv); code != http.StatusOK || hv.Node != "admin1" || len(hv.Partitions) == 0 ||
		hv.Partitions[0].Handler != testapp.ProjectionName || hv.Partitions[0].RingOwner != "admin1" {
		t.Errorf("/handlers: %d %+v", code, hv)
	}
	var reset struct {
		Reset bool   `json:"reset"`
		Error string `json:"error"`
	}
	if code := get("POST", "/handlers/nope/reset", &reset); code != http.StatusNotFound || reset.Reset {
		t.Errorf("reset of an unknown handler: %d %+v, want 404", code, reset)
	}
	if code := get("POST", "/handlers/"+testapp.ProjectionName+"/reset", &reset); code != http.StatusOK || !reset.Reset {
		t.Errorf("reset: %d %+v", code, reset)
	}
	var sv admin.StatsView
	if code := get("GET", "/stats", &sv); code != http.StatusOK || sv.Node != "admin1" || sv.CommandsOK != 1 || sv.CommandsFailed != 1 ||
		sv.Commands["Close"]["rejected"] != 1 || sv.LiveAggregates != 1 {
		t.Errorf("/stats: %d %+v", code, sv)
	}
	var ov admin.OverviewView
	if code := get("GET", "/overview", &ov); code != http.StatusOK || ov.Stats["admin1"].CommandsOK != 1 || len(ov.Handlers) == 0 {
		t.Errorf("/overview: %d %+v", code, ov)
	}
	var stream admin.StreamView
	if code := get("GET", "/streams/counter-C1", &stream); code != http.StatusOK || len(stream.Events) != 1 || stream.Events[0].Type != "Added" {
		t.Errorf("/streams/counter-C1: %d %+v", code, stream)
	}
	var command admin.CommandView
	if code := get("GET", "/streams/counter-C1/commands/c-2", &command); code != http.StatusOK || command.Outcome == nil ||
		command.Outcome.Code != "rejected" {
		t.Errorf("/streams/counter-C1/commands/c-2: %d %+v", code, command)
	}
}
