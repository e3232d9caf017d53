package pgstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
)

// BenchmarkReadAll reads pages of 500 events, each with the runtime's three metadata
// ids, as a handler runner's feed does: ns/op is per event read.
func BenchmarkReadAll(b *testing.B) {
	s := pgtest.NewStore(b)
	ctx := context.Background()
	body := json.RawMessage(`{"account_number":"A1","amount":1,"balance":1}`)
	const page, streams = 500, 100
	var reqs []eventstore.AppendRequest
	for i := range streams {
		evs := make([]eventstore.EventData, page/streams)
		for k := range evs {
			id := uuid.NewString()
			evs[k] = eventstore.EventData{Type: "MoneyDeposited", Data: body, Metadata: map[string]string{
				eventstore.MetaCommandID: id, eventstore.MetaCausationID: id, eventstore.MetaCorrelationID: uuid.NewString()}}
		}
		reqs = append(reqs, eventstore.AppendRequest{StreamID: fmt.Sprint("r-", i), Expected: eventstore.NoStream, Events: evs})
	}
	for _, r := range s.AppendMany(ctx, reqs) {
		if r.Err != nil {
			b.Fatal(r.Err)
		}
	}
	b.ResetTimer()
	for read := 0; read < b.N; read += page {
		got, err := s.ReadAll(ctx, 0, page)
		if err != nil || len(got) != page {
			b.Fatalf("ReadAll: %d events, %v", len(got), err)
		}
	}
}
