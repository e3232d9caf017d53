-- Least-privilege PostgreSQL roles for a Ringleader event store in schema "ringleader".
--
--   ringleader_migrator  owns the schema and every table of the migrations; runs `node migrate`
--   ringleader_writer    the nodes: append events (never UPDATE / DELETE / TRUNCATE them),
--                        keep snapshots, checkpoints, keys, process state, projections
--   ringleader_reader    read-only: reporting, projections' consumers, ad-hoc SQL
--
-- Run it as a superuser (or a role with CREATEROLE) in the application database, then
-- set passwords (\password ringleader_writer) or use certificate authentication, and
-- connect with sslmode=verify-full (see docs/security.md#postgresql). Procedure (every step idempotent):
--   1. psql -f postgres-roles.sql         (roles, the schema, grants on what exists)
--   2. node migrate --dsn "postgres://ringleader_migrator@db/app?sslmode=verify-full"
--   3. psql -f postgres-roles.sql again   (after every release that migrates: it
--      makes the new tables' privileges right, events append-only included)
--   4. nodes run with --dsn "postgres://ringleader_writer@db/app?sslmode=verify-full"
-- deploy/roles_test.go applies this file to a scratch schema of the test database and
-- checks each role can do what it needs and nothing more.

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ringleader_migrator') THEN
    CREATE ROLE ringleader_migrator LOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ringleader_writer') THEN
    CREATE ROLE ringleader_writer LOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ringleader_reader') THEN
    CREATE ROLE ringleader_reader LOGIN;
  END IF;
END
$$;

CREATE SCHEMA IF NOT EXISTS ringleader AUTHORIZATION ringleader_migrator;
ALTER SCHEMA ringleader OWNER TO ringleader_migrator;

-- Nodes run the migration check at start-up (CREATE SCHEMA / TABLE IF NOT EXISTS, which
-- PostgreSQL checks for privileges before it sees they exist) and create their own
-- projection tables, so they may create objects in the schema. Every other table
-- (events, snapshots, checkpoints, command_outcomes, schema_migrations, process_state,
-- schedules, pii_keys) comes from the migrations and stays the migrator's: the writer
-- cannot alter or grant on them.
DO $$
BEGIN
  EXECUTE format('GRANT CREATE ON DATABASE %I TO ringleader_migrator, ringleader_writer', current_database());
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO ringleader_migrator, ringleader_writer, ringleader_reader', current_database());
END
$$;
GRANT USAGE, CREATE ON SCHEMA ringleader TO ringleader_writer;
GRANT USAGE ON SCHEMA ringleader TO ringleader_reader;

-- Before migrations 5-7 nodes created process_state, schedules and pii_keys themselves,
-- so where they ran as the writer, the writer owns those tables. Hand them to the
-- migrator like the rest, so that the writer cannot alter or drop them and later
-- migrations can change them; the grants below give the writer its rows back.
DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['process_state', 'schedules', 'pii_keys'] LOOP
    IF to_regclass(format('ringleader.%I', t)) IS NOT NULL THEN
      EXECUTE format('ALTER TABLE ringleader.%I OWNER TO ringleader_migrator', t);
    END IF;
  END LOOP;
END
$$;

-- The writer: everything it needs on the tables that exist...
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ringleader TO ringleader_writer;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ringleader TO ringleader_writer;
-- ...but events are append-only, and schema_migrations is the migrator's record
-- (guarded: on the first run, before `node migrate`, the tables do not exist yet).
DO $$
BEGIN
  IF to_regclass('ringleader.events') IS NOT NULL THEN
    REVOKE UPDATE, DELETE, TRUNCATE ON ringleader.events FROM ringleader_writer;
  END IF;
  IF to_regclass('ringleader.schema_migrations') IS NOT NULL THEN
    REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ringleader.schema_migrations FROM ringleader_writer;
  END IF;
END
$$;

-- The reader sees every table, now and later (the writer's projection tables included).
GRANT SELECT ON ALL TABLES IN SCHEMA ringleader TO ringleader_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE ringleader_migrator IN SCHEMA ringleader GRANT SELECT ON TABLES TO ringleader_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE ringleader_migrator IN SCHEMA ringleader GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ringleader_writer;
ALTER DEFAULT PRIVILEGES FOR ROLE ringleader_writer IN SCHEMA ringleader GRANT SELECT ON TABLES TO ringleader_reader;
