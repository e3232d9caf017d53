// Package scheduler runs commands later: ScheduleOnce stores a command with the time
// it is due, Cancel withdraws it, and a Firer on every node dispatches the due
// commands it owns through the node's normal command path.
//
// # Storage
//
// Schedules live in PostgreSQL, table schedules of the event store's schema
// (created by Open, idempotently, under an advisory lock):
//
//	schedules(schedule_id text PK, partition int, command_type text, body jsonb,
//	          headers jsonb, due_at timestamptz, next_attempt_at timestamptz,
//	          state text, attempts int, last_error text, fired_by text,
//	          fired_at timestamptz, created_at timestamptz, updated_at timestamptz)
//
// A schedule is pending until it is fired (the command got a definite success, or
// was a duplicate of one that did), failed (the command was refused: rejected,
// invalid, unknown_command — retrying cannot help) or cancelled.
//
// MemStore keeps schedules in memory with the same behaviour (the package's tests
// run against both); a Firer takes either through the Storage interface.
//
// # Who fires what
//
// Schedule id s belongs to partition placement.StreamPartition(s, Partitions); the
// partition is the ring key PartitionKey(p) ("schedules#p"), so schedules spread over
// the nodes like handler partitions do and move with the ring. Each node's Firer
// polls only the due, pending schedules of the partitions it owns. When a node dies
// the ring gives its partitions to the others, whose Firers pick up whatever came due
// meanwhile.
//
// # Exactly-once effect
//
// Firing is at least once: a Firer dispatches, then marks the schedule fired; a crash
// between the two, or two nodes that briefly both own a partition, dispatch it twice.
// Every dispatch carries the schedule id as its Command-Id, so the aggregate applies
// it once and answers the duplicate with the original outcome.
//
// # Concurrency contract
//
// A Store is safe for concurrent use by any number of goroutines and processes. A
// Firer runs one loop goroutine (plus up to Concurrency dispatches at a time); Close
// stops it, waits for it and is idempotent.
package scheduler
