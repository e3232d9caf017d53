package node_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader/config"
	"github.com/ringleader-go/ringleader/internal/testapp"
	"github.com/ringleader-go/ringleader/node"
)

// startFromFlags loads a node's configuration from args (no environment) and starts
// it in this process with the test application (testapp); stopping it is the
// caller's job.
func startFromFlags(t *testing.T, args ...string) *node.Node {
	t.Helper()
	cfg, err := config.Load(args, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := node.Start(ctx, node.Options{App: testapp.App(), Config: cfg, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
