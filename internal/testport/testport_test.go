package testport

import "testing"

func TestFreeNeverRepeatsAPort(t *testing.T) {
	seen := map[int]bool{}
	for range 200 {
		p := Free(t)
		if p < low || p >= high {
			t.Fatalf("port %d outside %d-%d", p, low, high)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}
