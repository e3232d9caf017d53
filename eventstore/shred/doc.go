// Package shred implements crypto-shredding: personal fields of events are stored
// encrypted with a key of their own per data subject (a person, an account), and
// forgetting the subject deletes that key. The events stay in their streams; reading
// them afterwards yields a clear "forgotten" value in place of the data, so
// aggregates, handlers and projections keep working.
//
// # Marking
//
// A Rule names an event type's personal top-level JSON fields and the field holding
// its subject:
//
//	shred.Rule{EventType: "AccountOpened", SubjectField: "account_number", SubjectPrefix: "account:",
//		Fields: []shred.Field{{Name: "holder_name"}}}
//
// An event with at least one personal field present (and not null) is written with
// each such field replaced by {"$pii": "v1:<base64 of nonce and AES-256-GCM
// ciphertext>"}, the subject in the metadata key MetaSubject, and the field's plain
// JSON value as the plaintext. The GCM additional data binds the ciphertext to its
// subject and field name, so a value moved to another event, field or subject does
// not decrypt. Reading decrypts every marked top-level field of an event carrying
// MetaSubject (whatever the current rules say, so changing a rule never strands old
// data). An event without MetaSubject costs one map lookup.
//
// # Forgotten value
//
// When the subject's key is gone, each marked field reads as its Field.Forgotten
// JSON value (default the string Forgotten, "[forgotten]"), and the metadata key
// MetaForgotten lists the fields that were replaced. Choose a Forgotten value that
// the field's Go type can decode (e.g. 0 for a number).
//
// # Keys
//
// Keys hands out per-subject AES-256 data keys. They are stored in a Table (PGTable
// in PostgreSQL, MemTable for tests) wrapped, i.e. AES-256-GCM encrypted, by a
// master key that has an id. Forget replaces the subject's row with a tombstone: the
// key is gone for good, and no new key is made for a forgotten subject (recording
// new personal data about it fails with ErrForgotten). A subject without any row
// whose events carry encrypted values also reads as forgotten (an operator may have
// deleted rows by hand).
//
// Unwrapped keys are cached in memory for KeysConfig.CacheTTL (default 5 s).
// Forget drops the key from this process's cache at once; another node that read the
// key shortly before may keep decrypting for up to the TTL. Forgotten subjects are
// cached for good (a tombstone never comes back).
//
// # Master key rotation
//
// Keys wraps new data keys with KeysConfig.Master and unwraps with it or any of
// KeysConfig.Previous. Keys.RotateMaster re-wraps every data key not wrapped by the
// current master in one transaction. The node does that at start-up when previous
// master keys are configured; docs/crypto-shredding.md gives the rolling procedure.
//
// # Snapshots
//
// With Config.SnapshotSubject, a snapshot of a subject's stream is stored encrypted
// as a whole with the subject's key when the subject has one. After Forget it cannot
// be read (the aggregate is rebuilt from its events, which read as forgotten), and a
// live aggregate that still holds plaintext cannot save a new snapshot (ErrForgotten).
//
// Concurrency: Keys, the tables and Shredder are safe for concurrent use.
package shred
