// Package handlers runs event handlers and PostgreSQL projections over the global
// order of the event store, partitioned and spread across the cluster.
//
// # Usage
//
// A node creates one Runner, registers every handler, starts it and keeps its
// ownership in step with the ring:
//
//	r, err := handlers.NewRunner(handlers.RunnerConfig{
//		Store: store, PG: store, NodeID: "n1", Logger: log,
//		Owns: func(key string) bool { return ring.Owner(key) == self },
//	})
//	err = r.Register(
//		handlers.Projection{Spec: handlers.Spec{Name: "accounts", Partitions: 4, Strong: true},
//			Setup: setup, Project: project, Reset: reset},
//		handlers.Handler{Spec: handlers.Spec{Name: "mailer", StartFrom: handlers.Current},
//			Handle: sendMail},
//	)
//	err = r.Start(ctx)
//	defer r.Close()
//	cluster.OnChange(func() { r.SetOwnership(func(key string) bool { return ring.Owner(key) == self }) })
//	dispatcher := aggregate.New(aggregate.Config{StrongConsistency: r, …})
//
// # Partitions
//
// A handler with Partitions K has partitions 0…K-1. Partition i is the ring key
// placement.HandlerPartitionKey(name, i) and receives the events of every stream s
// with placement.StreamPartition(s, K) == i, in global order and hence in stream
// order, up to BatchSize events per page. The runner has one reader of $all
// (eventstore.AllReader.ReadAll, whose visibility watermark guarantees that nothing
// is skipped) shared by all its partitions: it keeps the most recent events in
// memory and hands each partition its own; a partition far behind reads the store
// directly. A partition passes over other partitions' events without writing its
// checkpoint for them: it saves that progress with its next event's commit, after
// PollInterval idle, or when it stops here, so a restart may look at them again but
// never skips one. An idle partition sleeps until the store's append notification
// (eventstore.Notifier.SubscribeAppends, one subscription per runner) wakes it, with
// a slow safety poll (RunnerConfig.PollInterval, 1s). Wake-ups are at least
// RunnerConfig.ReadInterval (2ms) apart: the first append after a quiet spell wakes
// the partitions at once, later ones are read together at the interval's end. Events are shared between
// partitions: a handler must not modify an event's Data or Metadata.
//
// The checkpoint of partition i is named CheckpointName(name, i), "handler:<name>#<i>",
// holds the global position of the last event processed, and only moves forward by
// compare-and-set (Reset is the one exception). A StartFrom Current partition's first
// run stores the head position as its checkpoint.
//
// # Delivery guarantees
//
//   - Handler: at least once. A page's events are handled in order, then the
//     checkpoint advances to the page's end. After a crash, a lost lease or a move,
//     the events since the last checkpoint are delivered again. Without failures,
//     each event is delivered exactly once.
//   - Projection: exactly-once effect. A page's Project calls and the checkpoint
//     compare-and-set commit in one PostgreSQL transaction; a crash before the commit
//     rolls both back, and a second holder's transaction (during a split) fails its
//     compare-and-set and rolls back.
//   - A failure (error or panic from Handle/Project) goes to Spec.OnError: Retry the
//     same event after the returned delay, Skip it (its effect is lost; the
//     checkpoint passes it) or Stop the partition (state failed; Runner.Reset, or the
//     partition leaving this node and coming back, restarts it). Events of the page
//     before the failing one keep their effect.
//
// # Fencing
//
// The ring says who should run a partition; a Fence says who does. With PostgreSQL
// each running partition holds a session advisory lock,
// pg_try_advisory_lock(hashtextextended('<schema>.handler:<name>#<i>', 0)), on one
// dedicated lock connection per runner (not a pool connection). A partition that
// cannot take its lock waits (state waiting-for-lock) and retries every
// RunnerConfig.LockRetryInterval. The lock connection is pinged every LockHeartbeat;
// when it fails, every partition that held a lock on it is cancelled at once (its
// Handle/Project ctx ends) and goes back to waiting for the lock, on a new session.
// Side effects of Handlers are thus not doubled during a split, except for the event
// in progress when a lock is lost; projections never double, fenced by the
// checkpoint compare-and-set in their transaction. Without PostgreSQL a LocalFence
// excludes runners of one process that share it.
//
// # Strong consistency
//
// Runner implements aggregate.ConsistencyWaiter: WaitFor returns once every Strong
// handler's partition for the result's stream has its stored checkpoint at or past
// the result's last event, wherever that partition runs, or returns ctx's error.
// A stopped or failed partition therefore makes strong dispatches time out.
//
// # Concurrency contract
//
// Register must precede Start. SetOwnership, Status, Reset, WaitFor and
// WaitForPosition are safe for concurrent use from any goroutine once the runner is
// created. Each partition runs on one goroutine: Handle/Project calls for one
// partition never overlap and come in global order; different partitions and
// handlers run in parallel. Handle/Project's ctx ends when the partition's lock is
// lost or the runner closes; a partition no longer owned stops after its
// in-progress event (a projection: after its in-progress page). Observer methods are
// called from partition goroutines. Close is idempotent and returns after every
// partition goroutine has exited.
package handlers
