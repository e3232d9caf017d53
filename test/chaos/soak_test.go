package chaos

import (
	"bufio"
	"flag"
	"fmt"
	"maps"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var flagSoak = flag.Duration("chaos.soak", 0, "run TestSoak for this long (make soak: 10m); 0 leaves it out")

// soakMetrics are the per-node series the soak follows: what would grow if a node
// leaked memory, goroutines, pool connections or aggregates, or fell behind.
var soakMetrics = []struct {
	name, series string
	slack        float64 // growth below this is noise, whatever the ratio
}{
	{"RSS MiB", "process_resident_memory_bytes", 16},
	{"goroutines", "go_goroutines", 40},
	{"pool acquired", `ringleader_pg_pool_connections{state="acquired"}`, 4},
	{"live aggregates", "ringleader_live_aggregates", 100},
	{"handler lag", "ringleader_handler_lag_events", 500},
}

// soakSample is one reading of a node's metrics.
type soakSample struct {
	at     time.Duration // since the soak started
	values []float64     // in soakMetrics' order
}

// TestSoak runs the bank workload for -chaos.soak with a fault every minute (a
// partition, a pause, one-way loss, in turn), checks the run like any scenario, and
// prints each node's RSS, goroutines, acquired pool connections, live aggregates
// and handler lag at the start and the end with their slope. It fails when a series
// still grows in the last third of the run: growth that does not level off.
func TestSoak(t *testing.T) {
	if *flagSoak == 0 {
		t.Skip("a long run: make soak (go test -run TestSoak ./test/chaos/ -args -chaos.soak=10m)")
	}
	var mu sync.Mutex
	samples := map[string][]soakSample{}
	sc := scenario{name: "soak", nodes: 3, hold: *flagSoak, inject: func(c *cluster) func() {
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			start := time.Now()
			sample := time.NewTicker(15 * time.Second)
			fault := time.NewTicker(time.Minute)
			defer sample.Stop()
			defer fault.Stop()
			read := func() {
				for _, id := range c.nw.ids {
					if v, err := readMetrics(id); err == nil {
						mu.Lock()
						samples[id] = append(samples[id], soakSample{at: time.Since(start), values: v})
						mu.Unlock()
					}
				}
			}
			read()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-sample.C:
					read()
				case <-fault.C:
					soakFault(c, i, stop)
				}
			}
		}()
		return func() {
			close(stop)
			<-done
			c.nw.heal()
		}
	}}
	r := runScenario(t, sc, runOptions{clients: 4})
	for _, n := range r.info {
		t.Log(n)
	}
	for _, v := range r.violations {
		t.Errorf("INVARIANT BROKEN: %s", v)
	}
	fmt.Fprintf(os.Stdout, "\nsoak, %s, seed %d\n%s\n", *flagSoak, *flagSeed, table([]*result{r}))
	mu.Lock()
	defer mu.Unlock()
	fmt.Fprintf(os.Stdout, "%-4s %-16s %12s %12s %12s  %s\n", "node", "series", "start", "end", "slope/min", "last third vs middle")
	for _, id := range slices.Sorted(maps.Keys(samples)) {
		s := samples[id]
		if len(s) < 6 {
			t.Errorf("%s: only %d metric samples in %s", id, len(s), *flagSoak)
			continue
		}
		for m, spec := range soakMetrics {
			first, last := s[0].values[m], s[len(s)-1].values[m]
			slope := slopePerMinute(s, m)
			middle, end := meanOf(s[len(s)/3:2*len(s)/3], m), meanOf(s[2*len(s)/3:], m)
			verdict := "flat"
			if end > middle*1.25+spec.slack {
				verdict = "STILL GROWING"
				t.Errorf("%s: %s still grows in the last third of the soak: mean %.1f after %.1f (start %.1f, end %.1f)",
					id, spec.name, end, middle, first, last)
			}
			fmt.Fprintf(os.Stdout, "%-4s %-16s %12.1f %12.1f %12.2f  %.1f vs %.1f: %s\n", id, spec.name, first, last, slope, end, middle, verdict)
		}
	}
}

// soakFault applies the i-th fault of the cycle for 10 s (or until stop).
func soakFault(c *cluster, i int, stop <-chan struct{}) {
	wait := func(d time.Duration) {
		select {
		case <-time.After(d):
		case <-stop:
		}
	}
	switch i % 3 {
	case 0:
		c.nw.partition([]string{"n3"}, []string{"n1", "n2"})
		wait(10 * time.Second)
		c.nw.heal()
	case 1:
		c.signal("n2", syscall.SIGSTOP)
		wait(5 * time.Second)
		c.signal("n2", syscall.SIGCONT)
	case 2:
		c.nw.drop("n1", "n3")
		wait(10 * time.Second)
		c.nw.heal()
	}
}

// readMetrics reads soakMetrics from node id's /metrics (RSS in MiB; handler lag
// summed over partitions).
func readMetrics(id string) ([]float64, error) {
	resp, err := httpClient.Get("http://" + adminAddr(id) + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %s", resp.Status)
	}
	values := make([]float64, len(soakMetrics))
	seen := make([]bool, len(soakMetrics))
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err != nil {
			continue
		}
		for m, spec := range soakMetrics {
			series, _, _ := strings.Cut(name, "{")
			switch {
			case name == spec.series:
			case spec.series == "ringleader_handler_lag_events" && series == spec.series:
			default:
				continue
			}
			if spec.series == "process_resident_memory_bytes" {
				v /= 1 << 20
			}
			values[m] += v
			seen[m] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for m, ok := range seen {
		if !ok && soakMetrics[m].series != "ringleader_handler_lag_events" {
			return nil, fmt.Errorf("/metrics of %s has no %s", id, soakMetrics[m].series)
		}
	}
	return values, nil
}

// slopePerMinute is the least-squares slope of series m over the samples.
func slopePerMinute(s []soakSample, m int) float64 {
	var sx, sy, sxx, sxy float64
	for _, p := range s {
		x := p.at.Minutes()
		sx, sy, sxx, sxy = sx+x, sy+p.values[m], sxx+x*x, sxy+x*p.values[m]
	}
	n := float64(len(s))
	d := n*sxx - sx*sx
	if d == 0 {
		return math.NaN()
	}
	return (n*sxy - sx*sy) / d
}

func meanOf(s []soakSample, m int) float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	var sum float64
	for _, p := range s {
		sum += p.values[m]
	}
	return sum / float64(len(s))
}
