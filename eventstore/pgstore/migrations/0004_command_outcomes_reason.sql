-- Ringleader event store, version 4: the reason of a recorded rejection.

-- The machine-readable reason the domain gave a rejection (aggregate.Rejection, the
-- wire reply's error.reason), so that a retry of the command gets the same reason as
-- the original; '' when the rejection had none, and for every row recorded before
-- this version.
ALTER TABLE command_outcomes ADD COLUMN reason text NOT NULL DEFAULT '';
