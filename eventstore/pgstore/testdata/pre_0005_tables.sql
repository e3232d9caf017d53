-- TEST DATA, not a migration: the tables that nodes created themselves, with CREATE
-- TABLE IF NOT EXISTS at start-up, before migrations 5-7 took them over. The
-- statements are those of handlers/process/pgstore.go (process_state),
-- scheduler/store.go (schedules and its index) and eventstore/shred/pgtable.go
-- (pii_keys) at commit 2786fb8af74169751c1e575c008b4e70225b9df4, the last one before
-- migration 5; their definitions never changed since the packages were added.
-- migrate_test.go runs them, as such a node did, in the store's schema (search_path).

CREATE TABLE IF NOT EXISTS "process_state" (
	manager       text        NOT NULL,
	process_id    text        NOT NULL,
	state         jsonb       NOT NULL,
	pending       jsonb       NOT NULL DEFAULT '[]',
	seq           int         NOT NULL DEFAULT 0,
	last_position bigint      NOT NULL,
	status        text        NOT NULL,
	version       bigint      NOT NULL,
	updated_at    timestamptz NOT NULL,
	PRIMARY KEY (manager, process_id));

CREATE TABLE IF NOT EXISTS "schedules" (
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
	updated_at      timestamptz NOT NULL DEFAULT now());
CREATE INDEX IF NOT EXISTS schedules_pending_due ON "schedules" (partition, next_attempt_at) WHERE state = 'pending';

CREATE TABLE IF NOT EXISTS pii_keys (
	subject       text        PRIMARY KEY,
	master_key_id text,
	wrapped_key   bytea,
	created_at    timestamptz NOT NULL DEFAULT now(),
	forgotten_at  timestamptz,
	CHECK ((forgotten_at IS NULL) = (wrapped_key IS NOT NULL)),
	CHECK ((master_key_id IS NULL) = (wrapped_key IS NULL)));
