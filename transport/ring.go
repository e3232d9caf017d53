package transport

// RingAnnouncement is what nodes tell clients about the cluster's ring, so that a
// client can send each command straight to the node that owns its aggregate (see
// WithRouter and package routing). A node answers requests on RingSubject with its
// current ring and publishes the new one on RingChangedSubject whenever its
// membership changes. The ring is rebuilt from Members and the placement settings
// with package placement; Fingerprint says whether the rebuilt ring is the node's.
type RingAnnouncement struct {
	// Node is the node that sent the announcement.
	Node string `json:"node"`
	// Fingerprint identifies the ring (placement.Ring.Fingerprint).
	Fingerprint string `json:"fingerprint"`
	// Partitions, ReplicationFactor and Load are the ring's placement.Config.
	Partitions        int     `json:"partitions"`
	ReplicationFactor int     `json:"replication_factor"`
	Load              float64 `json:"load"`
	// Members are the ids of the ring's members.
	Members []string `json:"members"`
}

// RingSubject is where nodes under prefix answer requests for their current ring
// (one node of the queue group answers).
func RingSubject(prefix string) string { return prefix + ".ring" }

// RingChangedSubject is where every node under prefix publishes its new ring after a
// membership change.
func RingChangedSubject(prefix string) string { return prefix + ".ring.changed" }
