package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestWrongGossipKeyCannotJoin: node processes with one gossip key form a cluster; a
// node started with another key, seeded with the first node's address, keeps trying
// to join (its log says so) and never becomes a member on either side, and one with
// the right key joins.
func TestWrongGossipKeyCannotJoin(t *testing.T) {
	e := newEnv(t)
	const good = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	const wrong = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
	n1 := e.start("n1", "--gossip-key="+good, "--cluster-label=e2e")
	intruder := e.start("intruder", "--gossip-key="+wrong, "--cluster-label=e2e")
	n2 := e.start("n2", "--gossip-key="+good, "--cluster-label=e2e")

	members := func(p *proc) (string, error) {
		v, err := getCluster(p.admin, "")
		if err != nil {
			return "", err
		}
		var ids []string
		for _, m := range v.Members {
			ids = append(ids, m.ID)
		}
		return strings.Join(ids, ","), nil
	}
	waitFor(t, 30*time.Second, "n1 and n2 to form a cluster", func() error {
		for _, p := range []*proc{n1, n2} {
			if got, err := members(p); err != nil || got != "n1,n2" {
				return fmt.Errorf("%s sees %q (%v)", p.id, got, err)
			}
		}
		return healthy(intruder.admin) // the intruder runs, alone
	})
	// The intruder retries its join every 500ms. Once n1 is up and serving, each
	// attempt reaches it and is refused (its packets fail to decrypt): wait for
	// three more failed attempts, as the cluster package's tests do, checking
	// all along that nobody let it in.
	const joinFailed = "cluster: join failed, retrying"
	before := strings.Count(intruder.Logs.String(), joinFailed)
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(intruder.Logs.String(), joinFailed) < before+3 {
		if time.Now().After(deadline) {
			t.Fatalf("the intruder logged %d failed joins in all, %d since n1 and n2 formed a cluster; want 3 more: it did not keep trying to join",
				strings.Count(intruder.Logs.String(), joinFailed), strings.Count(intruder.Logs.String(), joinFailed)-before)
		}
		for _, p := range []*proc{n1, n2} {
			if got, err := members(p); err != nil || got != "n1,n2" {
				t.Fatalf("%s sees %q (%v): a node with the wrong gossip key got in", p.id, got, err)
			}
		}
		if got, err := members(intruder); err != nil || got != "intruder" {
			t.Fatalf("the intruder sees %q (%v), want itself alone", got, err)
		}
		if strings.Contains(intruder.Logs.String(), "cluster: joined") {
			t.Fatal("the intruder logged that it joined")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the intruder's failed joins: %d before n1 and n2 formed a cluster, %d after; last: %s", before,
		strings.Count(intruder.Logs.String(), joinFailed)-before, lastLine(intruder.Logs.String(), joinFailed))
}

// lastLine returns the last line of log containing substr.
func lastLine(log, substr string) string {
	i := strings.LastIndex(log, substr)
	if i < 0 {
		return ""
	}
	start := strings.LastIndex(log[:i], "\n") + 1
	end := strings.Index(log[i:], "\n")
	if end < 0 {
		return log[start:]
	}
	return log[start : i+end]
}
