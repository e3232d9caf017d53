-- Ringleader event store, version 7: crypto-shredding's data keys.

-- One row per data subject (eventstore/shred.PGTable): its data key, encrypted by the
-- master key master_key_id, or a tombstone (no key, forgotten_at set) once the subject
-- is forgotten.
--
-- Before this version the shred package created the table itself, with this same
-- definition, when a node with a master key started. IF NOT EXISTS keeps this
-- migration working on a schema where such a node already did: the table is then
-- left as it is. The lock is the one those nodes took (pgstore.Setup, keyed by schema
-- and the table name, unquoted there), so that one of them starting during this
-- migration waits for it instead of racing it (see migration 5).
SELECT pg_advisory_xact_lock(hashtextextended('ringleader.setup:' || current_schema() || ':pii_keys', 0));

CREATE TABLE IF NOT EXISTS pii_keys (
    subject       text        PRIMARY KEY,
    master_key_id text,
    wrapped_key   bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    forgotten_at  timestamptz,
    CHECK ((forgotten_at IS NULL) = (wrapped_key IS NOT NULL)),
    CHECK ((master_key_id IS NULL) = (wrapped_key IS NULL))
);
