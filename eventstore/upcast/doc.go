// Package upcast versions event types and turns old payloads into the current shape
// when they are read, leaving the stored events untouched.
//
// A Registry says, per event type, which version the code writes now and how to turn
// version n into n+1 (an upcaster). Wrapped around a store with
// transform.Wrap(store, registry), it stamps every appended event of a registered type
// with its current version in the metadata key MetaVersion, and on every read chains
// the upcasters from the stored version (an event without the key is version 1) up to
// the current one, updating MetaVersion in the event handed out:
//
//	r := upcast.New()
//	r.Current("AccountOpened", 3)
//	r.Add("AccountOpened", 1, func(d json.RawMessage) (json.RawMessage, error) { … }) // v1 → v2
//	r.Add("AccountOpened", 2, func(d json.RawMessage) (json.RawMessage, error) { … }) // v2 → v3
//	if err := r.Validate(); err != nil { … }                                           // a gap in a chain
//	store := transform.Wrap(pg, r)
//
// Reading an event whose chain has a gap fails with a *GapError; an event written by
// newer code than this one (a version above the current) with a *TooNewError.
//
// Concurrency: register everything before the registry is used; afterwards it is
// read-only and safe for concurrent use.
package upcast
