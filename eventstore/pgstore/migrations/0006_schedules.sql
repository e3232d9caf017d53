-- Ringleader event store, version 6: scheduled commands.

-- One row per schedule (scheduler.Store): a command to dispatch once, at due_at, by
-- the ring owner of its partition; state says whether it is still pending or was
-- fired, failed or cancelled.
--
-- Before this version the scheduler package created the table and its index itself,
-- with these same definitions, when a node started. IF NOT EXISTS keeps this
-- migration working on a schema where such a node already did: the table is then
-- left as it is. The lock is the one those nodes took (pgstore.Setup, keyed by schema
-- and the quoted table name), so that one of them starting during this migration
-- waits for it instead of racing it (see migration 5).
SELECT pg_advisory_xact_lock(hashtextextended('ringleader.setup:' || current_schema() || ':"schedules"', 0));

CREATE TABLE IF NOT EXISTS schedules (
    schedule_id     text        PRIMARY KEY,
    partition       int         NOT NULL,
    command_type    text        NOT NULL,
    body            jsonb       NOT NULL,
    headers         jsonb       NOT NULL DEFAULT '{}',
    due_at          timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    state           text        NOT NULL CHECK (state IN ('pending', 'fired', 'failed', 'cancelled')),
    attempts        int         NOT NULL DEFAULT 0,
    last_error      text        NOT NULL DEFAULT '',
    fired_by        text        NOT NULL DEFAULT '',
    fired_at        timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- The Firer's question: which pending schedules of my partitions are due?
--
-- Not CREATE INDEX IF NOT EXISTS: PostgreSQL requires the table's owner for it even
-- when the index exists, and where nodes ran as another role than `node migrate`
-- (deploy/postgres-roles.sql) the nodes' role owns a schedules table they created.
-- Those nodes always created the index with the table, so it exists whenever the
-- table was not created just above.
DO $$
BEGIN
    IF to_regclass('schedules_pending_due') IS NULL THEN
        CREATE INDEX schedules_pending_due ON schedules (partition, next_attempt_at) WHERE state = 'pending';
    END IF;
END
$$;
