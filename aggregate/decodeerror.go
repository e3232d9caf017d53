package aggregate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
)

// describeDecodeError turns an encoding/json error from decoding a command into the
// field it is about and a problem in JSON's words ("expected an integer, got a
// string"), not Go's ("cannot unmarshal string into Go struct field
// DepositMoney.amount of type int64"), for the author of a client in any language.
func describeDecodeError(err error) (field, problem string) {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		return typeErr.Field, fmt.Sprintf("expected %s, got %s", jsonTypeOf(typeErr.Type), jsonValueWords(typeErr.Value))
	case errors.As(err, &syntaxErr):
		return "", fmt.Sprintf("malformed JSON at byte %d: %s", syntaxErr.Offset, syntaxErr.Error())
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "", "malformed JSON: the object is not complete"
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if name, ok := strings.CutPrefix(msg, "unknown field "); ok {
		if unquoted, uerr := strconv.Unquote(name); uerr == nil {
			name = unquoted
		}
		return name, "unknown field: the command has no field of that name"
	}
	// A field type's own UnmarshalJSON (a time, say) said what it wants.
	return "", msg
}

// jsonTypeOf names, in JSON's terms, what a Go type accepts.
func jsonTypeOf(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a base64 string"
		}
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a value of another type"
}

// jsonValueWords describes the JSON value json.UnmarshalTypeError.Value names
// ("string", "number", "number 1.5", "bool", "array", "object").
func jsonValueWords(v string) string {
	switch {
	case v == "string":
		return "a string"
	case v == "bool":
		return "true or false"
	case v == "array":
		return "an array"
	case v == "object":
		return "an object"
	case v == "number":
		return "a number"
	case strings.HasPrefix(v, "number "):
		n := strings.TrimPrefix(v, "number ")
		if strings.ContainsAny(n, ".eE") {
			return "the number " + n + ", which is not a whole number"
		}
		return "the number " + n + ", which is out of range"
	}
	return v
}
