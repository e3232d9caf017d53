// Package testwait polls a condition until it holds, for tests that wait on
// something asynchronous: a goroutine, a node process, a replicated checkpoint.
package testwait

import (
	"fmt"
	"time"
)

// Polling starts fast, for conditions that hold within milliseconds, and backs off
// to maxStep, so that slow conditions (a node process starting) cost little.
const (
	firstStep = time.Millisecond
	maxStep   = 50 * time.Millisecond
)

// Until calls cond until it returns nil, then returns nil; once limit has passed it
// returns cond's last error, saying how long it waited.
func Until(limit time.Duration, cond func() error) error {
	deadline := time.Now().Add(limit)
	step := firstStep
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", limit, err)
		}
		time.Sleep(step)
		step = min(2*step, maxStep)
	}
}

// TB is the part of testing.TB For needs.
type TB interface {
	Helper()
	Fatal(args ...any)
}

// For is Until that fails the test with cond's last error.
func For(t TB, limit time.Duration, cond func() error) {
	t.Helper()
	if err := Until(limit, cond); err != nil {
		t.Fatal(err)
	}
}
