package aggregate_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ringleader-go/ringleader/aggregate"
)

func TestRejectionReasons(t *testing.T) {
	errPoor := aggregate.Reject("insufficient_funds", "insufficient funds")
	detailed := aggregate.Rejectf("insufficient_funds", "balance %d is below %d", 5, 10)
	wrapped := fmt.Errorf("withdraw: %w", detailed)
	if !errors.Is(wrapped, errPoor) || detailed.Error() != "balance 5 is below 10" {
		t.Fatalf("a rejection with the same reason does not match: %v", wrapped)
	}
	if errors.Is(aggregate.Reject("account_closed", "closed"), errPoor) {
		t.Fatal("rejections with different reasons match")
	}
	if got := aggregate.ReasonOf(wrapped); got != "insufficient_funds" {
		t.Fatalf("ReasonOf = %q", got)
	}
	if got := aggregate.ReasonOf(errors.New("plain")); got != "" {
		t.Fatalf("ReasonOf(plain) = %q", got)
	}
	if got := aggregate.ReasonOf(badReason{}); got != "" {
		t.Fatalf("an invalid reason was passed on: %q", got)
	}
	for _, bad := range []string{"", "Insufficient", "has space", "9lives", "x-y", string(make([]byte, 65))} {
		if aggregate.ValidReason(bad) {
			t.Errorf("ValidReason(%q) = true", bad)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Reject(%q) did not panic", bad)
				}
			}()
			aggregate.Reject(bad, "m")
		}()
	}
}

type badReason struct{}

func (badReason) Error() string           { return "bad" }
func (badReason) RejectionReason() string { return "Not A Reason" }
