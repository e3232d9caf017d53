package eventstore

import "context"

// BatchAppender is an optional capability of a Store: appending to several streams
// at once (group commit). Consumers check for it with a type assertion and fall back
// to Append one stream at a time:
//
//	if b, ok := store.(eventstore.BatchAppender); ok { results := b.AppendMany(ctx, reqs) }
type BatchAppender interface {
	// AppendMany performs every request as Append would, each with its own
	// expected-version check, and returns one result per request in request order.
	// Requests are independent: one request's wrong version, invalid input or
	// duplicate event id fails that request only. Each request is atomic (all of its
	// events or none). A store may commit the successful requests together (one round
	// trip, one transaction); a failure of the whole call (a lost connection, a
	// cancelled ctx) is reported as every request's error. Two requests for the same
	// stream are performed in request order, the second after the first.
	AppendMany(ctx context.Context, requests []AppendRequest) []AppendResult
}

// AppendRequest is one stream's part of an AppendMany call: Append's arguments.
type AppendRequest struct {
	StreamID string
	Expected ExpectedVersion
	Events   []EventData
}

// AppendResult is the outcome of one AppendRequest: Append's results.
type AppendResult struct {
	// Events are the events as recorded when Err is nil.
	Events []RecordedEvent
	// Err is what Append would have returned for the request, e.g. a
	// *WrongVersionError.
	Err error
}
