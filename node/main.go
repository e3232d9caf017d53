package node

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader"
	"github.com/ringleader-go/ringleader/config"
	"github.com/ringleader-go/ringleader/eventstore/pgstore"
	"github.com/ringleader-go/ringleader/tracing"
)

// version is the build version a node reports, set at build time with
// -ldflags "-X github.com/ringleader-go/ringleader/node.version=v1.2.3" (make build
// and make demo set it from git describe); without it, see Version.
var version string

// Version returns the build version a node started by Main reports: the one set at
// build time; else the module's version when built from a tagged module; else
// "dev+<commit>" (with "-dirty" for uncommitted changes) when built in a clone; else
// "dev".
func Version() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version // built from a tagged module: go install …@v1.2.3
	}
	// Built in a clone: the commit Go stamped into the binary.
	var revision, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if revision == "" {
		return "dev"
	}
	v := "dev+" + revision[:min(12, len(revision))]
	if modified == "true" {
		v += "-dirty"
	}
	return v
}

// Main runs app as a node process and exits with Run's exit code. A service's main
// is one line:
//
//	func main() { node.Main(shop.App()) }
func Main(app ringleader.App) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Run(ctx, app, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Run is Main without the process: it runs the command args name and returns the
// exit code (0 success, 1 failure, 2 usage error).
//
//	[run] [flags]      run a node until ctx ends (SIGINT/SIGTERM in Main), then shut down gracefully
//	migrate [flags]    apply the event store's migrations and exit
//	version            print the build version
//
// Settings, the node's and the application's (App.Settings), come from flags, RL_*
// environment variables (env looks them up) and an optional JSON file; `run -h`
// lists them.
func Run(ctx context.Context, app ringleader.App, args []string, env func(string) string, stdout, stderr io.Writer) int {
	cmd := "run"
	switch {
	case len(args) > 0 && (args[0] == "--version" || args[0] == "-version"):
		cmd = "version"
	case len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-':
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "run":
		err = runNode(ctx, app, args, env, stderr)
	case "migrate":
		err = migrate(ctx, app, args, env, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, Version())
	default:
		fmt.Fprintf(stderr, "%s: unknown command %q (want run, migrate or version)\n", app.Name, cmd)
		return 2
	}
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	default:
		// Errors name their origin already ("config: …", "node: …").
		fmt.Fprintln(stderr, err)
		return 1
	}
}

// NewLogger returns the logger a node's settings ask for (level, json or console),
// writing to out.
func NewLogger(cfg config.Config, out io.Writer) zerolog.Logger {
	level, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil {
		level = zerolog.InfoLevel
	}
	if cfg.LogFormat == "console" {
		out = zerolog.ConsoleWriter{Out: out, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(out).Level(level).With().Timestamp().Logger()
}

func runNode(ctx context.Context, app ringleader.App, args []string, env func(string) string, stderr io.Writer) error {
	cfg, err := config.Load(args, env, stderr, app.Settings...)
	if err != nil {
		return err
	}
	log := NewLogger(cfg, stderr)
	// Traces go to an OpenTelemetry collector when the standard OTEL_* variables
	// name one (docs/operations.md#tracing); otherwise spans are no-ops.
	stopTracing, err := tracing.Setup(ctx, app.Name, env, tracing.AttrNode.String(cfg.NodeID))
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	defer func() {
		tctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := stopTracing(tctx); err != nil {
			log.Warn().Err(err).Msg("flushing traces failed")
		}
	}()
	n, err := Start(ctx, Options{App: app, Config: cfg, Logger: log, Version: Version()})
	if err != nil {
		return err
	}
	<-ctx.Done()
	log.Info().Msg("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	return n.Shutdown(sctx)
}

func migrate(ctx context.Context, app ringleader.App, args []string, env func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(args, env, stderr, app.Settings...)
	if err != nil {
		return err
	}
	if err := pgstore.Migrate(ctx, cfg.DSN, cfg.Schema); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "event store schema %q is up to date\n", cfg.Schema)
	return nil
}
