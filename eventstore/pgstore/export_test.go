package pgstore

import "github.com/ringleader-go/ringleader/eventstore"

// AppendArgs returns AppendSQL's arguments for appending events to stream after
// earlier events appended in the same transaction, for the external tests that hold
// an append's transaction open (they need pgtest, so they cannot be internal).
func AppendArgs(stream string, expected int64, earlier int, events []eventstore.EventData) []any {
	a, err := buildAppendArgs(events)
	if err != nil {
		panic(err)
	}
	return []any{stream, expected, a.ids, a.types, a.data, a.metadata, earlier}
}
