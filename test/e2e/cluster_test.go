package e2e

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCommandsLandOnTheOwner: commands sent with a plain NATS client run on the node
// the ring names as owner, whichever node the queue group handed them to; a retry
// with the same Command-Id is answered as a duplicate and appends nothing.
func TestCommandsLandOnTheOwner(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"n1", "n2", "n3"} {
		e.start(id)
	}
	e.waitConverged("n1", "n2", "n3")

	ran := map[string]int{}
	for i := range 30 {
		acct := fmt.Sprintf("O%d", i)
		r := e.mustOK("OpenAccount", map[string]any{"account_number": acct, "initial_balance": 10}, "open-"+acct)
		owner := e.ownerOf("account-" + acct)
		if r.Node != owner {
			t.Errorf("account %s ran on %s, but /cluster says %s owns it", acct, r.Node, owner)
		}
		if r.AggregateVersion != 1 || len(r.Events) != 1 || r.Events[0].Type != "AccountOpened" {
			t.Errorf("open %s: %+v", acct, r)
		}
		ran[r.Node]++
	}
	if len(ran) < 2 {
		t.Errorf("30 accounts all ran on %v: the ring should spread them", ran)
	}
	t.Logf("30 accounts ran on %v", ran)

	first := e.mustOK("DepositMoney", map[string]any{"account_number": "O1", "amount": 5}, "dep-O1")
	again := e.mustOK("DepositMoney", map[string]any{"account_number": "O1", "amount": 5}, "dep-O1")
	if first.Duplicate || !again.Duplicate || again.AggregateVersion != first.AggregateVersion {
		t.Fatalf("retry of dep-O1: first %+v, retry %+v; want the retry marked duplicate at the same version", first, again)
	}
	if n := e.eventsPerCommand()["dep-O1"]; n != 1 {
		t.Fatalf("dep-O1 appended %d events, want 1", n)
	}
}

// TestBadRequestsGetTheirCodes: each kind of bad request gets its error code, and
// the node goes on serving.
func TestBadRequestsGetTheirCodes(t *testing.T) {
	e := newEnv(t)
	// A body limit below NATS's own 1 MiB payload limit, so an oversized body reaches
	// the node.
	e.start("n1", "--max-body-bytes=65536")
	e.waitConverged("n1")
	e.mustOK("OpenAccount", map[string]any{"account_number": "B1", "initial_balance": 1}, "")

	big := []byte(`{"account_number": "B1", "amount": 1, "pad": "` + strings.Repeat("x", 100_000) + `"}`)
	cases := []struct {
		name, typ string
		body      any
		code      string
	}{
		{"malformed JSON", "DepositMoney", []byte(`{"account_number": "B1", "amount": `), "invalid"},
		{"not an object", "DepositMoney", []byte(`[1, 2]`), "invalid"},
		{"unknown command", "FlyToTheMoon", map[string]any{"account_number": "B1"}, "unknown_command"},
		{"missing identity", "DepositMoney", map[string]any{"amount": 5}, "invalid"},
		{"oversized body", "DepositMoney", big, "invalid"},
		{"domain rejection", "WithdrawMoney", map[string]any{"account_number": "B1", "amount": 1000}, "rejected"},
	}
	for _, c := range cases {
		r, err := e.send(c.typ, c.body, "", 5*time.Second)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if r.OK || r.Error == nil || r.Error.Code != c.code {
			t.Errorf("%s: reply %+v, want error code %s", c.name, r, c.code)
		}
	}
	r := e.mustOK("DepositMoney", map[string]any{"account_number": "B1", "amount": 2}, "")
	if r.AggregateVersion != 2 {
		t.Fatalf("after the bad requests: %+v, want version 2", r)
	}
}

// TestKillNineFailover kills the owner of an account without warning and measures how
// long until the account answers again from a survivor.
func TestKillNineFailover(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"n1", "n2", "n3"} {
		e.start(id)
	}
	e.waitConverged("n1", "n2", "n3")
	// An account owned by n2 or n3 (n1 is the seed; keep it alive).
	var acct, victim string
	for i := 0; acct == ""; i++ {
		a := fmt.Sprintf("K%d", i)
		if o := e.ownerOf("account-" + a); o != "n1" {
			acct, victim = a, o
		}
	}
	e.mustOK("OpenAccount", map[string]any{"account_number": acct, "initial_balance": 100}, "open-"+acct)

	killed := time.Now()
	e.kill(victim)
	r, err := e.sendUntilAcked("DepositMoney", map[string]any{"account_number": acct, "amount": 1}, "after-kill-"+acct, 60*time.Second)
	recovered := time.Since(killed)
	if err != nil {
		t.Fatalf("account %s did not answer after %s was killed: %v", acct, victim, err)
	}
	if !r.OK || r.Node == victim || r.AggregateVersion != 2 {
		t.Fatalf("after the kill: %+v", r)
	}
	t.Logf("FIGURE: kill -9 of %s → account %s answered again from %s after %s", victim, acct, r.Node, recovered.Round(time.Millisecond))
	survivors := []string{"n1", "n2", "n3"}
	for i, id := range survivors {
		if id == victim {
			survivors = append(survivors[:i], survivors[i+1:]...)
			break
		}
	}
	e.waitConverged(survivors...)
	t.Logf("FIGURE: members converged to %v %s after the kill", survivors, time.Since(killed).Round(time.Millisecond))
}

// TestJoinDuringWorkloadLosesNothing runs deposits from several clients while a
// fourth node joins: accounts move, and every acknowledged command is in the store
// exactly once, every stream is 1..n, and balances add up.
func TestJoinDuringWorkloadLosesNothing(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"n1", "n2", "n3"} {
		e.start(id)
	}
	e.waitConverged("n1", "n2", "n3")
	const accounts, clients = 12, 6
	for i := range accounts {
		e.mustOK("OpenAccount", map[string]any{"account_number": fmt.Sprintf("J%d", i), "initial_balance": 0}, fmt.Sprintf("open-J%d", i))
	}
	before := map[string]string{}
	for i := range accounts {
		before[fmt.Sprintf("J%d", i)] = e.ownerOf(fmt.Sprintf("account-J%d", i))
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := map[string]int64{} // command id → amount
	expected := map[string]int64{}
	var failures atomic.Int64
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				acct := fmt.Sprintf("J%d", (c*7+i)%accounts)
				id := fmt.Sprintf("c%d-%d", c, i)
				amount := int64(1 + i%5)
				r, err := e.sendUntilAcked("DepositMoney", map[string]any{"account_number": acct, "amount": amount}, id, 30*time.Second)
				if err != nil || !r.OK {
					failures.Add(1)
					t.Errorf("deposit %s: %v %+v", id, err, r.Error)
					return
				}
				mu.Lock()
				acked[id] = amount
				expected[acct] += amount
				mu.Unlock()
			}
		}()
	}
	time.Sleep(time.Second) // let the workload run before the join
	e.start("n4")
	e.waitConverged("n1", "n2", "n3", "n4")
	time.Sleep(2 * time.Second) // and after it
	close(stop)
	wg.Wait()

	moved := 0
	for i := range accounts {
		a := fmt.Sprintf("J%d", i)
		if e.ownerOf("account-"+a) != before[a] {
			moved++
		}
	}
	t.Logf("FIGURE: %d acknowledged deposits; %d of %d accounts moved when n4 joined", len(acked), moved, accounts)
	if moved == 0 {
		t.Errorf("no account moved to the new node")
	}
	e.checkStreamsContiguous()
	perCommand := e.eventsPerCommand()
	for id := range acked {
		if perCommand[id] != 1 {
			t.Errorf("acknowledged command %s has %d events in the store, want exactly 1", id, perCommand[id])
		}
	}
	bal := e.balances()
	for acct, want := range expected {
		if bal[acct] != want {
			t.Errorf("account %s: store says balance %d, acknowledged deposits add to %d", acct, bal[acct], want)
		}
	}
}

// TestClusterNoneDualOwnersStayCorrect runs two nodes that both own everything
// (--cluster=none) under concurrent commands on the same accounts: the store's
// version check arbitrates, streams stay 1..n and balances match.
func TestClusterNoneDualOwnersStayCorrect(t *testing.T) {
	e := newEnv(t)
	e.start("a1", "--cluster=none")
	e.start("a2", "--cluster=none")
	waitFor(t, 20*time.Second, "both nodes healthy", func() error {
		for _, id := range []string{"a1", "a2"} {
			if _, err := getCluster(e.node(id).admin, ""); err != nil {
				return err
			}
		}
		return nil
	})
	for _, a := range []string{"D1", "D2"} {
		e.mustOK("OpenAccount", map[string]any{"account_number": a, "initial_balance": 0}, "open-"+a)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	expected := map[string]int64{}
	nodesSeen := map[string]int{}
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				acct := []string{"D1", "D2"}[(c+i)%2]
				id := fmt.Sprintf("dual-%d-%d", c, i)
				r, err := e.sendUntilAcked("DepositMoney", map[string]any{"account_number": acct, "amount": 1 + i%3}, id, 30*time.Second)
				if err != nil || !r.OK {
					t.Errorf("deposit %s: %v %+v", id, err, r.Error)
					return
				}
				mu.Lock()
				expected[acct] += int64(1 + i%3)
				nodesSeen[r.Node]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("FIGURE: deposits executed per node with two owners: %v", nodesSeen)
	if len(nodesSeen) < 2 {
		t.Errorf("only %v executed commands: the test did not create two owners", nodesSeen)
	}
	e.checkStreamsContiguous()
	for id, n := range e.eventsPerCommand() {
		if n != 1 {
			t.Errorf("command %s appended %d events", id, n)
		}
	}
	bal := e.balances()
	for acct, want := range expected {
		if bal[acct] != want {
			t.Errorf("account %s: balance %d in the store, acknowledged deposits add to %d", acct, bal[acct], want)
		}
	}
}
