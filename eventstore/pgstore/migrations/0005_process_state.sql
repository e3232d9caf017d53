-- Ringleader event store, version 5: process managers' records.

-- One row per process instance (handlers/process.PGStore): its state, the journal of
-- commands it sent and still awaits (pending), their sequence number (seq), the
-- global position of the last event it handled and a version for compare-and-set
-- saves.
--
-- Before this version the process package created the table itself, with this same
-- definition, when a node started. IF NOT EXISTS keeps this migration working on a
-- schema where such a node already did: the table is then left as it is.
--
-- Nodes of those versions created it under a transaction advisory lock (pgstore.Setup,
-- keyed by schema and the quoted table name). Taking the same lock here makes a node of
-- the previous version starting during this migration (a rolling upgrade) wait for it
-- instead of racing it: two concurrent CREATE TABLE IF NOT EXISTS of one table can
-- fail with a unique violation in PostgreSQL's catalog.
SELECT pg_advisory_xact_lock(hashtextextended('ringleader.setup:' || current_schema() || ':"process_state"', 0));

CREATE TABLE IF NOT EXISTS process_state (
    manager       text        NOT NULL,
    process_id    text        NOT NULL,
    state         jsonb       NOT NULL,
    pending       jsonb       NOT NULL DEFAULT '[]',
    seq           int         NOT NULL DEFAULT 0,
    last_position bigint      NOT NULL,
    status        text        NOT NULL,
    version       bigint      NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (manager, process_id)
);
