package testwait

import (
	"errors"
	"testing"
	"time"
)

func TestUntilReturnsOnceTheConditionHolds(t *testing.T) {
	calls := 0
	err := Until(time.Second, func() error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("err %v after %d calls, want nil after 3", err, calls)
	}
}

func TestUntilGivesUpWithTheLastError(t *testing.T) {
	last := errors.New("still not")
	start := time.Now()
	err := Until(30*time.Millisecond, func() error { return last })
	if !errors.Is(err, last) {
		t.Fatalf("err %v, want it to wrap %v", err, last)
	}
	if waited := time.Since(start); waited < 30*time.Millisecond {
		t.Fatalf("gave up after %s, before the limit", waited)
	}
}
