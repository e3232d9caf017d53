// Package load runs a closed-loop load for the benchmark programs: a fixed number of
// workers each repeating an operation for a fixed time, and the throughput and
// latency percentiles that came out of it.
package load

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Result is one measured run.
type Result struct {
	// Ops is how many operations finished.
	Ops int
	// Elapsed is the run's wall time.
	Elapsed time.Duration
	// P50 and P99 are latency percentiles of one operation.
	P50, P99 time.Duration
}

// PerSecond is the throughput.
func (r Result) PerSecond() float64 { return float64(r.Ops) / r.Elapsed.Seconds() }

// Run starts workers goroutines that call op(worker, iteration) until duration has
// passed, and measures each call. The first error of any worker ends the run.
func Run(workers int, duration time.Duration, op func(worker, i int) error) (Result, error) {
	var wg sync.WaitGroup
	latencies := make([][]time.Duration, workers)
	errs := make([]error, workers)
	start := time.Now()
	deadline := start.Add(duration)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				t0 := time.Now()
				if err := op(w, i); err != nil {
					errs[w] = err
					return
				}
				latencies[w] = append(latencies[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for w := range workers {
		if errs[w] != nil {
			return Result{}, errs[w]
		}
		all = append(all, latencies[w]...)
	}
	if len(all) == 0 {
		return Result{}, fmt.Errorf("load: no operation finished in %s", duration)
	}
	slices.Sort(all)
	return Result{Ops: len(all), Elapsed: elapsed, P50: all[len(all)/2], P99: all[min(len(all)-1, len(all)*99/100)]}, nil
}

// Millis formats a duration as milliseconds with one decimal.
func Millis(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64)
}
