package node

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// TestCommandTypesAClientInventsShareOneSeries: the command type comes from the
// subject a client chose; types the router does not know are counted together, so a
// client cannot grow the metrics (or /stats) by one series per invented name.
func TestCommandTypesAClientInventsShareOneSeries(t *testing.T) {
	m := newMetrics(&Node{}, []string{"OpenAccount"})
	m.CommandDone(context.Background(), "OpenAccount", "", false, 0)
	for _, invented := range []string{"Nope1", "Nope2", "Nope3"} {
		m.CommandDone(context.Background(), invented, "unknown_command", false, 0)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.commands)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == "type" {
					types = append(types, fmt.Sprintf("%s=%g", l.GetValue(), metric.GetCounter().GetValue()))
				}
			}
		}
	}
	slices.Sort(types)
	want := []string{"(unknown)=3", "OpenAccount=1"}
	if !slices.Equal(types, want) {
		t.Fatalf("series %v, want %v", types, want)
	}
	byType, _, _ := m.counts.snapshot()
	if len(byType) != 2 || byType[unknownType]["unknown_command"] != 3 {
		t.Fatalf("/stats counts %v", byType)
	}
}

// TestLatencyExemplarsLinkToTraces: a traced command's latency sample carries its
// trace id as an exemplar; an untraced one carries none.
func TestLatencyExemplarsLinkToTraces(t *testing.T) {
	m := newMetrics(&Node{}, []string{"OpenAccount"})
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5}, TraceFlags: trace.FlagsSampled})
	m.CommandDone(context.Background(), "OpenAccount", "", false, time.Millisecond)
	m.CommandDone(trace.ContextWithSpanContext(context.Background(), sc), "OpenAccount", "", false, 3*time.Millisecond)
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.latency)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var exemplars []string
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			for _, b := range metric.GetHistogram().GetBucket() {
				for _, l := range b.GetExemplar().GetLabel() {
					exemplars = append(exemplars, l.GetName()+"="+l.GetValue())
				}
			}
		}
	}
	if want := "trace_id=" + sc.TraceID().String(); len(exemplars) != 1 || exemplars[0] != want {
		t.Fatalf("exemplars %v, want exactly [%s]", exemplars, want)
	}
}
