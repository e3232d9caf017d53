-- Ringleader event store, version 3: finding old command outcomes.

-- PruneOutcomes (a node's --outcome-retention) deletes the outcomes recorded before a
-- point in time; this index finds them without reading the whole table.
CREATE INDEX command_outcomes_created_at_idx ON command_outcomes (created_at);
