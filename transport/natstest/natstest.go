// Package natstest gives tests a connection to a real NATS server and a subject
// prefix of their own, so tests sharing one server never see each other's messages.
//
// The server comes from RL_TEST_NATS_URL (default DefaultURL). When it cannot be
// reached the test fails if CI is set (CI=true), so a CI run can never pass by
// skipping, and is skipped with the reason otherwise.
package natstest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// DefaultURL is the server tests use when RL_TEST_NATS_URL is unset.
const DefaultURL = "nats://127.0.0.1:4222"

// URL returns the test server's URL.
func URL() string {
	if u := os.Getenv("RL_TEST_NATS_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// Connect returns a new connection to the test server, closed when the test ends.
// It fails or skips the test, as the package doc says, when NATS is unreachable.
func Connect(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{nats.Name(t.Name()), nats.Timeout(2 * time.Second), nats.MaxReconnects(0)}, opts...)
	nc, err := nats.Connect(URL(), opts...)
	if err != nil {
		Unavailable(t, "NATS at "+URL()+" is unreachable: "+err.Error())
	}
	t.Cleanup(nc.Close)
	return nc
}

// Prefix returns a subject prefix no other test uses ("rltest_" + 12 hex digits).
func Prefix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "rltest_" + hex.EncodeToString(b)
}

// Unavailable stops a test that lacks a service it needs: a failure in CI, a skip
// elsewhere.
func Unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (CI is set, so this is a failure, not a skip)", why)
	}
	t.Skipf("%s (set CI=true to make this a failure)", why)
}
