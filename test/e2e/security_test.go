package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestWrongGossipKeyCannotJoin: node processes with one gossip key form a cluster; a
// node started with another key, seeded with the first node's address, never becomes
// a member on either side, and one with the right key joins.
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
	// The intruder retries its join every 500ms; give it several rounds.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range []*proc{n1, n2} {
			if got, err := members(p); err != nil || got != "n1,n2" {
				t.Fatalf("%s sees %q (%v): a node with the wrong gossip key got in", p.id, got, err)
			}
		}
		if got, err := members(intruder); err != nil || got != "intruder" {
			t.Fatalf("the intruder sees %q (%v), want itself alone", got, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
