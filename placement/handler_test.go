package placement

import (
	"fmt"
	"testing"
)

func TestHandlerPartitionKey(t *testing.T) {
	if got := HandlerPartitionKey("projection", 3); got != "projection#3" {
		t.Fatalf("got %q", got)
	}
}

// TestStreamPartitionGolden pins the documented hash: outside tools reproduce
// it, and checkpoints are stored per partition, so it must never change.
func TestStreamPartitionGolden(t *testing.T) {
	for _, c := range []struct {
		stream string
		k      int
		want   int
	}{
		{"", 8, 1}, // XXH64("") = 0xef46db3751d8e999
		{"account-1", 8, 3},
		{"account-42", 16, 3},
		{"transfer-7f3a", 4, 2},
		{"Ünïcode-stream", 271, 69},
		{"x", 1000003, 429421},
	} {
		if got := StreamPartition(c.stream, c.k); got != c.want {
			t.Errorf("StreamPartition(%q, %d) = %d, want %d", c.stream, c.k, got, c.want)
		}
	}
	if StreamPartition("anything", 1) != 0 {
		t.Error("k=1 must give 0")
	}
}

func TestStreamPartitionPanicsOnBadK(t *testing.T) {
	for _, k := range []int{0, -1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("k=%d did not panic", k)
				}
			}()
			StreamPartition("s", k)
		}()
	}
}

// TestStreamPartitionUniform checks the spread of 160 000 stream ids over 16
// partitions with a chi-square test (15 degrees of freedom; 37.7 is the
// p=0.001 critical value). The input is fixed, so the test is deterministic.
func TestStreamPartitionUniform(t *testing.T) {
	const n, k = 160_000, 16
	counts := make([]int, k)
	for i := range n {
		counts[StreamPartition(fmt.Sprintf("account-%d", i), k)]++
	}
	expected := float64(n) / k
	chi2 := 0.0
	lo, hi := n, 0
	for _, c := range counts {
		d := float64(c) - expected
		chi2 += d * d / expected
		lo, hi = min(lo, c), max(hi, c)
	}
	t.Logf("%d streams over %d partitions: min %d max %d (expected %.0f), chi² = %.1f", n, k, lo, hi, expected, chi2)
	if chi2 > 37.7 {
		t.Fatalf("chi² = %.1f > 37.7: not uniform; counts %v", chi2, counts)
	}
}
