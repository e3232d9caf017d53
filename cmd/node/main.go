// Command node runs a Ringleader node hosting the bank domain (examples/bank).
//
//	node [run] [flags]   run a node until SIGINT/SIGTERM (graceful shutdown)
//	node migrate [flags] apply the event store's migrations and exit
//	node demo [flags]    start NATS and a 3-node local cluster, show it working
//	node version         print the build version
//
// Settings come from flags, RL_* environment variables and an optional JSON file;
// `node run -h` lists them.
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
	"time"

	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader/config"
	"github.com/ringleader-go/ringleader/eventstore/pgstore"
	"github.com/ringleader-go/ringleader/node"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(args []string, env func(string) string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd {
	case "run":
		err = runNode(ctx, args, env, stderr)
	case "migrate":
		err = migrate(ctx, args, env, stdout, stderr)
	case "demo":
		err = runDemo(ctx, args, env, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, version)
	default:
		fmt.Fprintf(stderr, "node: unknown command %q (want run, migrate, demo or version)\n", cmd)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	default:
		// Errors name their origin already ("config: …", "node: …").
		fmt.Fprintln(stderr, err)
		return 1
	}
}

func newLogger(cfg config.Config, out io.Writer) zerolog.Logger {
	level, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil {
		level = zerolog.InfoLevel
	}
	if cfg.LogFormat == "console" {
		out = zerolog.ConsoleWriter{Out: out, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(out).Level(level).With().Timestamp().Logger()
}

func runNode(ctx context.Context, args []string, env func(string) string, stderr io.Writer) error {
	cfg, err := config.Load(args, env, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	n, err := node.Start(ctx, node.Options{Config: cfg, Logger: log, Version: version})
	if err != nil {
		return err
	}
	<-ctx.Done()
	log.Info().Msg("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	return n.Shutdown(sctx)
}

func migrate(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(args, env, stderr)
	if err != nil {
		return err
	}
	if err := pgstore.Migrate(ctx, cfg.DSN, cfg.Schema); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "event store schema %q is up to date\n", cfg.Schema)
	return nil
}
