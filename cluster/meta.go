package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hashicorp/memberlist"

	"github.com/ringleader-go/ringleader/placement"
)

// MaxMetaSize is the largest node meta memberlist will gossip (bytes). A
// Meta's JSON must stay 15 bytes below it: that room carries the leave
// intent.
const MaxMetaSize = memberlist.MetaMaxSize

// ErrMetaTooLarge is returned (wrapped, with the sizes) when a Meta's JSON
// encoding exceeds MaxMetaSize.
var ErrMetaTooLarge = errors.New("cluster: node meta too large")

// Meta is what every node gossips about itself. It travels as JSON in the
// memberlist node metadata and reaches other nodes as placement.Member.Meta;
// DecodeMeta reads it back.
type Meta struct {
	// NodeID repeats the memberlist node name, so a Meta is self-describing.
	NodeID string `json:"node_id"`
	// AdminAddr is the host:port of the node's admin HTTP listener.
	AdminAddr string `json:"admin,omitempty"`
	// Version is the node's build version.
	Version string `json:"version,omitempty"`
}

// wireMeta is what is actually gossiped: Meta plus the leave intent a node
// announces just before it leaves, so the others can tell a graceful leave
// from a failure (memberlist's leave callback does not say which it was).
// Members and OnChange strip it again.
type wireMeta struct {
	Meta
	Leaving bool `json:"leaving,omitempty"`
}

// leavingOverhead is what the leave intent adds to the encoded size.
const leavingOverhead = len(`,"leaving":true`)

func (m Meta) encode() ([]byte, error) {
	return wireMeta{Meta: m}.encode()
}

func (w wireMeta) encode() ([]byte, error) {
	b, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("cluster: encode meta: %w", err)
	}
	if limit := MaxMetaSize - leavingOverhead; !w.Leaving && len(b) > limit {
		return nil, fmt.Errorf("%w: %d bytes of JSON, limit %d (shorten AdminAddr or Version)", ErrMetaTooLarge, len(b), limit)
	}
	return b, nil
}

// leaving reports whether gossiped meta carries the leave intent, and
// returns the meta without it.
func leaving(raw []byte) (bool, []byte) {
	if !bytes.Contains(raw, []byte(`"leaving"`)) {
		return false, raw
	}
	var w wireMeta
	if err := json.Unmarshal(raw, &w); err != nil || !w.Leaving {
		return false, raw
	}
	clean, err := json.Marshal(w.Meta)
	if err != nil {
		return true, raw
	}
	return true, clean
}

// DecodeMeta decodes the Meta a member gossips. It fails if m.Meta is not a
// JSON-encoded Meta or names a different node than m.ID.
func DecodeMeta(m placement.Member) (Meta, error) {
	var meta Meta
	if err := json.Unmarshal([]byte(m.Meta), &meta); err != nil {
		return Meta{}, fmt.Errorf("cluster: decode meta of member %q: %w", m.ID, err)
	}
	if meta.NodeID != m.ID {
		return Meta{}, fmt.Errorf("cluster: meta of member %q names node %q", m.ID, meta.NodeID)
	}
	return meta, nil
}
