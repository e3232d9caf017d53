package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/routing"
	"github.com/ringleader-go/ringleader/transport"
)

// forwardsOf sums a node's ringleader_commands_forwarded_total over its owners.
func forwardsOf(t *testing.T, admin string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "ringleader_commands_forwarded_total{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// accountStream is the routing.StreamFunc of the bank's account commands, which is
// all this test sends to cmd/node: the stream is "account-" and the body's
// account_number. The test knows the bank only by its wire format.
func accountStream(_ string, body []byte) (string, error) {
	var c struct {
		AccountNumber string `json:"account_number"`
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return "", err
	}
	if c.AccountNumber == "" {
		return "", errors.New("no account_number")
	}
	return "account-" + c.AccountNumber, nil
}

// TestRingAwareClientSendsCommandsToTheirOwner: a Go client routed by a
// routing.Table, which learns the ring from the nodes over NATS, sends every command
// to its owner (no node forwards anything), and follows the ring when a node dies.
func TestRingAwareClientSendsCommandsToTheirOwner(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"n1", "n2", "n3"} {
		e.start(id)
	}
	e.waitConverged("n1", "n2", "n3")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	table, err := routing.Watch(ctx, e.nc, e.prefix, accountStream)
	if err != nil {
		t.Fatal(err)
	}
	defer table.Close()
	sameRing := func() error {
		v, err := getCluster(e.node("n1").admin, "")
		if err != nil {
			return err
		}
		if got := table.Ring().Fingerprint(); got != v.Ring.Fingerprint {
			return fmt.Errorf("table has ring %q, the cluster %q", got, v.Ring.Fingerprint)
		}
		return nil
	}
	waitFor(t, 10*time.Second, "the table to hold the cluster's ring", sameRing)

	client := transport.NewClient(e.nc, transport.WithPrefix(e.prefix), transport.WithRouter(table.Route))
	// sendToAll sends one command per account R0…R29 and checks that each ran on the
	// account's owner; it returns how many ran on each node.
	sendToAll := func(commandType string, command func(acct string) map[string]any) map[string]int {
		ran := map[string]int{}
		for i := range 30 {
			acct := fmt.Sprintf("R%d", i)
			r, err := client.Send(ctx, commandType, command(acct), transport.WithCommandID(commandType+"-"+acct))
			if err != nil || !r.OK {
				t.Fatalf("%s for %s: %v %+v", commandType, acct, err, r.Error)
			}
			if owner := e.ownerOf("account-" + acct); r.Node != owner {
				t.Errorf("%s for %s ran on %s, but /cluster says %s owns the account", commandType, acct, r.Node, owner)
			}
			ran[r.Node]++
		}
		return ran
	}
	before := forwardsOf(t, e.node("n1").admin) + forwardsOf(t, e.node("n2").admin) + forwardsOf(t, e.node("n3").admin)
	ran := sendToAll("OpenAccount", func(acct string) map[string]any { return map[string]any{"account_number": acct, "initial_balance": 1} })
	if len(ran) < 2 {
		t.Errorf("30 accounts all ran on %v: the ring should spread them", ran)
	}
	after := forwardsOf(t, e.node("n1").admin) + forwardsOf(t, e.node("n2").admin) + forwardsOf(t, e.node("n3").admin)
	if after != before {
		t.Errorf("the nodes forwarded %v commands of a ring-aware client, want 0", after-before)
	}

	// A node dies: the survivors announce the new ring and the table follows it.
	e.kill("n3")
	e.waitConverged("n1", "n2")
	waitFor(t, 10*time.Second, "the table to hold the two-node ring", sameRing)
	sendToAll("DepositMoney", func(acct string) map[string]any { return map[string]any{"account_number": acct, "amount": 1} })
}
