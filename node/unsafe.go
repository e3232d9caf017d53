//go:build ringleader_unsafe

package node

import (
	"context"

	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader/eventstore"
)

// unsafeStore, in a build with the ringleader_unsafe tag, logs a loud warning and
// returns a wrapper around store whose Append ignores the expected version. The tag
// exists only so that the chaos suite (test/chaos) can prove its checkers catch the
// corruption that two owners of one aggregate cause when the store's
// optimistic-concurrency check is off; never use it anywhere else. The handlers
// runner keeps the unwrapped store (Start installs the wrapper after creating it), so
// projections and process state still run on PostgreSQL. The wrapper deliberately
// does not implement eventstore.BatchAppender, so the aggregate runtime's group
// commit is off and every append goes through the unchecked Append.
func unsafeStore(store eventstore.Store, log zerolog.Logger) eventstore.Store {
	for range 3 {
		log.Warn().Str("build_tag", "ringleader_unsafe").
			Msg("UNSAFE BUILD: appends skip the expected-version check; streams WILL be corrupted by concurrent owners. Test use only.")
	}
	return skipVersionCheck{store}
}

// skipVersionCheck is a Store whose appends never check the stream's version.
type skipVersionCheck struct{ eventstore.Store }

// Append appends with eventstore.AnyVersion whatever expected says.
func (s skipVersionCheck) Append(ctx context.Context, streamID string, _ eventstore.ExpectedVersion, events []eventstore.EventData) ([]eventstore.RecordedEvent, error) {
	return s.Store.Append(ctx, streamID, eventstore.AnyVersion, events)
}
