//go:build ringleader_unsafe

package node

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/memstore"
)

// TestUnsafeStoreSkipsVersionCheck checks that the ringleader_unsafe build always
// wraps the store, warns, appends whatever the expected version, and turns group
// commit off.
func TestUnsafeStoreSkipsVersionCheck(t *testing.T) {
	ctx := context.Background()
	mem := memstore.New()
	ev := []eventstore.EventData{{Type: "Tested", Data: []byte(`{}`)}}
	if _, err := mem.Append(ctx, "s-1", eventstore.NoStream, ev); err != nil {
		t.Fatal(err)
	}
	if _, err := mem.Append(ctx, "s-1", eventstore.NoStream, ev); !errors.Is(err, eventstore.ErrWrongVersion) {
		t.Fatalf("plain store: got %v, want ErrWrongVersion", err)
	}

	var logs bytes.Buffer
	s := unsafeStore(mem, zerolog.New(&logs))
	if n := strings.Count(logs.String(), "UNSAFE BUILD"); n != 3 {
		t.Errorf("logged the warning %d times, want 3:\n%s", n, logs.String())
	}
	if _, ok := s.(eventstore.BatchAppender); ok {
		t.Error("the unsafe store implements BatchAppender; group commit would bypass the wrapper")
	}
	got, err := s.Append(ctx, "s-1", eventstore.NoStream, ev)
	if err != nil {
		t.Fatalf("unsafe store: append with a wrong expected version: %v", err)
	}
	if len(got) != 1 || got[0].StreamVersion != 2 {
		t.Fatalf("unsafe store appended %+v, want one event at version 2", got)
	}
}
