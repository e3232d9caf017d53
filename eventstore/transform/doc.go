// Package transform decorates an eventstore.Store with Transforms that rewrite events
// on their way into the store (Append, AppendMany) and out of it (ReadStream, ReadAll,
// ReadCommandEvents), and optionally snapshots too. Upcasting (eventstore/upcast) and
// crypto-shredding (eventstore/shred) are Transforms.
//
//	store := transform.Wrap(pg, upcasts, shredder)
//
// On the write path the transforms run in the order given; on the read path in the
// reverse order, so each one reads back what it wrote. Append and AppendMany return
// the events with the Data the caller gave (plaintext, current shape) and the
// metadata the transforms added, not what was stored.
//
// The wrapper keeps the optional eventstore.BatchAppender capability of the store it
// wraps: Wrap returns a store that implements it exactly when the inner one does.
//
// Concurrency: the wrapper adds no state; it is as safe for concurrent use as the
// inner store and the transforms (which must be safe for concurrent use).
package transform
