// Package tracing is Ringleader's OpenTelemetry tracing: it sets the process's
// tracer provider up from the standard OTEL_* environment variables (off unless
// they ask for an exporter), names the tracer every package starts its spans with,
// and carries W3C trace context in NATS headers and in events' metadata, so that a
// command's trace continues from client to ingress to owner, and on to the commands
// a process manager sends because of its events.
//
// Everything here is safe for concurrent use. With tracing off the spans are
// OpenTelemetry's no-op spans: starting one costs a few nanoseconds and allocates
// nothing.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Tracer is the tracer Ringleader's spans come from (the global provider's).
func Tracer() trace.Tracer { return otel.Tracer("github.com/ringleader-go/ringleader") }

// propagator is W3C trace context and baggage, whatever the global one is: the
// wire contract names these headers (traceparent, tracestate, baggage).
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Enabled reports whether env asks for traces to be exported: OTEL_TRACES_EXPORTER is
// "otlp", or it is unset and an OTLP endpoint is (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); never with OTEL_SDK_DISABLED=true.
func Enabled(env func(string) string) bool {
	if strings.EqualFold(env("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	switch strings.ToLower(env("OTEL_TRACES_EXPORTER")) {
	case "otlp":
		return true
	case "":
		return env("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	}
	return false
}

// Setup installs a tracer provider exporting over OTLP/HTTP, configured by the
// standard OTEL_EXPORTER_OTLP_* variables, when Enabled(env); service names the
// process (OTEL_SERVICE_NAME wins) and attrs describe it (the node's id). It returns
// the function that flushes and stops the exporter; without tracing it does nothing.
func Setup(ctx context.Context, service string, env func(string) string, attrs ...attribute.KeyValue) (shutdown func(context.Context) error, err error) {
	if !Enabled(env) {
		return func(context.Context) error { return nil }, nil
	}
	if v := strings.ToLower(env("OTEL_TRACES_EXPORTER")); v != "" && v != "otlp" {
		return nil, fmt.Errorf("tracing: OTEL_TRACES_EXPORTER=%q: only otlp is supported", v)
	}
	exporter, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	if s := env("OTEL_SERVICE_NAME"); s != "" {
		service = s
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(append(attrs, attribute.String("service.name", service))...))
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	// The sampler and batch settings follow OTEL_TRACES_SAMPLER and OTEL_BSP_*.
	provider := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	otel.SetTracerProvider(provider)
	otel.SetTextMapPropagator(propagator)
	return provider.Shutdown, nil
}

// headerCarrier carries trace context in NATS headers, matching names without
// regard to case as the wire contract does (nats.Header.Get does not).
type headerCarrier nats.Header

func (c headerCarrier) Get(key string) string {
	for k, v := range c {
		if strings.EqualFold(k, key) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

func (c headerCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }

func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// Inject writes ctx's trace context into h (nothing when ctx has none).
func Inject(ctx context.Context, h nats.Header) {
	if trace.SpanContextFromContext(ctx).IsValid() {
		propagator.Inject(ctx, headerCarrier(h))
	}
}

// Extract returns ctx with the trace context h carries, if any.
func Extract(ctx context.Context, h nats.Header) context.Context {
	return propagator.Extract(ctx, headerCarrier(h))
}

// MetaTraceParent and MetaTraceState are the metadata keys an event carries its
// command's trace context in (keys starting rl_ are Ringleader's own), so that the
// handlers and process managers that react to it continue the command's trace.
const (
	MetaTraceParent = "rl_traceparent"
	MetaTraceState  = "rl_tracestate"
)

// metadataCarrier maps traceparent and tracestate to the metadata keys above.
type metadataCarrier map[string]string

func (c metadataCarrier) Get(key string) string { return c["rl_"+key] }
func (c metadataCarrier) Set(key, value string) { c["rl_"+key] = value }
func (c metadataCarrier) Keys() []string        { return []string{"traceparent", "tracestate"} }

// traceContext is W3C trace context alone: baggage stays out of stored events.
var traceContext = propagation.TraceContext{}

// InjectMetadata writes ctx's trace context into an event's metadata (nothing when
// ctx has none).
func InjectMetadata(ctx context.Context, metadata map[string]string) {
	if trace.SpanContextFromContext(ctx).IsValid() {
		traceContext.Inject(ctx, metadataCarrier(metadata))
	}
}

// ExtractMetadata returns ctx with the trace context an event's metadata carries,
// if any.
func ExtractMetadata(ctx context.Context, metadata map[string]string) context.Context {
	if metadata[MetaTraceParent] == "" {
		return ctx
	}
	return traceContext.Extract(ctx, metadataCarrier(metadata))
}

// Attribute keys of Ringleader's spans.
const (
	AttrNode          = attribute.Key("ringleader.node")
	AttrCommandType   = attribute.Key("ringleader.command_type")
	AttrCommandID     = attribute.Key("ringleader.command_id")
	AttrStream        = attribute.Key("ringleader.stream")
	AttrCode          = attribute.Key("ringleader.code")
	AttrForwarded     = attribute.Key("ringleader.forwarded")
	AttrOwner         = attribute.Key("ringleader.owner")
	AttrBatchSize     = attribute.Key("ringleader.append.batch_size")
	AttrEvents        = attribute.Key("ringleader.events")
	AttrHandler       = attribute.Key("ringleader.handler")
	AttrPartition     = attribute.Key("ringleader.partition")
	AttrEventType     = attribute.Key("ringleader.event_type")
	AttrVersion       = attribute.Key("ringleader.aggregate_version")
	AttrFromSnapshot  = attribute.Key("ringleader.from_snapshot")
	AttrGlobalFrom    = attribute.Key("ringleader.position.from")
	AttrGlobalThrough = attribute.Key("ringleader.position.through")
)
