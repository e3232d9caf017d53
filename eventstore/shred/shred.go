package shred

import (
	"bytes"
	"context"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/transform"
)

// Metadata keys the Shredder writes.
const (
	// MetaSubject holds the subject of an event whose personal fields are encrypted.
	MetaSubject = eventstore.MetaPIISubject
	// MetaForgotten lists (comma-separated) the fields of an event read that were
	// replaced by their forgotten value.
	MetaForgotten = eventstore.MetaPIIForgotten
)

// Forgotten is the default value a forgotten field reads as (a JSON string).
const Forgotten = "[forgotten]"

// markerKey is the one key of the JSON object that replaces an encrypted value.
const markerKey = "$pii"

// markerVersion prefixes the base64 ciphertext in a marker.
const markerVersion = "v1:"

// snapshotField is the "field name" a whole snapshot is encrypted under.
const snapshotField = "$snapshot"

// Field is a personal field of an event type.
type Field struct {
	// Name is the top-level JSON field name.
	Name string
	// Forgotten is the JSON value the field reads as once its subject is forgotten.
	// Nil means the string Forgotten.
	Forgotten json.RawMessage
}

// Rule marks an event type's personal fields and names its subject.
type Rule struct {
	// EventType is the event type, e.g. "AccountOpened".
	EventType string
	// SubjectField is the top-level JSON field whose string value names the subject.
	SubjectField string
	// SubjectPrefix is put before that value to form the subject's key name (e.g.
	// "account:"), keeping different kinds of subjects apart. Optional.
	SubjectPrefix string
	// Fields are the personal fields.
	Fields []Field
}

// ForgetRule makes appending an event type forget its subject first: the key is
// deleted before the event is appended, so once such an event is recorded its
// subject's data reads as forgotten everywhere. If the append then fails, the
// subject stays forgotten (the caller's retry appends the event).
type ForgetRule struct {
	// EventType is the forgetting event's type, e.g. "AccountHolderForgotten".
	EventType string
	// SubjectField and SubjectPrefix name the subject as in Rule.
	SubjectField  string
	SubjectPrefix string
}

// Config configures a Shredder.
type Config struct {
	// Keys provides the data keys. Nil means no master key: an event with personal
	// data is refused (ErrNoMasterKey), encrypted values cannot be read, and
	// snapshots are stored as they are.
	Keys *Keys
	// Rules mark the personal fields, one rule per event type.
	Rules []Rule
	// Forget lists the event types whose appending forgets their subject.
	Forget []ForgetRule
	// SnapshotSubject returns the subject whose key encrypts the snapshots of
	// streamID, if any (see the package doc). Optional.
	SnapshotSubject func(streamID string) (subject string, ok bool)
}

// Shredder is the crypto-shredding transform.Transform (and
// transform.SnapshotTransform). Create it with New.
type Shredder struct {
	keys     *Keys
	rules    map[string]*rule
	forget   map[string]ForgetRule
	snapshot func(string) (string, bool)
}

type rule struct {
	Rule
	forgotten map[string]json.RawMessage
}

var (
	_ transform.Transform         = (*Shredder)(nil)
	_ transform.SnapshotTransform = (*Shredder)(nil)
)

var defaultForgotten = json.RawMessage(`"` + Forgotten + `"`)

// New checks cfg and returns a Shredder.
func New(cfg Config) (*Shredder, error) {
	s := &Shredder{keys: cfg.Keys, rules: map[string]*rule{}, forget: map[string]ForgetRule{}, snapshot: cfg.SnapshotSubject}
	var errs []error
	for _, r := range cfg.Rules {
		switch {
		case r.EventType == "" || r.SubjectField == "" || len(r.Fields) == 0:
			errs = append(errs, fmt.Errorf("shred: rule %+v needs an event type, a subject field and personal fields", r))
			continue
		case s.rules[r.EventType] != nil:
			errs = append(errs, fmt.Errorf("shred: two rules for event type %s", r.EventType))
			continue
		}
		rr := &rule{Rule: r, forgotten: map[string]json.RawMessage{}}
		for _, f := range r.Fields {
			if f.Name == "" || f.Name == r.SubjectField {
				errs = append(errs, fmt.Errorf("shred: rule for %s: personal field %q must be named and differ from the subject field", r.EventType, f.Name))
			}
			v := f.Forgotten
			if v == nil {
				v = defaultForgotten
			} else if !json.Valid(v) {
				errs = append(errs, fmt.Errorf("shred: rule for %s: forgotten value of %s is not JSON", r.EventType, f.Name))
			}
			rr.forgotten[f.Name] = v
		}
		s.rules[r.EventType] = rr
	}
	for _, f := range cfg.Forget {
		if f.EventType == "" || f.SubjectField == "" {
			errs = append(errs, fmt.Errorf("shred: forget rule %+v needs an event type and a subject field", f))
			continue
		}
		s.forget[f.EventType] = f
	}
	return s, errors.Join(errs...)
}

// Keys returns the Shredder's keys (nil without a master key).
func (s *Shredder) Keys() *Keys { return s.keys }

// subjectOf reads the subject named by field in an event's top-level fields.
func subjectOf(fields map[string]json.RawMessage, eventType, field, prefix string) (string, error) {
	raw, ok := fields[field]
	var v string
	if !ok || json.Unmarshal(raw, &v) != nil || v == "" {
		return "", fmt.Errorf("%w: %s event has no string %q", ErrNoSubject, eventType, field)
	}
	return prefix + v, nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// EncodeEvent implements transform.Transform: it encrypts personal fields and
// carries out forget rules. Refusals that a retry cannot cure (no master key, no
// subject, a forgotten subject, data that is not a JSON object) also match
// eventstore.ErrInvalid, so the command fails as invalid rather than unavailable.
func (s *Shredder) EncodeEvent(ctx context.Context, _ string, e *eventstore.EventData) error {
	err := s.encodeEvent(ctx, e)
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if err != nil && (errors.Is(err, ErrNoMasterKey) || errors.Is(err, ErrNoSubject) || errors.Is(err, ErrForgotten) ||
		errors.As(err, &syntax) || errors.As(err, &typ)) {
		err = fmt.Errorf("%w: %w", eventstore.ErrInvalid, err)
	}
	return err
}

func (s *Shredder) encodeEvent(ctx context.Context, e *eventstore.EventData) error {
	if f, ok := s.forget[e.Type]; ok {
		if err := s.forgetFor(ctx, *e, f); err != nil {
			return err
		}
	}
	r := s.rules[e.Type]
	if r == nil {
		return nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(e.Data, &fields); err != nil {
		return fmt.Errorf("shred: %s event is not a JSON object: %w", e.Type, err)
	}
	var personal []string
	for _, f := range r.Fields {
		if v, ok := fields[f.Name]; ok && !isNull(v) {
			personal = append(personal, f.Name)
		}
	}
	if len(personal) == 0 {
		return nil
	}
	if s.keys == nil {
		return fmt.Errorf("%w: cannot record personal field %s of %s", ErrNoMasterKey, personal[0], e.Type)
	}
	subject, err := subjectOf(fields, e.Type, r.SubjectField, r.SubjectPrefix)
	if err != nil {
		return err
	}
	key, err := s.keys.DataKey(ctx, subject, true)
	if err != nil {
		return err
	}
	aead, err := newAEAD(key)
	if err != nil {
		return err
	}
	for _, name := range personal {
		sealed, err := seal(aead, fields[name], fieldAAD(subject, name))
		if err != nil {
			return err
		}
		fields[name] = marker(sealed)
	}
	data, err := json.Marshal(fields)
	if err != nil {
		return fmt.Errorf("shred: encode %s: %w", e.Type, err)
	}
	md := make(map[string]string, len(e.Metadata)+1)
	maps.Copy(md, e.Metadata)
	md[MetaSubject] = subject
	e.Data, e.Metadata = data, md
	return nil
}

func (s *Shredder) forgetFor(ctx context.Context, e eventstore.EventData, f ForgetRule) error {
	if s.keys == nil {
		return nil // no keys, nothing that could be decrypted
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(e.Data, &fields); err != nil {
		return fmt.Errorf("shred: %s event is not a JSON object: %w", e.Type, err)
	}
	subject, err := subjectOf(fields, e.Type, f.SubjectField, f.SubjectPrefix)
	if err != nil {
		return err
	}
	return s.keys.Forget(ctx, subject)
}

func fieldAAD(subject, field string) []byte {
	return []byte("ringleader/pii/v1\x00" + subject + "\x00" + field)
}

func marker(sealed []byte) json.RawMessage {
	b, _ := json.Marshal(map[string]string{markerKey: markerVersion + base64.StdEncoding.EncodeToString(sealed)})
	return b
}

// parseMarker reports whether raw is a marker and returns its ciphertext.
func parseMarker(raw json.RawMessage) ([]byte, bool, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || t[0] != '{' || !bytes.Contains(t, []byte(`"`+markerKey+`"`)) {
		return nil, false, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(t, &m); err != nil || len(m) != 1 {
		return nil, false, nil
	}
	v, ok := m[markerKey]
	if !ok {
		return nil, false, nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil || !strings.HasPrefix(s, markerVersion) {
		return nil, true, fmt.Errorf("%w: unrecognised %s value", ErrCorrupt, markerKey)
	}
	sealed, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, markerVersion))
	if err != nil {
		return nil, true, fmt.Errorf("%w: %s value is not base64", ErrCorrupt, markerKey)
	}
	return sealed, true, nil
}

// DecodeEvent implements transform.Transform: it decrypts the marked fields of an
// event carrying MetaSubject, or replaces them by their forgotten value.
func (s *Shredder) DecodeEvent(ctx context.Context, e *eventstore.RecordedEvent) error {
	subject, ok := e.Metadata[MetaSubject]
	if !ok {
		return nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(e.Data, &fields); err != nil {
		return fmt.Errorf("shred: %s event with personal data is not a JSON object: %w", e.Type, err)
	}
	var (
		aead      cipher.AEAD
		forgotten []string
		keyErr    error
		keyRead   bool
	)
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		sealed, isMarker, err := parseMarker(fields[name])
		if err != nil {
			return fmt.Errorf("field %s: %w", name, err)
		}
		if !isMarker {
			continue
		}
		if !keyRead {
			keyRead = true
			aead, keyErr = s.opener(ctx, subject)
		}
		if keyErr != nil {
			if errors.Is(keyErr, ErrForgotten) || errors.Is(keyErr, ErrNoKey) {
				fields[name] = s.forgottenValue(e.Type, name)
				forgotten = append(forgotten, name)
				continue
			}
			return keyErr
		}
		plain, err := open(aead, sealed, fieldAAD(subject, name))
		if err != nil {
			return fmt.Errorf("%w: field %s of subject %q", ErrCorrupt, name, subject)
		}
		fields[name] = plain
	}
	if !keyRead {
		return nil
	}
	data, err := json.Marshal(fields)
	if err != nil {
		return fmt.Errorf("shred: decode %s: %w", e.Type, err)
	}
	e.Data = data
	if len(forgotten) > 0 {
		md := make(map[string]string, len(e.Metadata)+1)
		maps.Copy(md, e.Metadata)
		md[MetaForgotten] = strings.Join(forgotten, ",")
		e.Metadata = md
	}
	return nil
}

func (s *Shredder) forgottenValue(eventType, field string) json.RawMessage {
	if r := s.rules[eventType]; r != nil {
		if v, ok := r.forgotten[field]; ok {
			return v
		}
	}
	return defaultForgotten
}

// opener returns a decrypter with subject's key.
func (s *Shredder) opener(ctx context.Context, subject string) (cipher.AEAD, error) {
	if s.keys == nil {
		return nil, fmt.Errorf("%w: cannot read personal data of %q", ErrNoMasterKey, subject)
	}
	key, err := s.keys.DataKey(ctx, subject, false)
	if err != nil {
		return nil, err
	}
	return newAEAD(key)
}

// EncodeSnapshot implements transform.SnapshotTransform: a snapshot of a subject
// with a key is encrypted as a whole; one of a forgotten subject is refused.
func (s *Shredder) EncodeSnapshot(ctx context.Context, snap eventstore.Snapshot) (eventstore.Snapshot, error) {
	if s.snapshot == nil || s.keys == nil {
		return snap, nil
	}
	subject, ok := s.snapshot(snap.StreamID)
	if !ok {
		return snap, nil
	}
	key, err := s.keys.DataKey(ctx, subject, false)
	switch {
	case errors.Is(err, ErrNoKey):
		return snap, nil // no personal data recorded for the subject
	case err != nil:
		return snap, err
	}
	aead, err := newAEAD(key)
	if err != nil {
		return snap, err
	}
	sealed, err := seal(aead, snap.Data, fieldAAD(subject, snapshotField+"\x00"+snap.StreamID))
	if err != nil {
		return snap, err
	}
	snap.Data = marker(sealed)
	return snap, nil
}

// DecodeSnapshot implements transform.SnapshotTransform: an encrypted snapshot is
// decrypted, or reported as eventstore.ErrNotFound when its subject was forgotten.
func (s *Shredder) DecodeSnapshot(ctx context.Context, snap eventstore.Snapshot) (eventstore.Snapshot, error) {
	sealed, isMarker, err := parseMarker(snap.Data)
	if err != nil || !isMarker {
		return snap, err
	}
	subject, ok := "", false
	if s.snapshot != nil {
		subject, ok = s.snapshot(snap.StreamID)
	}
	if !ok {
		return snap, fmt.Errorf("shred: snapshot of %q is encrypted but has no subject", snap.StreamID)
	}
	o, err := s.opener(ctx, subject)
	if errors.Is(err, ErrForgotten) || errors.Is(err, ErrNoKey) {
		return snap, eventstore.ErrNotFound
	}
	if err != nil {
		return snap, err
	}
	plain, err := open(o, sealed, fieldAAD(subject, snapshotField+"\x00"+snap.StreamID))
	if err != nil {
		return snap, fmt.Errorf("%w: snapshot of %q", ErrCorrupt, snap.StreamID)
	}
	snap.Data = plain
	return snap, nil
}
