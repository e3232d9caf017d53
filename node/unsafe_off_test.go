//go:build !ringleader_unsafe

package node

import (
	"testing"

	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader/eventstore/memstore"
)

// TestUnsafeStoreOffReturnsStore checks that a normal build never wraps the store.
func TestUnsafeStoreOffReturnsStore(t *testing.T) {
	mem := memstore.New()
	if s := unsafeStore(mem, zerolog.Nop()); s != mem {
		t.Fatalf("unsafeStore returned %T, want the store unchanged", s)
	}
}
