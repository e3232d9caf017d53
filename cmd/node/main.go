// Command node runs a Ringleader node hosting the bank, the reference application
// (examples/bank):
//
//	node [run] [flags]   run a node until SIGINT/SIGTERM (graceful shutdown)
//	node migrate [flags] apply the event store's migrations and exit
//	node demo [flags]    start NATS and a 3-node local cluster, show it working
//	node version         print the build version
//
// Everything but demo is node.Run with bank.App(): a service of your own is the
// same main around your App. Settings come from flags, RL_* environment variables
// and an optional JSON file; `node run -h` lists them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/ringleader-go/ringleader/examples/bank"
	"github.com/ringleader-go/ringleader/node"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "demo" {
		return node.Run(ctx, bank.App(), args, env, stdout, stderr)
	}
	err := runDemo(ctx, args[1:], env, stdout, stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	default:
		fmt.Fprintln(stderr, err)
		return 1
	}
}
