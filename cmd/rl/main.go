// Command rl is Ringleader's operator CLI.
//
//	rl send <CommandType> [json|-]   send a command over NATS, print the reply (exit 1 unless ok)
//	rl members                       the cluster's members (from a node's admin /cluster)
//	rl ring                          the ring: which member owns which partitions
//	rl handlers                      every handler partition: ring owner, state, position, lag
//	rl replay <handler>              reset a handler (rebuild a projection) and follow it to lag 0
//	rl events <stream>               list a stream's events (admin /streams/{id})
//	rl command <stream> <command-id> what became of a command: its events or its recorded outcome
//
// NATS settings (send): --nats (RL_NATS), --prefix (RL_PREFIX), --nats-creds,
// --nats-nkey, --nats-tls-ca, --nats-tls-cert, --nats-tls-key, --inbox-prefix. Admin settings (the
// others): --admin (RL_ADMIN_ADDR, default 127.0.0.1:8080; a URL or host:port) and
// --token (RL_ADMIN_TOKEN; sent as Authorization: Bearer). `rl <command> -h` lists a
// command's flags.
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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// errFailed marks an error already reported (e.g. a failed command's reply was
// printed): exit 1 without another message.
var errFailed = errors.New("rl: failed")

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, env func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	var err error
	switch cmd {
	case "send":
		err = cmdSend(ctx, args, env, stdin, stdout, stderr)
	case "members":
		err = cmdMembers(ctx, args, env, stdout, stderr)
	case "ring":
		err = cmdRing(ctx, args, env, stdout, stderr)
	case "handlers":
		err = cmdHandlers(ctx, args, env, stdout, stderr)
	case "replay":
		err = cmdReplay(ctx, args, env, stdout, stderr)
	case "events":
		err = cmdEvents(ctx, args, env, stdout, stderr)
	case "command":
		err = cmdCommand(ctx, args, env, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "rl: unknown command %q\n%s\n", cmd, usage)
		return 2
	}
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errFailed):
		return 1
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, err)
		return 2
	default:
		fmt.Fprintln(stderr, "rl:", err)
		return 1
	}
}

const usage = `usage: rl <command> [flags] [args]
  send <CommandType> [json|-]   send a command over NATS and print the reply
  members                       list the cluster's members
  ring                          show which member owns which ring partitions
  handlers                      list handler partitions: owner, state, position, lag
  replay <handler>              reset a handler and show its progress until lag is 0
  events <stream>               list a stream's events
  command <stream> <command-id> show a command's events or its recorded outcome
rl <command> -h lists a command's flags.`

// errUsage marks a usage error (exit code 2).
var errUsage = errors.New("rl: usage")

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

// envOr returns env(name), or def when it is empty.
func envOr(env func(string) string, name, def string) string {
	if v := env(name); v != "" {
		return v
	}
	return def
}

// parseArgs parses args with fs, accepting flags before, between and after the
// positional arguments (as git and kubectl do; Go's flag package alone stops at the
// first positional argument). Everything after "--" is positional. It returns the
// positional arguments, or a usage error naming the first unexpected one, or saying
// one is missing, when there are not between min and max of them.
func parseArgs(fs *flag.FlagSet, args []string, min, max int, usage string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		// flag.Parse consumed a "--" only if it stopped there: then all of rest is
		// positional.
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	switch {
	case len(positional) > max:
		return nil, usageErr("unexpected argument %q; usage: %s", positional[max], usage)
	case len(positional) < min:
		return nil, usageErr("missing argument; usage: %s", usage)
	}
	return positional, nil
}
