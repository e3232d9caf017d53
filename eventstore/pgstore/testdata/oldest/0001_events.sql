-- TEST DATA, not a migration of this version: eventstore/pgstore/migrations/0001_events.sql
-- exactly as commit 0f7035cf1d2929c054c94e8ae8c0a64dfed51e15 ("eventstore: PostgreSQL
-- store with visibility watermark, conformance suite, pgtest helper") shipped it, the
-- oldest event store schema of this repository (`git log --follow --diff-filter=A --
-- eventstore/pgstore/migrations/0001_events.sql`); that commit had no other migration.
-- Commit f7eac1a rewrote migration 1 in place, so a database made at 0f7035c keeps
-- this layout (streams, the position sequence, events.tx_id, rl_append) under
-- version 1. migrate_test.go applies it, then today's migrations on top.

-- Ringleader event store, version 1. Applied inside the store's schema (search_path),
-- in one transaction, under the migration advisory lock.

-- One row a stream: its current version. Appends lock this row, which serialises
-- writers of one stream and lets the version check see the committed value.
CREATE TABLE streams (
    stream_id      text        PRIMARY KEY,
    stream_version bigint      NOT NULL CHECK (stream_version >= 0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Global positions. Only rl_append takes values from it, under a short lock, so that
-- position order equals transaction-id order (see rl_append and ReadAll).
CREATE SEQUENCE events_global_position_seq AS bigint;

CREATE TABLE events (
    global_position bigint      PRIMARY KEY,
    stream_id       text        NOT NULL,
    stream_version  bigint      NOT NULL CHECK (stream_version >= 1),
    event_id        uuid        NOT NULL UNIQUE,
    event_type      text        NOT NULL,
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- The appending transaction's id: readers of the global order only deliver events
    -- of transactions older than every transaction still running.
    tx_id           xid8        NOT NULL DEFAULT pg_current_xact_id(),
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

-- rl_append appends n events to a stream in the caller's transaction and returns the
-- first global position and first stream version given to them (the rest follow
-- contiguously) and the timestamp recorded.
--
-- p_expected: -1 any version, -2 stream exists, 0 no stream, n > 0 exactly n.
-- A failed expectation raises SQLSTATE RL001 with the actual version in DETAIL.
--
-- Why the lock: a sequence value is not commit order. Taking the transaction id and
-- the positions together under one advisory lock makes "lower transaction id" mean
-- "lower positions" for every append, so a reader that delivers only events of
-- transactions below pg_snapshot_xmin(pg_current_snapshot()) can never deliver a
-- position while a lower one may still commit. The lock is held for microseconds
-- (never across the commit) and released even if the block fails.
--
-- The same reasoning requires that a transaction's id is assigned inside the lock of
-- its first rl_append: an append in a transaction that had already written something
-- is refused (SQLSTATE RL002). Several rl_append calls in one transaction are fine.
CREATE FUNCTION rl_append(
    p_stream_id text,
    p_expected  bigint,
    p_event_ids uuid[],
    p_types     text[],
    p_data      jsonb[],
    p_metadata  jsonb[]
) RETURNS TABLE (first_position bigint, first_version bigint, recorded_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    n          bigint := cardinality(p_types);
    lock_class constant integer := 1380729932; -- 'RL' namespace for Ringleader's locks
    lock_obj   integer := ('events'::regclass::oid::bigint - 2147483648)::integer;
    tx         xid8;
    first_pos   bigint;
    cur_version    bigint;
    stamp      timestamptz := now();
BEGIN
    IF n IS NULL OR n = 0 THEN
        RAISE EXCEPTION 'no events to append' USING ERRCODE = '22023';
    END IF;

    tx := pg_current_xact_id_if_assigned();
    IF tx IS NOT NULL AND tx::text IS DISTINCT FROM current_setting('ringleader.append_xid', true) THEN
        RAISE EXCEPTION 'rl_append must be the first write of its transaction'
            USING ERRCODE = 'RL002',
                  HINT = 'append events before any other write in the transaction, or in a transaction of their own';
    END IF;

    PERFORM pg_advisory_lock(lock_class, lock_obj);
    BEGIN
        tx := pg_current_xact_id();
        first_pos := nextval('events_global_position_seq');
        IF n > 1 THEN
            PERFORM setval('events_global_position_seq', first_pos + n - 1);
        END IF;
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        PERFORM pg_advisory_unlock(lock_class, lock_obj);
        RAISE;
    END;
    PERFORM pg_advisory_unlock(lock_class, lock_obj);
    PERFORM set_config('ringleader.append_xid', tx::text, true);

    IF p_expected = 0 THEN
        INSERT INTO streams AS s (stream_id, stream_version) VALUES (p_stream_id, n)
        ON CONFLICT (stream_id) DO NOTHING;
        IF NOT FOUND THEN
            SELECT s.stream_version INTO cur_version FROM streams s WHERE s.stream_id = p_stream_id;
            RAISE EXCEPTION 'wrong expected version' USING ERRCODE = 'RL001', DETAIL = coalesce(cur_version, 0)::text;
        END IF;
        cur_version := 0;
    ELSIF p_expected = -1 THEN
        INSERT INTO streams AS s (stream_id, stream_version) VALUES (p_stream_id, n)
        ON CONFLICT (stream_id) DO UPDATE SET stream_version = s.stream_version + n, updated_at = now()
        RETURNING s.stream_version - n INTO cur_version;
    ELSE
        UPDATE streams s SET stream_version = s.stream_version + n, updated_at = now()
        WHERE s.stream_id = p_stream_id AND (p_expected = -2 OR s.stream_version = p_expected)
        RETURNING s.stream_version - n INTO cur_version;
        IF NOT FOUND THEN
            SELECT s.stream_version INTO cur_version FROM streams s WHERE s.stream_id = p_stream_id;
            RAISE EXCEPTION 'wrong expected version' USING ERRCODE = 'RL001', DETAIL = coalesce(cur_version, 0)::text;
        END IF;
    END IF;

    INSERT INTO events (global_position, stream_id, stream_version, event_id, event_type, data, metadata, created_at, tx_id)
    SELECT first_pos + i - 1, p_stream_id, cur_version + i, p_event_ids[i], p_types[i], p_data[i], p_metadata[i], stamp, tx
    FROM generate_series(1, n) AS i;

    RETURN QUERY SELECT first_pos, cur_version + 1, stamp;
END;
$$;
