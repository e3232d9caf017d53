//go:build !ringleader_unsafe

package node

import (
	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader/eventstore"
)

// unsafeStore returns store unchanged. It exists so that Start can call it in every
// build: only a build with the ringleader_unsafe tag (unsafe.go, used by the chaos
// suite's broken-build check) replaces it with one that skips the expected-version
// check.
func unsafeStore(store eventstore.Store, _ zerolog.Logger) eventstore.Store {
	return store
}
