// Package e2e runs real node processes against real PostgreSQL and NATS and checks
// the cluster from the outside: NATS requests in, /cluster and the events table out.
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"

	"github.com/ringleader-go/ringleader/admin"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
	"github.com/ringleader-go/ringleader/internal/testport"
	"github.com/ringleader-go/ringleader/internal/testwait"
	"github.com/ringleader-go/ringleader/test/nodebin"
	"github.com/ringleader-go/ringleader/transport/natstest"
)

// natsURL is the NATS server the tests use.
func natsURL() string { return natstest.URL() }

// nodeBinary builds cmd/node (with the race detector) once per test run.
func nodeBinary(t *testing.T) string {
	t.Helper()
	return nodebin.Build(t, true)
}

// env is one test's world: a schema, a subject prefix, NATS, and its nodes.
type env struct {
	t      *testing.T
	schema string
	prefix string
	nc     *nats.Conn
	db     *pgx.Conn

	mu    sync.Mutex
	nodes map[string]*proc
	seed  string // gossip address of the first node
}

func newEnv(t *testing.T) *env {
	t.Helper()
	schema := pgtest.NewSchema(t)
	nc, err := nats.Connect(natsURL(), nats.Timeout(3*time.Second))
	if err != nil {
		pgtest.Unavailable(t, "NATS at "+natsURL()+" is unreachable: "+err.Error())
	}
	t.Cleanup(nc.Close)
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	return &env{t: t, schema: schema, prefix: "e2e" + hex.EncodeToString(suffix), nc: nc, db: pgtest.Connect(t), nodes: map[string]*proc{}}
}

// proc is one node process.
type proc struct {
	*nodebin.Process
	id     string
	admin  string
	gossip string
}

// start launches node id with extra flags.
func (e *env) start(id string, extra ...string) *proc {
	e.t.Helper()
	p := &proc{
		id:     id,
		admin:  fmt.Sprintf("127.0.0.1:%d", testport.Free(e.t)),
		gossip: fmt.Sprintf("127.0.0.1:%d", testport.Free(e.t)),
	}
	e.mu.Lock()
	if e.seed == "" {
		e.seed = p.gossip
	}
	seed := e.seed
	e.mu.Unlock()
	args := []string{"run",
		"--node-id=" + id,
		"--nats=" + natsURL(),
		"--prefix=" + e.prefix,
		"--dsn=" + pgtest.NodeDSN(),
		"--schema=" + e.schema,
		"--gossip-addr=" + p.gossip,
		"--seeds=" + seed,
		"--admin-addr=" + p.admin,
		"--log-level=info",
	}
	args = append(args, extra...)
	p.Process = nodebin.Start(e.t, id, nodeBinary(e.t), args...)
	// Cleanups run last-registered first: this one stops every node at once before
	// each process's own cleanup would stop them one by one.
	e.t.Cleanup(e.stopAll)
	e.mu.Lock()
	e.nodes[id] = p
	e.mu.Unlock()
	return p
}

// kill sends SIGKILL: no graceful leave, no drain.
func (e *env) kill(id string) {
	e.mu.Lock()
	p := e.nodes[id]
	delete(e.nodes, id)
	e.mu.Unlock()
	p.Kill()
}

func (e *env) stopAll() {
	e.mu.Lock()
	nodes := e.nodes
	e.nodes = map[string]*proc{}
	e.mu.Unlock()
	// In parallel: each graceful leave takes a moment.
	var wg sync.WaitGroup
	for _, p := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !p.Stop() {
				e.t.Errorf("node %s did not stop within %s of SIGTERM", p.id, nodebin.StopTimeout)
			}
		}()
	}
	wg.Wait()
}

func (e *env) node(id string) *proc {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.nodes[id]
}

func getCluster(addr, key string) (admin.ClusterView, error) {
	var v admin.ClusterView
	u := "http://" + addr + "/cluster"
	if key != "" {
		u += "?key=" + key
	}
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(u)
	if err != nil {
		return v, err
	}
	defer resp.Body.Close()
	return v, json.NewDecoder(resp.Body).Decode(&v)
}

// waitConverged waits until every running node lists exactly ids as members, with
// one ring fingerprint.
func (e *env) waitConverged(ids ...string) {
	e.t.Helper()
	want := strings.Join(ids, ",")
	waitFor(e.t, 30*time.Second, "cluster of "+want, func() error {
		e.mu.Lock()
		defer e.mu.Unlock()
		fps := map[string]bool{}
		for id, p := range e.nodes {
			v, err := getCluster(p.admin, "")
			if err != nil {
				return fmt.Errorf("%s: %v", id, err)
			}
			var got []string
			for _, m := range v.Members {
				got = append(got, m.ID)
			}
			if strings.Join(got, ",") != want {
				return fmt.Errorf("%s sees members %v", id, got)
			}
			fps[v.Ring.Fingerprint] = true
			if err := healthy(p.admin); err != nil {
				return fmt.Errorf("%s: %v", id, err)
			}
		}
		if len(fps) != 1 {
			return fmt.Errorf("nodes disagree on the ring: %v", fps)
		}
		return nil
	})
}

// healthy reports whether a node's /healthz says it is ready to take commands.
func healthy(admin string) error {
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get("http://" + admin + "/healthz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/healthz answered %d", resp.StatusCode)
	}
	return nil
}

// ownerOf asks a node's /cluster who owns key.
func (e *env) ownerOf(key string) string {
	e.t.Helper()
	e.mu.Lock()
	var admin string
	for _, p := range e.nodes {
		admin = p.admin
		break
	}
	e.mu.Unlock()
	v, err := getCluster(admin, key)
	if err != nil {
		e.t.Fatalf("owner of %s: %v", key, err)
	}
	return v.Owner
}

// reply is the wire reply (docs/wire-contract.md), decoded black-box.
type reply struct {
	OK               bool            `json:"ok"`
	CommandID        string          `json:"command_id"`
	AggregateID      string          `json:"aggregate_id"`
	AggregateVersion int64           `json:"aggregate_version"`
	Node             string          `json:"node"`
	Duplicate        bool            `json:"duplicate"`
	Contract         *int            `json:"contract"`
	State            json.RawMessage `json:"state"`
	Events           []struct {
		Type          string `json:"type"`
		StreamVersion int64  `json:"stream_version"`
	} `json:"events"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Reason  string `json:"reason"`
		Field   string `json:"field"`
	} `json:"error"`
}

// code is the error code, "" for a success.
func (r reply) code() string {
	if r.Error == nil {
		return ""
	}
	return r.Error.Code
}

// send makes one plain NATS request.
func (e *env) send(typ string, body any, commandID string, timeout time.Duration) (reply, error) {
	return e.sendWith(typ, body, commandID, timeout, nil)
}

// sendWith makes one plain NATS request with extra headers.
func (e *env) sendWith(typ string, body any, commandID string, timeout time.Duration, headers map[string]string) (reply, error) {
	var data []byte
	switch b := body.(type) {
	case []byte:
		data = b
	default:
		data, _ = json.Marshal(body)
	}
	msg := nats.NewMsg(e.prefix + ".cmd." + typ)
	msg.Data = data
	if commandID != "" {
		msg.Header.Set("Command-Id", commandID)
	}
	msg.Header.Set("Timeout", timeout.String())
	for k, v := range headers {
		msg.Header.Set(k, v)
	}
	resp, err := e.nc.RequestMsg(msg, timeout+time.Second)
	if err != nil {
		return reply{}, err
	}
	var r reply
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return reply{}, fmt.Errorf("reply is not JSON: %q: %w", resp.Data, err)
	}
	return r, nil
}

// mustOK sends and fails the test unless the reply is ok.
func (e *env) mustOK(typ string, body any, commandID string) reply {
	e.t.Helper()
	r, err := e.send(typ, body, commandID, 5*time.Second)
	if err != nil {
		e.t.Fatalf("%s %v: %v", typ, body, err)
	}
	if !r.OK {
		e.t.Fatalf("%s %v: %+v", typ, body, r.Error)
	}
	return r
}

// sendUntilAcked retries one command (same Command-Id) until it is acknowledged:
// a timeout or unavailable answer is an unknown outcome, never a failure.
func (e *env) sendUntilAcked(typ string, body any, commandID string, limit time.Duration) (reply, error) {
	deadline := time.Now().Add(limit)
	for {
		r, err := e.send(typ, body, commandID, 2*time.Second)
		if err == nil && (r.OK || (r.Error != nil && r.Error.Code != "timeout" && r.Error.Code != "unavailable" && r.Error.Code != "conflict")) {
			return r, nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("%s", r.Error.Code+": "+r.Error.Message)
			}
			return r, fmt.Errorf("%s %s not acknowledged within %s: %w", typ, commandID, limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitFor polls cond until it returns nil, failing t after limit with what it
// waited for.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() error) {
	t.Helper()
	if err := testwait.Until(limit, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// --- store checks -------------------------------------------------------------

// checkMoney waits until the projection equals a replay of the store, then checks
// the bank's invariants: streams without gaps, no negative balance, and balances
// adding up to want. It returns the sum.
func (e *env) checkMoney(want int64) int64 {
	e.t.Helper()
	proj := e.waitProjectionMatchesStore(60 * time.Second)
	e.checkStreamsContiguous()
	var total int64
	for acct, row := range proj {
		if row.Balance < 0 {
			e.t.Errorf("account %s has a negative balance %d", acct, row.Balance)
		}
		total += row.Balance
	}
	if total != want {
		e.t.Fatalf("money not conserved: balances add to %d, want %d", total, want)
	}
	return total
}

func (e *env) query(sql string, args ...any) pgx.Rows {
	e.t.Helper()
	rows, err := e.db.Query(context.Background(), strings.ReplaceAll(sql, "EVENTS", pgx.Identifier{e.schema, "events"}.Sanitize()), args...)
	if err != nil {
		e.t.Fatal(err)
	}
	return rows
}

// checkStreamsContiguous fails if any stream's versions are not exactly 1..n.
func (e *env) checkStreamsContiguous() {
	e.t.Helper()
	rows := e.query(`SELECT stream_id, count(*), max(stream_version) FROM EVENTS GROUP BY stream_id HAVING count(*) <> max(stream_version)`)
	bad, err := pgx.CollectRows(rows, pgx.RowToMap)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(bad) > 0 {
		e.t.Fatalf("streams with gaps or duplicate versions: %v", bad)
	}
}

// eventsOfCommand counts the events each command id appended.
func (e *env) eventsPerCommand() map[string]int {
	e.t.Helper()
	rows := e.query(`SELECT metadata->>'command_id', count(*)::int FROM EVENTS GROUP BY 1`)
	out := map[string]int{}
	for rows.Next() {
		var id *string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			e.t.Fatal(err)
		}
		if id != nil {
			out[*id] = n
		}
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// balances replays the store: balance per account.
func (e *env) balances() map[string]int64 {
	e.t.Helper()
	rows := e.query(`SELECT data->>'account_number', sum(CASE event_type
			WHEN 'AccountOpened' THEN (data->>'initial_balance')::bigint
			WHEN 'MoneyDeposited' THEN (data->>'amount')::bigint
			WHEN 'MoneyWithdrawn' THEN -(data->>'amount')::bigint ELSE 0 END)::bigint
		FROM EVENTS WHERE stream_id LIKE 'account-%' GROUP BY 1`)
	out := map[string]int64{}
	for rows.Next() {
		var acct string
		var b int64
		if err := rows.Scan(&acct, &b); err != nil {
			e.t.Fatal(err)
		}
		out[acct] = b
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}
