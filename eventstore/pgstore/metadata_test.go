package pgstore

import (
	"encoding/json"
	"maps"
	"testing"
)

// metadataSamples are metadata columns as PostgreSQL prints them, and shapes it
// never prints, which must still decode as encoding/json decodes them.
var metadataSamples = []string{
	`{}`,
	`{"command_id": "c-1", "causation_id": "c-1", "correlation_id": "k-9"}`,
	`{"a":"b","c":"d"}`,
	` { "a" : "b" } `,
	`{"name": "Zoë ✓"}`,
	`{"quote": "a \"b\" c"}`,
	`{"unicode": "\u00e9\ud83d\ude00"}`,
	`{"n": 1}`,
	`{"nested": {"a": "b"}}`,
	`{"a": "b", "a": "c"}`,
	`{"a": null}`,
	"{\"bad\": \"\xff\"}",
	"{\"ctl\": \"a\tb\"}",
	`{"a": "b",}`,
	`{"a": "b"} x`,
	`{"a" "b"}`,
	`[]`,
	`null`,
	``,
}

// The fast path gives exactly what encoding/json gives, or hands the input on.
func TestDecodeMetadataAgreesWithEncodingJSON(t *testing.T) {
	for _, src := range metadataSamples {
		checkMetadataDecode(t, []byte(src))
	}
}

// FuzzDecodeMetadata: for any input, decodeMetadata succeeds exactly when
// json.Unmarshal into a map[string]string does, with the same map.
func FuzzDecodeMetadata(f *testing.F) {
	for _, src := range metadataSamples {
		f.Add([]byte(src))
	}
	f.Fuzz(func(t *testing.T, src []byte) { checkMetadataDecode(t, src) })
}

func checkMetadataDecode(t *testing.T, src []byte) {
	t.Helper()
	got, err := decodeMetadata(src)
	var want map[string]string
	wantErr := json.Unmarshal(src, &want)
	if want == nil {
		want = map[string]string{}
	}
	switch {
	case (err == nil) != (wantErr == nil):
		t.Fatalf("decodeMetadata(%q) error %v, json.Unmarshal error %v", src, err, wantErr)
	case err == nil && !maps.Equal(got, want):
		t.Fatalf("decodeMetadata(%q) = %v, json.Unmarshal gives %v", src, got, want)
	}
}

func BenchmarkDecodeMetadata(b *testing.B) {
	src := []byte(`{"command_id": "0b8c5d3e-5f5e-4bb4-9a59-8d2f1f0f6c11", "causation_id": "0b8c5d3e-5f5e-4bb4-9a59-8d2f1f0f6c11", "correlation_id": "3f0d7f0e-1b8a-4c55-a1b4-6f3a0e4cf1f2"}`)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeMetadata(src); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m map[string]string
			if err := json.Unmarshal(src, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
