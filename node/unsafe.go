package node

import (
	"context"
	"os"

	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader/eventstore"
)

// UnsafeSkipVersionCheckEnv names the environment variable that, set to "1", makes a
// node append every event with eventstore.AnyVersion instead of the version its
// aggregate expects. It exists only so that the chaos suite (test/chaos) can prove
// its checkers catch the corruption that two owners of one aggregate cause when the
// store's optimistic-concurrency check is off. Never set it anywhere else.
const UnsafeSkipVersionCheckEnv = "RL_UNSAFE_SKIP_VERSION_CHECK"

// unsafeStore returns store unchanged unless UnsafeSkipVersionCheckEnv is "1"; then
// it logs a loud warning and returns a wrapper whose Append ignores the expected
// version. The handlers runner keeps the unwrapped store (Start installs the wrapper
// after creating it), so projections and process state still run on PostgreSQL. The
// wrapper deliberately does not implement eventstore.BatchAppender, so the aggregate
// runtime's group commit is off and every append goes through the unchecked Append.
func unsafeStore(store eventstore.Store, log zerolog.Logger) eventstore.Store {
	if os.Getenv(UnsafeSkipVersionCheckEnv) != "1" {
		return store
	}
	for range 3 {
		log.Warn().Str("env", UnsafeSkipVersionCheckEnv).
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
