package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/ringleader-go/ringleader/tracing"
	"github.com/ringleader-go/ringleader/transport"
)

// cmdSend sends one command: rl send <CommandType> [json|-].
func cmdSend(ctx context.Context, args []string, env func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rl send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	urls := fs.String("nats", envOr(env, "RL_NATS", nats.DefaultURL), "comma-separated NATS URLs (env RL_NATS)")
	prefix := fs.String("prefix", envOr(env, "RL_PREFIX", "rl"), "subject prefix (env RL_PREFIX)")
	commandID := fs.String("command-id", "", "Command-Id header (idempotency key)")
	consistency := fs.String("consistency", "", "Consistency header: eventual or strong")
	correlation := fs.String("correlation-id", "", "Correlation-Id header")
	causation := fs.String("causation-id", "", "Causation-Id header")
	timeout := fs.Duration("timeout", 5*time.Second, "Timeout header; rl waits a second longer")
	expected := fs.String("expected-version", "", "Expected-Version header: any, no_stream, exists or a version number")
	returnState := fs.Bool("return-state", false, "Return: state header: the reply carries the aggregate's state")
	traced := fs.Bool("trace", false, "start a trace (W3C traceparent header) and print its id; exported if OTEL_EXPORTER_OTLP_ENDPOINT is set")
	metadata := map[string]string{}
	fs.Func("meta", "a Meta- header, key=value, stored in the events' metadata (repeatable)", func(v string) error {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return fmt.Errorf("want key=value, got %q", v)
		}
		metadata[k] = val
		return nil
	})
	creds := fs.String("nats-creds", env("RL_NATS_CREDS"), "NATS credentials file (env RL_NATS_CREDS)")
	nkey := fs.String("nats-nkey", env("RL_NATS_NKEY"), "NATS nkey seed file (env RL_NATS_NKEY)")
	tlsCA := fs.String("nats-tls-ca", env("RL_NATS_TLS_CA"), "PEM CAs for the NATS servers (env RL_NATS_TLS_CA)")
	tlsCert := fs.String("nats-tls-cert", env("RL_NATS_TLS_CERT"), "PEM client certificate (env RL_NATS_TLS_CERT)")
	tlsKey := fs.String("nats-tls-key", env("RL_NATS_TLS_KEY"), "PEM client key (env RL_NATS_TLS_KEY)")
	inbox := fs.String("inbox-prefix", env("RL_INBOX_PREFIX"), "reply inbox prefix, when NATS permissions restrict the client to its own (env RL_INBOX_PREFIX)")
	positional, err := parseArgs(fs, args, 1, 2, "rl send [flags] <CommandType> [json|-] (the JSON from the argument, or stdin when it is - or missing)")
	if err != nil {
		return err
	}
	commandType := positional[0]
	var body []byte
	if len(positional) == 2 && positional[1] != "-" {
		body = []byte(positional[1])
	} else {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return fmt.Errorf("read the command from stdin: %w", err)
		}
		body = b
	}
	body = bytes.TrimSpace(body)
	if !json.Valid(body) {
		return usageErr("the command is not valid JSON: %.80q", body)
	}

	opts := []nats.Option{nats.Name("rl"), nats.Timeout(3 * time.Second)}
	if *creds != "" {
		opts = append(opts, nats.UserCredentials(*creds))
	}
	if *nkey != "" {
		o, err := nats.NkeyOptionFromSeed(*nkey)
		if err != nil {
			return fmt.Errorf("--nats-nkey %s: %w", *nkey, err)
		}
		opts = append(opts, o)
	}
	if *inbox != "" {
		opts = append(opts, nats.CustomInboxPrefix(*inbox))
	}
	if *tlsCA != "" {
		opts = append(opts, nats.RootCAs(*tlsCA))
	}
	if *tlsCert != "" || *tlsKey != "" {
		opts = append(opts, nats.ClientCert(*tlsCert, *tlsKey))
	}
	nc, err := nats.Connect(*urls, opts...)
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", *urls, err)
	}
	defer nc.Close()

	sendOpts := []transport.SendOption{transport.WithTimeout(*timeout)}
	if *commandID != "" {
		sendOpts = append(sendOpts, transport.WithCommandID(*commandID))
	}
	if *consistency != "" {
		sendOpts = append(sendOpts, transport.WithConsistency(strings.ToLower(*consistency)))
	}
	if *correlation != "" {
		sendOpts = append(sendOpts, transport.WithCorrelationID(*correlation))
	}
	if *causation != "" {
		sendOpts = append(sendOpts, transport.WithCausationID(*causation))
	}
	switch v := strings.ToLower(strings.TrimSpace(*expected)); v {
	case "":
	case transport.ExpectAny, transport.ExpectNoStream, transport.ExpectExists:
		sendOpts = append(sendOpts, transport.WithExpectation(v))
	default:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return usageErr("--expected-version %q: want any, no_stream, exists or a version number", *expected)
		}
		sendOpts = append(sendOpts, transport.WithExpectedVersion(n))
	}
	if *returnState {
		sendOpts = append(sendOpts, transport.WithReturnState())
	}
	if len(metadata) > 0 {
		sendOpts = append(sendOpts, transport.WithMetadata(metadata))
	}
	client := transport.NewClient(nc, transport.WithPrefix(*prefix))
	ctx, cancel := context.WithTimeout(ctx, *timeout+time.Second)
	defer cancel()
	if *traced {
		var end func()
		if ctx, end, err = startTrace(ctx, env, stderr); err != nil {
			return err
		}
		defer end()
	}
	reply, err := client.Send(ctx, commandType, json.RawMessage(body), sendOpts...)
	if err != nil {
		return fmt.Errorf("send %s: %w", commandType, err)
	}
	out, _ := json.MarshalIndent(reply, "", "  ")
	fmt.Fprintln(stdout, string(out))
	if !reply.OK {
		return errFailed
	}
	return nil
}

// startTrace starts the root span of a traced send. Its spans are exported when the
// OTEL_* variables name a collector; without one the trace still gets an id, which
// the nodes' spans carry, and which is printed to stderr to look the trace up by.
func startTrace(ctx context.Context, env func(string) string, stderr io.Writer) (context.Context, func(), error) {
	shutdown, err := tracing.Setup(ctx, "rl", env)
	if err != nil {
		return ctx, nil, err
	}
	if !tracing.Enabled(env) {
		otel.SetTracerProvider(sdktrace.NewTracerProvider()) // ids, no export
	}
	ctx, span := tracing.Tracer().Start(ctx, "rl send", trace.WithSpanKind(trace.SpanKindClient))
	fmt.Fprintf(stderr, "trace %s\n", span.SpanContext().TraceID())
	return ctx, func() {
		span.End()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = shutdown(sctx)
	}, nil
}
