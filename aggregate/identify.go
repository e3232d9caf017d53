package aggregate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// Validator is implemented by commands that check their own fields. Decode, Identify
// and Dispatch call it; an error makes the command invalid.
type Validator interface {
	Validate() error
}

// Target is where a command goes: its type, its aggregate and stream.
type Target struct {
	// CommandType is the command's registered name, e.g. "DepositMoney".
	CommandType string
	// AggregateType is the name of the aggregate type that executes it.
	AggregateType string
	// AggregateID is the identity the route extracted, e.g. "A1".
	AggregateID string
	// StreamID is the aggregate's stream: its type's prefix plus AggregateID. It is
	// the key the cluster places on the ring.
	StreamID string
}

// Identify resolves where command (a value or pointer of a routed type) goes. It
// fails with ErrUnknownCommand for an unrouted type and an *InvalidError when the
// identity is empty or the command's Validate method fails.
func (r *Router) Identify(command any) (Target, error) {
	rt, cmd, err := r.lookup(command)
	if err != nil {
		return Target{}, err
	}
	return rt.target(cmd)
}

// target extracts the identity of cmd, a value of rt.goType, and validates it.
func (rt *route) target(cmd any) (t Target, err error) {
	if v, ok := cmd.(Validator); ok {
		if verr := safeValidate(v); verr != nil {
			ie := &InvalidError{CommandType: rt.name, Problem: verr.Error(), Err: verr}
			if fe := (*FieldError)(nil); errors.As(verr, &fe) {
				ie.Field, ie.Problem = fe.Field, fe.Problem
			}
			return Target{}, ie
		}
	}
	id, perr := safeIdentity(rt.identity, cmd)
	if perr != nil {
		return Target{}, invalid(rt.name, "the route's identity function failed: "+perr.Error(), perr)
	}
	if id == "" {
		if rt.identityField != "" {
			return Target{}, &InvalidError{CommandType: rt.name, Field: rt.identityField,
				Problem: "required, and must not be empty: it identifies the aggregate"}
		}
		return Target{}, invalid(rt.name, "the aggregate's identity is missing: a required field is absent or empty", nil)
	}
	return Target{CommandType: rt.name, AggregateType: rt.typ.name, AggregateID: id, StreamID: rt.typ.StreamID(id)}, nil
}

func safeIdentity(f func(any) string, cmd any) (id string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return f(cmd), nil
}

func safeValidate(v Validator) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return v.Validate()
}

// Decode builds the command registered as commandType from its JSON body, as the
// NATS ingress receives it, and checks that it can be routed. The body must be one
// JSON object whose fields the command type knows. Errors: ErrUnknownCommand for an
// unknown type name; an *InvalidError (ErrInvalid) for malformed JSON, unknown
// fields, a missing identity or a failed Validate. It returns the command value (not
// a pointer).
func (r *Router) Decode(commandType string, body []byte) (any, error) {
	cmd, _, err := r.DecodeTarget(commandType, body)
	return cmd, err
}

// DecodeTarget is Decode that also returns where the command goes (what Identify
// would return), deciding both from one decoding.
func (r *Router) DecodeTarget(commandType string, body []byte) (any, Target, error) {
	rt, ok := r.routes[commandType]
	if !ok {
		return nil, Target{}, fmt.Errorf("%w: %q", ErrUnknownCommand, commandType)
	}
	trimmed := bytes.Trim(body, " \t\r\n") // JSON's whitespace only (RFC 8259)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, Target{}, invalid(commandType, "the command must be a JSON object", nil)
	}
	p := reflect.New(rt.goType)
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(p.Interface()); err != nil {
		field, problem := describeDecodeError(err)
		return nil, Target{}, &InvalidError{CommandType: commandType, Field: field, Problem: problem, Err: err}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, Target{}, invalid(commandType, "malformed JSON: data after the command's JSON object", err)
	}
	cmd := p.Elem().Interface()
	target, err := rt.target(cmd)
	if err != nil {
		return nil, Target{}, err
	}
	return cmd, target, nil
}

// identityProbe is a value no real command holds in a field.
const identityProbe = "\x00ringleader-identity-probe\x00"

// identityFieldOf finds the string field that identity reads, by calling it on
// commands with one top-level string field set to identityProbe at a time, and
// returns its JSON name; "" when identity is not the value of one such field (it
// combines fields, or reads a nested one).
func identityFieldOf[C any](identity func(C) string) string {
	t := reflect.TypeFor[C]()
	if t.Kind() != reflect.Struct {
		return ""
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() || f.Type.Kind() != reflect.String {
			continue
		}
		name, ok := jsonFieldName(f)
		if !ok {
			continue
		}
		var c C
		reflect.ValueOf(&c).Elem().Field(i).SetString(identityProbe)
		if id, err := safeIdentity(func(v any) string { return identity(v.(C)) }, c); err == nil && id == identityProbe {
			return name
		}
	}
	return ""
}

// jsonFieldName is the name encoding/json gives f; false when it skips f.
func jsonFieldName(f reflect.StructField) (string, bool) {
	tag := f.Tag.Get("json")
	if tag == "-" {
		return "", false
	}
	if name, _, _ := strings.Cut(tag, ","); name != "" {
		return name, true
	}
	return f.Name, true
}
