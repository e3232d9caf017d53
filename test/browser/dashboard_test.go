package browser

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ringleader-go/ringleader/admin"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
	"github.com/ringleader-go/ringleader/internal/testport"
	"github.com/ringleader-go/ringleader/internal/testwait"
	"github.com/ringleader-go/ringleader/test/nodebin"
	"github.com/ringleader-go/ringleader/transport"
	"github.com/ringleader-go/ringleader/transport/natstest"
)

const adminToken = "browser-test-token"

// chromium returns the browser to drive, failing (CI) or skipping the test without one.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("RL_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	natstest.Unavailable(t, "no Chromium (chromium, chromium-browser or google-chrome on PATH, or RL_CHROMIUM); .ci/services installs it")
	return ""
}

// artifactPath is where the screenshot goes.
func artifactPath(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("RL_ARTIFACTS")
	if dir == "" {
		dir = "artifacts" // test/browser/artifacts: go test runs in the package directory
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(filepath.Join(dir, "dashboard.png"))
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// startCluster starts n node processes gossiping with each other and returns their
// admin addresses and a function that stops node i (SIGTERM: a graceful leave);
// they all get SIGTERM when the test ends.
func startCluster(t *testing.T, n int, schema, prefix string) ([]string, func(i int)) {
	t.Helper()
	bin := nodebin.Build(t, false)
	var admins, gossips []string
	procs := make([]*nodebin.Process, n)
	for range n {
		admins = append(admins, fmt.Sprintf("127.0.0.1:%d", testport.Free(t)))
		gossips = append(gossips, fmt.Sprintf("127.0.0.1:%d", testport.Free(t)))
	}
	for i := range n {
		id := fmt.Sprintf("n%d", i+1)
		procs[i] = nodebin.Start(t, id, bin, "run", "--node-id="+id, "--nats="+natstest.URL(), "--prefix="+prefix,
			"--dsn="+pgtest.NodeDSN(), "--schema="+schema, "--gossip-addr="+gossips[i], "--seeds="+strings.Join(gossips, ","),
			"--admin-addr="+admins[i], "--admin-token="+adminToken, "--log-level=info")
	}
	return admins, func(i int) { procs[i].Stop() }
}

// getJSON reads an admin endpoint with the token.
func getJSON(admin, path string, out any) error {
	req, _ := http.NewRequest(http.MethodGet, "http://"+admin+path, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := (&http.Client{Timeout: 3 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s%s: %s", admin, path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// waitFor polls cond until it returns nil, failing t after limit with what it
// waited for.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() error) {
	t.Helper()
	if err := testwait.Until(limit, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// dashboardState is what the test reads out of the page's DOM.
type dashboardState struct {
	Members        []string       `json:"members"`
	PartitionCells map[string]int `json:"partitionCells"`
	Arcs           int            `json:"arcs"`
	ArcOwners      []string       `json:"arcOwners"` // by partition
	Center         string         `json:"center"`
	Commands       int            `json:"commands"`
	Handlers       int            `json:"handlers"`
	Moved          int            `json:"moved"`
	MoveLog        string         `json:"moveLog"`
	Status         string         `json:"status"`
}

const readDashboard = `(() => {
  const members = [...document.querySelectorAll('#members tr[data-member]')].map(r => r.dataset.member);
  const partitionCells = {};
  document.querySelectorAll('#members tr[data-member]').forEach(r => partitionCells[r.dataset.member] = parseInt(r.querySelector('td.partitions').textContent, 10));
  const arcOwners = [];
  const arcs = [...document.querySelectorAll('#ring-svg path.arc')];
  arcs.forEach(a => arcOwners[parseInt(a.dataset.partition, 10)] = a.dataset.owner);
  return {members, partitionCells, arcs: arcs.length, arcOwners,
    center: (document.querySelector('#ring-svg text') || {}).textContent || '',
    commands: document.querySelectorAll('#commands tr').length,
    handlers: document.querySelectorAll('#handlers tr[data-handler]').length,
    moved: document.querySelectorAll('#ring-svg path.arc.moved').length,
    moveLog: document.getElementById('moves').textContent,
    status: document.getElementById('status').textContent};
})()`

// TestDashboardShowsClusterInChromium: a 3-node cluster of real node processes; the
// dashboard of n1, opened in headless Chromium with the admin token, shows the three
// members, a ring of arcs whose owners are exactly those members (matching /cluster
// partition for partition), per-member partition counts, command rates and handler
// partitions; a full-page screenshot is saved. Then n3 leaves, and the page shows two
// members, n3's partitions moved (highlighted arcs, the moves list) and a second
// screenshot is saved.
func TestDashboardShowsClusterInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes and a browser skipped in -short mode")
	}
	browserPath := chromium(t)
	nc := natstest.Connect(t)
	schema := pgtest.NewSchema(t)
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	prefix := "browser" + hex.EncodeToString(suffix)
	admins, stop := startCluster(t, 3, schema, prefix)

	var want admin.ClusterView
	waitFor(t, 60*time.Second, "3 members on one ring", func() error {
		fps := map[string]bool{}
		for _, a := range admins {
			var v admin.ClusterView
			if err := getJSON(a, "/cluster", &v); err != nil {
				return err
			}
			if len(v.Members) != 3 {
				return fmt.Errorf("%s sees %d members", a, len(v.Members))
			}
			fps[v.Ring.Fingerprint] = true
			want = v
		}
		if len(fps) != 1 {
			return fmt.Errorf("rings differ: %v", fps)
		}
		return nil
	})

	// Some traffic, so that command rates and a rejection show.
	client := transport.NewClient(nc, transport.WithPrefix(prefix))
	for i := range 20 {
		acct := fmt.Sprintf("B%02d", i)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if r, err := client.Send(ctx, "OpenAccount", map[string]any{"account_number": acct, "initial_balance": 10}); err != nil || !r.OK {
			t.Fatalf("OpenAccount %s: %v %+v", acct, err, r.Error)
		}
		_, _ = client.Send(ctx, "WithdrawMoney", map[string]any{"account_number": acct, "amount": 100}) // rejected
		cancel()
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browserPath), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1400, 1100))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()

	// ?token= sets the dashboard's cookie and redirects to the page itself.
	if _, err := chromedp.Run(ctx, chromedp.Navigate("http://"+admins[0]+"/?token="+adminToken)); err != nil {
		t.Fatalf("open the dashboard in Chromium: %v", err)
	}
	waitFor(t, 30*time.Second, "the dashboard to show the cluster", func() error {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[dashboardState](readDashboard))
		if err == nil && len(got.Members) == 3 && got.Arcs == want.Ring.Partitions && got.Handlers > 0 && got.Commands > 0 &&
			strings.Contains(got.Status, "updated") {
			return nil
		}
		return fmt.Errorf("%v %+v", err, got)
	})
	time.Sleep(2500 * time.Millisecond) // one more refresh: rates need two readings
	got, err := chromedp.Run(ctx, chromedp.Evaluate[dashboardState](readDashboard))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("dashboard: %+v", got)

	if strings.Join(got.Members, ",") != "n1,n2,n3" {
		t.Errorf("members shown %v, want n1,n2,n3", got.Members)
	}
	if got.Center != fmt.Sprint(want.Ring.Partitions) {
		t.Errorf("ring centre says %q, want %d", got.Center, want.Ring.Partitions)
	}
	// The drawing matches the ring partition for partition.
	if len(got.ArcOwners) != len(want.Ring.Owners) {
		t.Errorf("the drawing has arcs for %d partitions, the ring %d", len(got.ArcOwners), len(want.Ring.Owners))
	}
	for p := range min(len(got.ArcOwners), len(want.Ring.Owners)) {
		if got.ArcOwners[p] != want.Ring.Owners[p] {
			t.Errorf("partition %d: drawn as %q's, owned by %q", p, got.ArcOwners[p], want.Ring.Owners[p])
		}
	}
	total := 0
	for _, m := range want.Members {
		if got.PartitionCells[m.ID] != m.Partitions {
			t.Errorf("%s: partitions column %d, /cluster %d", m.ID, got.PartitionCells[m.ID], m.Partitions)
		}
		total += got.PartitionCells[m.ID]
	}
	if total != want.Ring.Partitions {
		t.Errorf("partition columns add up to %d, want %d", total, want.Ring.Partitions)
	}
	if rejected, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById('commands').textContent.includes('rejected')`)); err != nil || !rejected {
		t.Errorf("the commands table does not show the rejections (%v)", err)
	}

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := artifactPath(t)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the dashboard (%d bytes): %s", len(png), path)

	// n3 leaves: the page redraws the ring with two owners and lists the moves.
	stop(2)
	waitFor(t, 30*time.Second, "the dashboard to show n3 leaving", func() error {
		got, err = chromedp.Run(ctx, chromedp.Evaluate[dashboardState](readDashboard))
		if err == nil && strings.Join(got.Members, ",") == "n1,n2" && !slices.Contains(got.ArcOwners, "n3") && got.Moved > 0 &&
			strings.Contains(got.MoveLog, "n3 → ") {
			return nil
		}
		return fmt.Errorf("%v %+v", err, got)
	})
	t.Logf("after n3 left: %d arcs highlighted as moved; moves: %s", got.Moved, got.MoveLog)
	if png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100)); err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	after := strings.TrimSuffix(path, ".png") + "-after-leave.png"
	if err := os.WriteFile(after, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot after n3 left: %s", after)
}
