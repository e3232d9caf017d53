package eventstore

import (
	"context"
	"iter"
)

// DefaultPageSize is the page size the helpers below use when given none.
const DefaultPageSize = 500

// StreamEvents yields the events of streamID from fromVersion to the end, reading
// pages of pageSize (DefaultPageSize if <= 0). It stops at the first error, which it
// yields with a zero event.
func StreamEvents(ctx context.Context, r StreamReader, streamID string, fromVersion int64, pageSize int) iter.Seq2[RecordedEvent, error] {
	if pageSize <= 0 {
		pageSize = DefaultPageSize
	}
	return func(yield func(RecordedEvent, error) bool) {
		next := fromVersion
		for {
			page, err := r.ReadStream(ctx, streamID, next, pageSize)
			if err != nil {
				yield(RecordedEvent{}, err)
				return
			}
			for _, e := range page {
				if !yield(e, nil) {
					return
				}
				next = e.StreamVersion + 1
			}
			if len(page) < pageSize {
				return
			}
		}
	}
}
