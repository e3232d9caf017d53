package placement

import (
	"strconv"

	"github.com/cespare/xxhash/v2"
)

// HandlerPartitionKey returns the ring key of partition i of the event
// handler called name: name + "#" + decimal i, e.g. "projection#3". Its owner
// is ring.Owner(HandlerPartitionKey(name, i)).
func HandlerPartitionKey(name string, i int) string {
	return name + "#" + strconv.Itoa(i)
}

// StreamPartition returns which of an event handler's k partitions receives
// the events of streamID: XXH64 (seed 0) of the stream id's bytes, as an
// unsigned 64-bit integer, modulo k. In Go:
//
//	xxhash.Sum64String(streamID) % uint64(k)   // github.com/cespare/xxhash/v2
//
// The same in Python: xxhash.xxh64_intdigest(stream_id.encode()) % k; in
// PostgreSQL there is no built-in XXH64, so compute it in the application.
// This function is part of the storage contract (checkpoints are kept per
// partition) and will not change. It panics if k < 1.
func StreamPartition(streamID string, k int) int {
	if k < 1 {
		panic("placement: StreamPartition: k must be ≥ 1, got " + strconv.Itoa(k))
	}
	return int(xxhash.Sum64String(streamID) % uint64(k))
}
