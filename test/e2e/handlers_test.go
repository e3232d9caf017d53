package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// partitionView is the part of /handlers the tests read.
type partitionView struct {
	Handler   string `json:"handler"`
	Partition int    `json:"partition"`
	State     string `json:"state"`
	Owner     string `json:"owner"`
	Position  int64  `json:"position"`
	Lag       int64  `json:"lag"`
	LastError string `json:"last_error"`
}

func getHandlers(admin string) ([]partitionView, error) {
	var v struct {
		Partitions []partitionView `json:"partitions"`
	}
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + admin + "/handlers")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return v.Partitions, json.NewDecoder(resp.Body).Decode(&v)
}

// runningOwners maps each running partition of handler to the node running it.
func (e *env) runningOwners(handler string) map[int]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[int]string{}
	for id, p := range e.nodes {
		parts, err := getHandlers(p.admin)
		if err != nil {
			continue
		}
		for _, s := range parts {
			if s.Handler == handler && s.State == "running" {
				if prev, ok := out[s.Partition]; ok && prev != id {
					out[s.Partition] = prev + "+" + id // reported by two nodes at once
					continue
				}
				out[s.Partition] = id
			}
		}
	}
	return out
}

// accountRow is one row of bank_accounts.
type accountRow struct {
	Balance int64
	Version int64
}

func (e *env) projection() map[string]accountRow {
	e.t.Helper()
	rows, err := e.db.Query(context.Background(), "SELECT account_number, balance, version FROM "+pgx.Identifier{e.schema, "bank_accounts"}.Sanitize())
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]accountRow{}
	for rows.Next() {
		var acct string
		var r accountRow
		if err := rows.Scan(&acct, &r.Balance, &r.Version); err != nil {
			e.t.Fatal(err)
		}
		out[acct] = r
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// waitProjectionMatchesStore waits until bank_accounts equals the balances replayed
// from the events table.
func (e *env) waitProjectionMatchesStore(limit time.Duration) map[string]accountRow {
	e.t.Helper()
	var proj map[string]accountRow
	waitFor(e.t, limit, "bank_accounts to equal the store's replay", func() error {
		proj = e.projection()
		replay := e.balances()
		if len(proj) != len(replay) {
			return fmt.Errorf("projection has %d accounts, the store %d", len(proj), len(replay))
		}
		for acct, b := range replay {
			if proj[acct].Balance != b {
				return fmt.Errorf("account %s: projection %d, store %d", acct, proj[acct].Balance, b)
			}
		}
		return nil
	})
	return proj
}

// TestProjectionSpreadsAndStrongReadsSeeIt: the bank_accounts projection's K=4
// partitions run on more than one node, and a command sent with Consistency: strong
// is in the projection the moment its reply arrives.
func TestProjectionSpreadsAndStrongReadsSeeIt(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"n1", "n2", "n3"} {
		e.start(id)
	}
	e.waitConverged("n1", "n2", "n3")
	var owners map[int]string
	waitFor(t, 20*time.Second, "all 4 bank_accounts partitions running", func() error {
		owners = e.runningOwners("bank_accounts")
		if len(owners) != 4 {
			return fmt.Errorf("running partitions: %v", owners)
		}
		return nil
	})
	nodes := map[string]bool{}
	for _, o := range owners {
		if strings.Contains(o, "+") {
			t.Errorf("a partition runs on two nodes at once: %v", owners)
		}
		nodes[o] = true
	}
	t.Logf("FIGURE: bank_accounts partitions → nodes %v", owners)
	if len(nodes) < 2 {
		t.Errorf("all partitions on %v: want more than one node", nodes)
	}

	strong := map[string]string{"Consistency": "strong"}
	for i := range 10 {
		acct := fmt.Sprintf("S%d", i)
		r, err := e.sendWith("OpenAccount", map[string]any{"account_number": acct, "initial_balance": 50}, "open-"+acct, 10*time.Second, strong)
		if err != nil || !r.OK {
			t.Fatalf("strong open %s: %v %+v", acct, err, r.Error)
		}
		if row, ok := e.projection()[acct]; !ok || row.Balance != 50 {
			t.Fatalf("strong open of %s returned, but the projection has %+v (present %v)", acct, row, ok)
		}
		r, err = e.sendWith("DepositMoney", map[string]any{"account_number": acct, "amount": 7}, "dep-"+acct, 10*time.Second, strong)
		if err != nil || !r.OK {
			t.Fatalf("strong deposit %s: %v %+v", acct, err, r.Error)
		}
		if row := e.projection()[acct]; row.Balance != 57 || row.Version != 2 {
			t.Fatalf("strong deposit to %s returned, but the projection has %+v", acct, row)
		}
	}
}

// TestHandlersSurviveKillAndJoin runs deposits, withdrawals and transfers while one
// node is killed and another joins; afterwards bank_accounts equals the store's
// replay, every transfer completed or failed, and money is conserved. Then a reset
// rebuilds the projection identically.
func TestHandlersSurviveKillAndJoin(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"n1", "n2", "n3"} {
		e.start(id)
	}
	e.waitConverged("n1", "n2", "n3")
	const accounts, initial = 8, int64(1000)
	for i := range accounts {
		e.mustOK("OpenAccount", map[string]any{"account_number": fmt.Sprintf("W%d", i), "initial_balance": initial}, fmt.Sprintf("open-W%d", i))
	}

	var mu sync.Mutex
	var deposited, withdrawn int64
	var transfers []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%d", c, i)
				from := fmt.Sprintf("W%d", rng.IntN(accounts))
				to := fmt.Sprintf("W%d", rng.IntN(accounts))
				amount := int64(1 + rng.IntN(50))
				var typ string
				var body map[string]any
				switch op := rng.IntN(3); {
				case op == 0:
					typ, body = "DepositMoney", map[string]any{"account_number": from, "amount": amount}
				case op == 1:
					typ, body = "WithdrawMoney", map[string]any{"account_number": from, "amount": amount}
				case from != to:
					typ, body = "TransferMoney", map[string]any{"transfer_id": id, "from_account": from, "to_account": to, "amount": amount}
				default:
					continue
				}
				r, err := e.sendUntilAcked(typ, body, id, 30*time.Second)
				if err != nil {
					t.Errorf("%s %s: %v", typ, id, err)
					return
				}
				if !r.OK {
					continue // rejected (insufficient funds): changed nothing
				}
				mu.Lock()
				switch typ {
				case "DepositMoney":
					deposited += amount
				case "WithdrawMoney":
					withdrawn += amount
				case "TransferMoney":
					transfers = append(transfers, id)
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	e.kill("n2")
	time.Sleep(1500 * time.Millisecond)
	e.start("n4")
	e.waitConverged("n1", "n3", "n4")
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if t.Failed() {
		return
	}

	// Every transfer ends completed or failed.
	waitFor(t, 60*time.Second, "every transfer to complete or fail", func() error {
		rows := e.query(`SELECT DISTINCT ON (stream_id) stream_id, event_type FROM EVENTS
			WHERE stream_id LIKE 'transfer-%' ORDER BY stream_id, stream_version DESC`)
		last := map[string]string{}
		for rows.Next() {
			var stream, typ string
			if err := rows.Scan(&stream, &typ); err != nil {
				return err
			}
			last[stream] = typ
		}
		if err := rows.Err(); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, id := range transfers {
			if typ := last["transfer-"+id]; typ != "TransferCompleted" && typ != "TransferFailed" {
				return fmt.Errorf("transfer %s is at %q", id, typ)
			}
		}
		return nil
	})
	want := accounts*initial + deposited - withdrawn
	total := e.checkMoney(want)
	t.Logf("FIGURE: %d transfers, deposits %d, withdrawals %d; sum of balances %d (want %d)", len(transfers), deposited, withdrawn, total, want)

	// A reset on one node rebuilds the projection identically.
	before := e.projection()
	admin := e.node("n1").admin
	resp, err := http.Post("http://"+admin+"/handlers/bank_accounts/reset", "application/json", nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("reset: %v %v", resp, err)
	}
	resp.Body.Close()
	after := e.waitProjectionMatchesStore(60 * time.Second)
	keys := func(m map[string]accountRow) string {
		var k []string
		for a, r := range m {
			k = append(k, fmt.Sprintf("%s=%d@%d", a, r.Balance, r.Version))
		}
		sort.Strings(k)
		return strings.Join(k, " ")
	}
	if keys(before) != keys(after) {
		t.Fatalf("reset rebuilt a different projection:\nbefore %s\nafter  %s", keys(before), keys(after))
	}
}
