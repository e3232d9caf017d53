package pgstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
)

// BenchmarkAppendMany measures group commits of one event to each of N streams, from
// 4 concurrent appenders, against single appends from 32: ns/op is per stream append.
func BenchmarkAppendMany(b *testing.B) {
	body := json.RawMessage(`{"account_number":"X","amount":1,"balance":1}`)
	meta := map[string]string{eventstore.MetaCommandID: "c", eventstore.MetaCausationID: "c", eventstore.MetaCorrelationID: "c"}
	for _, group := range []int{1, 8, 32, 128} {
		b.Run(fmt.Sprintf("streams=%d", group), func(b *testing.B) {
			s := pgtest.NewStore(b)
			ctx := context.Background()
			workers := 4
			if group == 1 {
				workers = 32
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					versions := make([]int64, group)
					reqs := make([]eventstore.AppendRequest, group)
					for next.Add(int64(group)) <= int64(b.N) {
						for k := range reqs {
							reqs[k] = eventstore.AppendRequest{StreamID: fmt.Sprintf("b-%d-%d", w, k), Expected: eventstore.Exact(versions[k]),
								Events: []eventstore.EventData{{Type: "MoneyDeposited", Data: body, Metadata: meta}}}
						}
						var err error
						if group == 1 {
							_, err = s.Append(ctx, reqs[0].StreamID, reqs[0].Expected, reqs[0].Events)
						} else {
							for _, r := range s.AppendMany(ctx, reqs) {
								if r.Err != nil {
									err = r.Err
								}
							}
						}
						if err != nil {
							b.Error(err)
							return
						}
						for k := range versions {
							versions[k]++
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "appends/s")
		})
	}
}
