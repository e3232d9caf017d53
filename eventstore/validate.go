package eventstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// DefaultMaxEventBytes is the size limit of one event's data plus metadata used when a
// store is not given another: 1 MiB.
const DefaultMaxEventBytes = 1 << 20

// MaxStreamIDBytes bounds a stream id's length.
const MaxStreamIDBytes = 512

// ValidateAppend checks an append's arguments the same way for every implementation,
// so that bad input yields the same typed error whichever store is behind it. It does
// not modify events.
func ValidateAppend(streamID string, expected ExpectedVersion, events []EventData, maxEventBytes int) error {
	if err := ValidateStreamID(streamID); err != nil {
		return err
	}
	if expected < StreamExists {
		return invalidf("expected version %d is not AnyVersion, StreamExists, NoStream or a version >= 0", int64(expected))
	}
	if len(events) == 0 {
		return invalidf("no events to append to stream %q", streamID)
	}
	if maxEventBytes <= 0 {
		maxEventBytes = DefaultMaxEventBytes
	}
	for i, e := range events {
		if e.Type == "" {
			return invalidf("event %d of stream %q has no type", i, streamID)
		}
		if !validText(e.Type) {
			return invalidf("event %d of stream %q: type is not valid UTF-8 or holds a NUL", i, streamID)
		}
		if problem := storableJSON(e.Data); problem != "" {
			return invalidf("event %d (%s) of stream %q: data %s", i, e.Type, streamID, problem)
		}
		size := len(e.Data)
		for k, v := range e.Metadata {
			if !validText(k) || !validText(v) {
				return invalidf("event %d (%s) of stream %q: metadata is not valid UTF-8 or holds a NUL", i, e.Type, streamID)
			}
			size += len(k) + len(v)
		}
		if size > maxEventBytes {
			return fmt.Errorf("%w: event %d (%s) of stream %q is %d bytes, over the limit of %d",
				ErrEventTooLarge, i, e.Type, streamID, size, maxEventBytes)
		}
	}
	return nil
}

// ValidateStreamID rejects an empty, overlong or non-UTF-8 stream id.
func ValidateStreamID(streamID string) error {
	switch {
	case streamID == "":
		return invalidf("empty stream id")
	case len(streamID) > MaxStreamIDBytes:
		return invalidf("stream id is %d bytes, over the limit of %d", len(streamID), MaxStreamIDBytes)
	case !validText(streamID):
		return invalidf("stream id is not valid UTF-8 or holds a NUL")
	}
	return nil
}

// ValidateLimit rejects a non-positive page size.
func ValidateLimit(limit int) error {
	if limit <= 0 {
		return invalidf("limit must be positive, got %d", limit)
	}
	return nil
}

// storableJSON says what keeps data from being stored as a JSON document ("" if
// nothing). PostgreSQL's jsonb cannot hold U+0000, so that escape is refused by every
// store, and both stores accept exactly the same documents.
func storableJSON(data []byte) string {
	switch {
	case len(data) == 0:
		return "is empty"
	case !json.Valid(data):
		return "is not valid JSON"
	case bytes.Contains(data, []byte(`\u0000`)):
		return "holds the escape \\u0000, which the store cannot keep"
	}
	return ""
}

// validText reports whether s can be stored as PostgreSQL text: valid UTF-8 and no NUL.
func validText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// ValidateSnapshot rejects a snapshot without a stream, with a negative version or
// with data that is not JSON.
func ValidateSnapshot(s Snapshot) error {
	if err := ValidateStreamID(s.StreamID); err != nil {
		return err
	}
	switch {
	case s.StreamVersion < 0:
		return invalidf("snapshot of stream %q has negative stream version %d", s.StreamID, s.StreamVersion)
	case !validText(s.Type):
		return invalidf("snapshot of stream %q: type is not valid UTF-8 or holds a NUL", s.StreamID)
	}
	if problem := storableJSON(s.Data); problem != "" {
		return invalidf("snapshot of stream %q: data %s", s.StreamID, problem)
	}
	return nil
}

// ValidateCheckpointName rejects an empty or non-text checkpoint name.
func ValidateCheckpointName(name string) error {
	if name == "" || !validText(name) {
		return invalidf("checkpoint name %q is empty, not valid UTF-8 or holds a NUL", name)
	}
	return nil
}

// ValidateCheckpoint rejects a bad name or a negative position.
func ValidateCheckpoint(name string, next int64) error {
	if err := ValidateCheckpointName(name); err != nil {
		return err
	}
	if next < 0 {
		return invalidf("checkpoint %q: position %d is negative", name, next)
	}
	return nil
}
