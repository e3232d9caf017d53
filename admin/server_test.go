package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringleader-go/ringleader/admin"
	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/memstore"
	"github.com/ringleader-go/ringleader/handlers"
)

// fakeNode is an admin.Node whose answers a test sets.
type fakeNode struct {
	id          string
	health      admin.HealthView
	members     []admin.MemberView
	rows        []admin.HandlerPartitionRow
	handlersErr error
	resetErr    error

	mu       sync.Mutex
	keys     []string // the keys Cluster was asked for
	resetted []string
}

func (f *fakeNode) ID() string { return f.id }

func (f *fakeNode) Health(ctx context.Context) admin.HealthView {
	if _, ok := ctx.Deadline(); !ok {
		f.health.Store = "no deadline"
	}
	return f.health
}

func (f *fakeNode) Cluster(key string) admin.ClusterView {
	f.mu.Lock()
	f.keys = append(f.keys, key)
	f.mu.Unlock()
	v := admin.ClusterView{Node: f.id, Mode: "gossip", Members: f.members,
		Ring: admin.RingView{Fingerprint: "fp", Partitions: 2, Owners: []string{f.id, f.id}}}
	if key != "" {
		p := 1
		v.Key, v.Owner, v.Partition = key, f.id, &p
	}
	return v
}

func (f *fakeNode) Handlers(context.Context) ([]admin.HandlerPartitionRow, error) {
	return f.rows, f.handlersErr
}

func (f *fakeNode) ResetHandler(_ context.Context, name string) error {
	f.mu.Lock()
	f.resetted = append(f.resetted, name)
	f.mu.Unlock()
	return f.resetErr
}

func (f *fakeNode) Stats() admin.StatsView {
	return admin.StatsView{Node: f.id, CommandsOK: 2, Commands: map[string]map[string]int64{"Add": {"ok": 2}}}
}

func newFake(id string) *fakeNode {
	return &fakeNode{id: id, health: admin.HealthView{Node: id, OK: true, Ready: true, NATS: "connected", Store: "ok"},
		members: []admin.MemberView{{ID: id, Partitions: 2}},
		rows:    []admin.HandlerPartitionRow{{PartitionStatus: handlers.PartitionStatus{Handler: "h", Key: "h#0", State: handlers.StateRunning}, RingOwner: id}}}
}

// serve starts the admin API of node (with an empty store when store is nil) on an
// httptest server.
func serve(t *testing.T, node admin.Node, store admin.Store, token string) string {
	t.Helper()
	if store == nil {
		store = memstore.New()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "test_counter", Help: "A test counter."}))
	srv := httptest.NewServer(admin.Handler(admin.Config{Token: token, Node: node, Store: store, Metrics: reg}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// call sends a request with the token (if any) and returns the status and body.
func call(t *testing.T, method, url, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// getJSON reads url into out and returns the status.
func getJSON(t *testing.T, method, url string, out any) int {
	t.Helper()
	code, body := call(t, method, url, "")
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("%s %s: %d %s: %v", method, url, code, body, err)
	}
	return code
}

func TestHealth(t *testing.T) {
	f := newFake("n1")
	base := serve(t, f, nil, "tok")
	var h map[string]any
	if code := getJSON(t, "GET", base+"/healthz", &h); code != http.StatusOK {
		t.Fatalf("healthy: %d %v", code, h)
	}
	want := map[string]any{"node": "n1", "ok": true, "ready": true, "nats": "connected", "store": "ok"}
	if fmt.Sprint(h) != fmt.Sprint(want) {
		t.Errorf("/healthz %v, want %v", h, want)
	}
	f.health.OK, f.health.NATS = false, "disconnected"
	var v admin.HealthView
	if code := getJSON(t, "GET", base+"/healthz", &v); code != http.StatusServiceUnavailable || v.OK || v.NATS != "disconnected" {
		t.Errorf("unhealthy: %d %+v, want 503", code, v)
	}
}

func TestClusterHandlersStats(t *testing.T) {
	f := newFake("n1")
	base := serve(t, f, nil, "")

	var cv admin.ClusterView
	if code := getJSON(t, "GET", base+"/cluster?key=counter-C1", &cv); code != http.StatusOK ||
		cv.Node != "n1" || cv.Key != "counter-C1" || cv.Owner != "n1" || cv.Partition == nil || len(cv.Members) != 1 {
		t.Errorf("/cluster?key=: %d %+v", code, cv)
	}
	if f.keys[0] != "counter-C1" {
		t.Errorf("Cluster was asked for %q", f.keys)
	}

	var hv admin.HandlersView
	if code := getJSON(t, "GET", base+"/handlers", &hv); code != http.StatusOK || hv.Node != "n1" ||
		len(hv.Partitions) != 1 || hv.Partitions[0].Handler != "h" || hv.Partitions[0].RingOwner != "n1" {
		t.Errorf("/handlers: %d %+v", code, hv)
	}

	var sv admin.StatsView
	if code := getJSON(t, "GET", base+"/stats", &sv); code != http.StatusOK || sv.Node != "n1" || sv.Commands["Add"]["ok"] != 2 {
		t.Errorf("/stats: %d %+v", code, sv)
	}

	code, body := call(t, "GET", base+"/metrics", "")
	if code != http.StatusOK || !strings.Contains(string(body), "test_counter 0") {
		t.Errorf("/metrics: %d %.200s", code, body)
	}
	code, body = call(t, "GET", base+"/", "")
	if code != http.StatusOK || !strings.Contains(string(body), "Ringleader") {
		t.Errorf("dashboard: %d %.80q", code, body)
	}
}

func TestReset(t *testing.T) {
	f := newFake("n1")
	base := serve(t, f, nil, "")
	var r struct {
		Handler string `json:"handler"`
		Reset   bool   `json:"reset"`
	}
	if code := getJSON(t, "POST", base+"/handlers/proj/reset", &r); code != http.StatusOK || r.Handler != "proj" || !r.Reset {
		t.Errorf("reset: %d %+v", code, r)
	}
	if len(f.resetted) != 1 || f.resetted[0] != "proj" {
		t.Errorf("ResetHandler calls %q", f.resetted)
	}
}

// TestErrorAnswers: every error the admin API gives has the status of its kind and
// a JSON body with a code and a message: bad input 400, no token 401, nothing there
// 404, wrong method 405, store or node state unreachable 503.
func TestErrorAnswers(t *testing.T) {
	store := memstore.New()
	if _, err := store.Append(context.Background(), "s-1", eventstore.NoStream, []eventstore.EventData{{Type: "A", Data: json.RawMessage(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	f := newFake("n1")
	base := serve(t, f, store, "")
	locked := serve(t, newFake("n2"), store, "tok")
	closed := memstore.New()
	_ = closed.Close()
	down := serve(t, newFake("n3"), closed, "")

	cases := []struct {
		name, method, url string
		before            func()
		status            int
		code              string
	}{
		{"unknown path", "GET", base + "/nope", nil, 404, admin.CodeNotFound},
		{"wrong method", "PUT", base + "/cluster", nil, 405, admin.CodeMethodNotAllowed},
		{"GET a reset", "GET", base + "/handlers/proj/reset", nil, 405, admin.CodeMethodNotAllowed},
		{"no token", "GET", locked + "/cluster", nil, 401, admin.CodeUnauthorized},
		{"handlers unreadable", "GET", base + "/handlers", func() { f.handlersErr = errors.New("store down") }, 503, admin.CodeUnavailable},
		{"reset unknown handler", "POST", base + "/handlers/proj/reset", func() { f.resetErr = fmt.Errorf("%w: %q", handlers.ErrUnknownHandler, "proj") }, 404, admin.CodeNotFound},
		{"reset fails", "POST", base + "/handlers/proj/reset", func() { f.resetErr = errors.New("store down") }, 503, admin.CodeUnavailable},
		{"stream without events", "GET", base + "/streams/none", nil, 404, admin.CodeNotFound},
		{"stream id with NUL", "GET", base + "/streams/%00", nil, 400, admin.CodeInvalid},
		{"stream id too long", "GET", base + "/streams/" + strings.Repeat("x", 3000), nil, 400, admin.CodeInvalid},
		{"command of an invalid stream", "GET", base + "/streams/%00/commands/c", nil, 400, admin.CodeInvalid},
		{"from=0", "GET", base + "/streams/s-1?from=0", nil, 400, admin.CodeInvalid},
		{"from=x", "GET", base + "/streams/s-1?from=x", nil, 400, admin.CodeInvalid},
		{"limit=0", "GET", base + "/streams/s-1?limit=0", nil, 400, admin.CodeInvalid},
		{"limit=1001", "GET", base + "/streams/s-1?limit=1001", nil, 400, admin.CodeInvalid},
		{"limit=x", "GET", base + "/streams/s-1?limit=x", nil, 400, admin.CodeInvalid},
		{"store closed", "GET", down + "/streams/s-1", nil, 503, admin.CodeUnavailable},
		{"store closed, command", "GET", down + "/streams/s-1/commands/c", nil, 503, admin.CodeUnavailable},
	}
	for _, c := range cases {
		if c.before != nil {
			c.before()
		}
		var e admin.ErrorView
		status, body := call(t, c.method, c.url, "")
		if err := json.Unmarshal(body, &e); err != nil || status != c.status || e.Code != c.code || e.Message == "" {
			t.Errorf("%s: %d %.200s, want %d with code %q and a message", c.name, status, body, c.status, c.code)
		}
	}
}

// compact is raw without its indentation.
func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	_ = json.Compact(&b, raw)
	return b.String()
}

func TestStreamsAndCommands(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	meta := func(cmd string) map[string]string { return map[string]string{eventstore.MetaCommandID: cmd} }
	if _, err := store.Append(ctx, "s-1", eventstore.NoStream, []eventstore.EventData{
		{Type: "A", Data: json.RawMessage(`{"n":1}`), Metadata: meta("c-1")},
		{Type: "B", Data: json.RawMessage(`{"n":2}`), Metadata: meta("c-1")},
		{Type: "C", Data: json.RawMessage(`{"n":3}`), Metadata: meta("c-2")},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.RecordOutcome(ctx, eventstore.CommandOutcome{StreamID: "s-1", CommandID: "c-3", StreamVersion: 3,
		Code: "rejected", Message: "no"}); err != nil {
		t.Fatal(err)
	}
	base := serve(t, newFake("n1"), store, "")

	var sv admin.StreamView
	if code := getJSON(t, "GET", base+"/streams/s-1?limit=2", &sv); code != http.StatusOK || sv.Stream != "s-1" || sv.From != 1 ||
		sv.Next != 3 || len(sv.Events) != 2 || sv.Events[1].Type != "B" || sv.Events[1].StreamVersion != 2 ||
		sv.Events[0].Metadata[eventstore.MetaCommandID] != "c-1" || compact(sv.Events[0].Data) != `{"n":1}` {
		t.Errorf("first page: %d %+v", code, sv)
	}
	sv = admin.StreamView{}
	if code := getJSON(t, "GET", base+"/streams/s-1?from=3", &sv); code != http.StatusOK || sv.Next != 0 || len(sv.Events) != 1 || sv.Events[0].Type != "C" {
		t.Errorf("last page: %d %+v", code, sv)
	}
	sv = admin.StreamView{}
	if code := getJSON(t, "GET", base+"/streams/s-1?from=4", &sv); code != http.StatusOK || sv.Events == nil || len(sv.Events) != 0 {
		t.Errorf("past the end: %d %+v (events must be [], not null)", code, sv)
	}

	var cv admin.CommandView
	if code := getJSON(t, "GET", base+"/streams/s-1/commands/c-1", &cv); code != http.StatusOK || cv.CommandID != "c-1" ||
		len(cv.Events) != 2 || cv.Outcome != nil {
		t.Errorf("command with events: %d %+v", code, cv)
	}
	cv = admin.CommandView{}
	if code := getJSON(t, "GET", base+"/streams/s-1/commands/c-3", &cv); code != http.StatusOK || len(cv.Events) != 0 ||
		cv.Outcome == nil || cv.Outcome.Code != "rejected" || cv.Outcome.Message != "no" || cv.Outcome.StreamVersion != 3 {
		t.Errorf("command with an outcome: %d %+v", code, cv)
	}
	cv = admin.CommandView{}
	if code := getJSON(t, "GET", base+"/streams/s-1/commands/c-9", &cv); code != http.StatusOK || len(cv.Events) != 0 || cv.Outcome != nil {
		t.Errorf("unknown command: %d %+v", code, cv)
	}
}

// TestOverviewReadsTheMembersStats: /overview holds the answering node's own stats,
// the other members' /stats read with its token, and an error for a member that has
// no admin address or refuses the token.
func TestOverviewReadsTheMembersStats(t *testing.T) {
	peer := newFake("n2")
	peerAddr := strings.TrimPrefix(serve(t, peer, nil, "tok"), "http://")
	stranger := newFake("n4")
	strangerAddr := strings.TrimPrefix(serve(t, stranger, nil, "other-token"), "http://")

	f := newFake("n1")
	f.members = []admin.MemberView{{ID: "n1"}, {ID: "n2", AdminAddr: peerAddr}, {ID: "n3"}, {ID: "n4", AdminAddr: strangerAddr}}
	f.handlersErr = errors.New("store down")
	f.rows = nil
	base := serve(t, f, nil, "tok")

	var ov admin.OverviewView
	code, body := call(t, "GET", base+"/overview", "tok")
	if err := json.Unmarshal(body, &ov); code != http.StatusOK || err != nil {
		t.Fatalf("/overview: %d %s %v", code, body, err)
	}
	if ov.Cluster.Node != "n1" || len(ov.Cluster.Members) != 4 || len(ov.Stats) != 4 {
		t.Fatalf("/overview: %+v", ov)
	}
	if s := ov.Stats["n1"]; s.Node != "n1" || s.Error != "" || s.CommandsOK != 2 {
		t.Errorf("own stats %+v", s)
	}
	if s := ov.Stats["n2"]; s.Node != "n2" || s.Error != "" || s.CommandsOK != 2 {
		t.Errorf("peer's stats %+v", s)
	}
	if s := ov.Stats["n3"]; s.Node != "n3" || s.Error != "no admin address gossiped" {
		t.Errorf("stats of a member without an address %+v", s)
	}
	if s := ov.Stats["n4"]; s.Node != "n4" || !strings.Contains(s.Error, "401") {
		t.Errorf("stats of a member that refuses the token %+v", s)
	}
	if ov.HandlersError != "store down" || ov.Handlers != nil {
		t.Errorf("handlers %+v, error %q", ov.Handlers, ov.HandlersError)
	}
}

func TestServeAndShutdown(t *testing.T) {
	s, err := admin.Serve(admin.Config{Addr: "127.0.0.1:0", Token: "tok", Node: newFake("n1"), Store: memstore.New()})
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(s.Addr(), ":0") {
		t.Fatalf("Addr %q, want the chosen port", s.Addr())
	}
	if code, _ := call(t, "GET", "http://"+s.Addr()+"/healthz", ""); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	if code, _ := call(t, "GET", "http://"+s.Addr()+"/metrics", "tok"); code != http.StatusOK {
		t.Errorf("/metrics without Config.Metrics: %d", code)
	}
	if _, err := admin.Serve(admin.Config{Addr: s.Addr(), Node: newFake("n1"), Store: memstore.New()}); err == nil ||
		!strings.Contains(err.Error(), s.Addr()) {
		t.Errorf("Serve on a busy address: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + s.Addr() + "/healthz"); err == nil {
		t.Error("the listener still answers after Shutdown")
	}
}
