package errcode_test

import (
	"testing"

	"github.com/ringleader-go/ringleader/errcode"
)

func TestValidAndTransient(t *testing.T) {
	transient := map[string]bool{
		errcode.Invalid: false, errcode.UnknownCommand: false, errcode.Rejected: false,
		errcode.Conflict: true, errcode.Timeout: true, errcode.Unavailable: true,
		errcode.ConsistencyTimeout: false,
	}
	for code, want := range transient {
		if !errcode.Valid(code) {
			t.Errorf("Valid(%q) = false", code)
		}
		if got := errcode.Transient(code); got != want {
			t.Errorf("Transient(%q) = %v, want %v", code, got, want)
		}
	}
	for _, code := range []string{"", "ok", "Rejected", "error"} {
		if errcode.Valid(code) || errcode.Transient(code) {
			t.Errorf("%q is taken for a wire code", code)
		}
	}
}
