-- Ringleader event store, version 1. Applied inside the store's schema (search_path),
-- in one transaction, under the migration advisory lock.

-- Every event of every stream. (stream_id, stream_version) is unique and an append
-- only inserts version v+1 when version v exists, so versions are 1..n with no gap and
-- two writers expecting the same version cannot both succeed.
--
-- global_position = appending transaction id (xid8) * 65536 + index of the event in
-- that transaction. Positions therefore increase with transaction ids, and a reader
-- that only delivers positions below pg_snapshot_xmin(pg_current_snapshot()) * 65536
-- never delivers a position while a lower one may still commit: every transaction
-- still running has an id at or above that xmin. Positions have gaps; position >> 16
-- names the transaction that wrote the event.
CREATE TABLE events (
    global_position bigint      PRIMARY KEY,
    stream_id       text        NOT NULL,
    stream_version  bigint      NOT NULL CHECK (stream_version >= 1),
    event_id        uuid        NOT NULL UNIQUE,
    event_type      text        NOT NULL,
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream_id, stream_version)
);

-- Finds a command's events by its Command-Id (idempotent retries, audits).
CREATE INDEX events_command_id_idx ON events ((metadata ->> 'command_id'));

CREATE TABLE snapshots (
    stream_id      text        PRIMARY KEY,
    stream_version bigint      NOT NULL,
    schema_version integer     NOT NULL,
    snapshot_type  text        NOT NULL,
    data           jsonb       NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE checkpoints (
    name       text        PRIMARY KEY,
    position   bigint      NOT NULL CHECK (position >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
