package pgstore

import (
	"encoding/json"
	"unicode/utf8"
)

// decodeMetadata decodes an event's metadata column: a JSON object of strings.
//
// Every read decodes it for every event (on every node that reads $all), and
// encoding/json is most of that read's CPU. PostgreSQL prints jsonb in one shape —
// {"k": "v", "k2": "v2"} — so that shape is read here directly: a string without a
// backslash, a control character or an invalid UTF-8 byte is its bytes. Anything else
// (escapes, a value that is not a string, a metadata column written otherwise) goes
// to encoding/json, so the result is always what json.Unmarshal gives.
func decodeMetadata(src []byte) (map[string]string, error) {
	if m, ok := decodeFlatStrings(src); ok {
		return m, nil
	}
	var m map[string]string
	if err := json.Unmarshal(src, &m); err != nil {
		return nil, err
	}
	if m == nil {
		m = map[string]string{}
	}
	return m, nil
}

// decodeFlatStrings reads src as a JSON object of plain strings (see decodeMetadata);
// ok is false when src is anything else.
func decodeFlatStrings(src []byte) (m map[string]string, ok bool) {
	i := skipSpace(src, 0)
	if i >= len(src) || src[i] != '{' {
		return nil, false
	}
	i = skipSpace(src, i+1)
	m = make(map[string]string, 4)
	if i < len(src) && src[i] == '}' {
		return m, skipSpace(src, i+1) == len(src)
	}
	for {
		key, next, ok := plainString(src, i)
		if !ok {
			return nil, false
		}
		i = skipSpace(src, next)
		if i >= len(src) || src[i] != ':' {
			return nil, false
		}
		value, next, ok := plainString(src, skipSpace(src, i+1))
		if !ok {
			return nil, false
		}
		m[key] = value
		i = skipSpace(src, next)
		if i >= len(src) {
			return nil, false
		}
		switch src[i] {
		case ',':
			i = skipSpace(src, i+1)
		case '}':
			return m, skipSpace(src, i+1) == len(src)
		default:
			return nil, false
		}
	}
}

// plainString reads the JSON string starting at src[i] if it needs no unescaping
// and is valid UTF-8, and returns it and the index after its closing quote.
func plainString(src []byte, i int) (s string, next int, ok bool) {
	if i >= len(src) || src[i] != '"' {
		return "", 0, false
	}
	ascii := true
	for j := i + 1; j < len(src); j++ {
		switch c := src[j]; {
		case c == '"':
			body := src[i+1 : j]
			if !ascii && !utf8.Valid(body) {
				return "", 0, false
			}
			return string(body), j + 1, true
		case c == '\\' || c < 0x20:
			return "", 0, false
		case c >= 0x80:
			ascii = false
		}
	}
	return "", 0, false
}

// skipSpace returns the index of the first byte at or after i that is not JSON
// whitespace.
func skipSpace(src []byte, i int) int {
	for i < len(src) && (src[i] == ' ' || src[i] == '\t' || src[i] == '\n' || src[i] == '\r') {
		i++
	}
	return i
}
