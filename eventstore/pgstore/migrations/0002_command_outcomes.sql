-- Ringleader event store, version 2: the outcomes of commands that appended nothing.

-- One row per command (by stream and Command-Id) whose answer appended no event: a
-- rejection (code 'rejected', message as the client saw it) or a success without
-- events (code ''). With the events table's command ids this gives every command id
-- exactly one outcome: an append of a command that has a row here is refused, and a
-- row is only written for a command with no events, while the stream is still at
-- stream_version. Writers of both take a transaction advisory lock per (stream,
-- command) first (see pgstore's outcome.go), so the two cannot race.
CREATE TABLE command_outcomes (
    stream_id      text        NOT NULL,
    command_id     text        NOT NULL,
    stream_version bigint      NOT NULL CHECK (stream_version >= 0),
    code           text        NOT NULL,
    message        text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream_id, command_id)
);
