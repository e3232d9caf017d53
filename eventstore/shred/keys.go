package shred

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Errors.
var (
	// ErrForgotten: the subject was forgotten; its personal data cannot be read or
	// recorded again.
	ErrForgotten = errors.New("shred: subject forgotten")
	// ErrNoKey: the subject has no data key (and was not explicitly forgotten).
	ErrNoKey = errors.New("shred: no data key")
	// ErrUnknownMasterKey: a data key is wrapped by a master key this process does
	// not have.
	ErrUnknownMasterKey = errors.New("shred: unknown master key")
	// ErrCorrupt: a wrapped key or an encrypted value does not decrypt (tampered,
	// truncated, moved to another subject or field, or the wrong master key).
	ErrCorrupt = errors.New("shred: corrupt ciphertext")
	// ErrNoMasterKey: personal data met a Shredder that has no Keys.
	ErrNoMasterKey = errors.New("shred: no master key configured")
	// ErrNoSubject: an event with personal data lacks its subject field.
	ErrNoSubject = errors.New("shred: no subject")
)

// MasterKeySize is the size of a master key and of a data key: AES-256.
const MasterKeySize = 32

// DefaultCacheTTL is how long unwrapped data keys are cached when
// KeysConfig.CacheTTL is zero.
const DefaultCacheTTL = 5 * time.Second

// maxCached bounds the cache: past it the cache is emptied.
const maxCached = 100_000

// MasterKey is a key-encryption key with an id, which is stored beside every data key
// it wraps.
type MasterKey struct {
	// ID names the key, e.g. "2026-11"; non-empty, no ':'.
	ID string
	// Key is 32 bytes.
	Key []byte
}

// ParseMasterKey parses "<id>:<base64 of 32 bytes>".
func ParseMasterKey(s string) (MasterKey, error) {
	id, b64, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || id == "" {
		return MasterKey{}, errors.New(`shred: master key must be "<id>:<base64 of 32 bytes>", e.g. "k1:` + strings.Repeat("A", 43) + `="`)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return MasterKey{}, fmt.Errorf("shred: master key %q: not base64: %w", id, err)
	}
	m := MasterKey{ID: id, Key: key}
	return m, m.Validate()
}

// Validate checks the id and the key's size.
func (m MasterKey) Validate() error {
	if m.ID == "" || strings.Contains(m.ID, ":") {
		return fmt.Errorf("shred: master key id %q must be non-empty without ':'", m.ID)
	}
	if len(m.Key) != MasterKeySize {
		return fmt.Errorf("shred: master key %q is %d bytes; it must be %d", m.ID, len(m.Key), MasterKeySize)
	}
	return nil
}

// String names the key without showing it.
func (m MasterKey) String() string { return "master key " + m.ID }

// KeysConfig configures Keys.
type KeysConfig struct {
	// Table stores the wrapped data keys. Required.
	Table Table
	// Master wraps new data keys (and unwraps). Required.
	Master MasterKey
	// Previous are older master keys, accepted for unwrapping until RotateMaster
	// re-wrapped everything with Master. Optional.
	Previous []MasterKey
	// CacheTTL is how long an unwrapped data key is cached. Zero means
	// DefaultCacheTTL (5 s); negative turns the cache off.
	CacheTTL time.Duration
	// Now is the cache's clock. Nil means time.Now.
	Now func() time.Time
}

// Keys hands out per-subject data keys. Create it with NewKeys.
type Keys struct {
	table  Table
	master MasterKey
	ring   map[string]cipher.AEAD
	ttl    time.Duration
	now    func() time.Time
	mu     sync.Mutex
	cache  map[string]cached
}

type cached struct {
	key       []byte // nil when forgotten
	forgotten bool
	expires   time.Time
}

// NewKeys checks cfg and returns Keys.
func NewKeys(cfg KeysConfig) (*Keys, error) {
	var errs []error
	if cfg.Table == nil {
		errs = append(errs, errors.New("shred: keys: nil Table"))
	}
	ring := map[string]cipher.AEAD{}
	for _, m := range append([]MasterKey{cfg.Master}, cfg.Previous...) {
		if err := m.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := ring[m.ID]; dup {
			errs = append(errs, fmt.Errorf("shred: master key id %q given twice", m.ID))
			continue
		}
		aead, err := newAEAD(m.Key)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ring[m.ID] = aead
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Keys{table: cfg.Table, master: cfg.Master, ring: ring, ttl: cfg.CacheTTL, now: cfg.Now, cache: map[string]cached{}}, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("shred: %w", err)
	}
	return cipher.NewGCM(block)
}

// MasterID returns the current master key's id.
func (k *Keys) MasterID() string { return k.master.ID }

func (k *Keys) fromCache(subject string) (cached, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	c, ok := k.cache[subject]
	if !ok || (!c.forgotten && k.now().After(c.expires)) {
		return cached{}, false
	}
	return c, true
}

func (k *Keys) remember(subject string, c cached) {
	if k.ttl < 0 && !c.forgotten {
		return
	}
	c.expires = k.now().Add(k.ttl)
	k.mu.Lock()
	defer k.mu.Unlock()
	if old, ok := k.cache[subject]; ok && old.forgotten {
		return // a key read before a concurrent Forget must not come back
	}
	if len(k.cache) >= maxCached {
		clear(k.cache)
	}
	k.cache[subject] = c
}

// DataKey returns subject's data key. With create, a subject without one gets a new
// random key. Errors: ErrForgotten, ErrNoKey (without create), ErrUnknownMasterKey,
// ErrCorrupt, or the table's error.
func (k *Keys) DataKey(ctx context.Context, subject string, create bool) ([]byte, error) {
	if subject == "" {
		return nil, ErrNoSubject
	}
	if c, ok := k.fromCache(subject); ok {
		if c.forgotten {
			return nil, fmt.Errorf("%w: %q", ErrForgotten, subject)
		}
		return c.key, nil
	}
	rec, err := k.table.Load(ctx, subject)
	if errors.Is(err, ErrNoKey) && create {
		rec, err = k.create(ctx, subject)
	}
	if err != nil {
		if errors.Is(err, ErrNoKey) {
			return nil, fmt.Errorf("%w for subject %q", ErrNoKey, subject)
		}
		return nil, err
	}
	if rec.Forgotten {
		k.remember(subject, cached{forgotten: true})
		return nil, fmt.Errorf("%w: %q", ErrForgotten, subject)
	}
	key, err := k.unwrap(rec)
	if err != nil {
		return nil, err
	}
	k.remember(subject, cached{key: key})
	return key, nil
}

func (k *Keys) create(ctx context.Context, subject string) (Record, error) {
	key := make([]byte, MasterKeySize)
	if _, err := rand.Read(key); err != nil {
		return Record{}, fmt.Errorf("shred: new data key: %w", err)
	}
	wrapped, err := k.wrap(subject, key)
	if err != nil {
		return Record{}, err
	}
	// The table keeps the first key stored for a subject; a concurrent creator's
	// (another node's) key wins if it came first, and is what we get back.
	return k.table.Create(ctx, Record{Subject: subject, MasterKeyID: k.master.ID, Wrapped: wrapped})
}

func keyAAD(subject string) []byte { return []byte("ringleader/dek/v1\x00" + subject) }

// wrap encrypts a data key with the current master key.
func (k *Keys) wrap(subject string, key []byte) ([]byte, error) {
	return seal(k.ring[k.master.ID], key, keyAAD(subject))
}

// unwrap decrypts a record's data key with the master key it names.
func (k *Keys) unwrap(rec Record) ([]byte, error) {
	aead, ok := k.ring[rec.MasterKeyID]
	if !ok {
		return nil, fmt.Errorf("%w %q (data key of subject %q); configure it as a previous master key", ErrUnknownMasterKey, rec.MasterKeyID, rec.Subject)
	}
	key, err := open(aead, rec.Wrapped, keyAAD(rec.Subject))
	if err != nil {
		return nil, fmt.Errorf("%w: data key of subject %q under master key %q", ErrCorrupt, rec.Subject, rec.MasterKeyID)
	}
	if len(key) != MasterKeySize {
		return nil, fmt.Errorf("%w: data key of subject %q is %d bytes", ErrCorrupt, rec.Subject, len(key))
	}
	return key, nil
}

// Forget deletes subject's data key for good, leaving a tombstone, and drops it from
// this process's cache. It is idempotent. See the package doc for other nodes.
func (k *Keys) Forget(ctx context.Context, subject string) error {
	if subject == "" {
		return ErrNoSubject
	}
	k.mu.Lock()
	delete(k.cache, subject)
	k.mu.Unlock()
	if err := k.table.Forget(ctx, subject); err != nil {
		return err
	}
	k.remember(subject, cached{forgotten: true})
	return nil
}

// RotateMaster re-wraps, in one transaction, every data key that is not wrapped by
// the current master key, and returns how many it re-wrapped. Every such key's
// master key must be among KeysConfig.Previous; otherwise nothing changes and the
// error says which key is missing. It is idempotent: a second run finds nothing.
func (k *Keys) RotateMaster(ctx context.Context) (int, error) {
	return k.table.Rewrap(ctx, k.master.ID, func(rec Record) ([]byte, error) {
		key, err := k.unwrap(rec)
		if err != nil {
			return nil, err
		}
		return k.wrap(rec.Subject, key)
	})
}

// seal encrypts plaintext with a random nonce, returning nonce || ciphertext.
func seal(aead cipher.AEAD, plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("shred: nonce: %w", err)
	}
	return aead.Seal(out, out, plaintext, aad), nil
}

// open reverses seal.
func open(aead cipher.AEAD, sealed, aad []byte) ([]byte, error) {
	n := aead.NonceSize()
	if len(sealed) < n+aead.Overhead() {
		return nil, errors.New("too short")
	}
	return aead.Open(nil, sealed[:n], sealed[n:], aad)
}
