package pgstore

import "github.com/ringleader-go/ringleader/eventstore"

// Exported for the external tests, which need pgtest (and so cannot be internal).

// AppendSQL is rl_append's call, for tests that hold an append's transaction open.
const AppendSQL = appendSQL

// SQLStateNotFirstWrite is what rl_append raises in a transaction that wrote first.
const SQLStateNotFirstWrite = sqlstateNotFirstWrite

// AppendArgs returns AppendSQL's arguments for appending events to stream.
func AppendArgs(stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) []any {
	a, err := buildAppendArgs(events)
	if err != nil {
		panic(err)
	}
	return []any{stream, int64(expected), a.ids, a.types, a.data, a.metadata}
}

// AppendError is the store's translation of rl_append's errors.
func (s *Store) AppendError(stream string, expected eventstore.ExpectedVersion, err error) error {
	return s.appendError(stream, expected, err)
}
