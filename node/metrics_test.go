package node

import (
	"fmt"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestCommandTypesAClientInventsShareOneSeries: the command type comes from the
// subject a client chose; types the router does not know are counted together, so a
// client cannot grow the metrics (or /stats) by one series per invented name.
func TestCommandTypesAClientInventsShareOneSeries(t *testing.T) {
	m := newMetrics(&Node{}, []string{"OpenAccount"})
	m.CommandDone("OpenAccount", "", false, 0)
	for _, invented := range []string{"Nope1", "Nope2", "Nope3"} {
		m.CommandDone(invented, "unknown_command", false, 0)
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
