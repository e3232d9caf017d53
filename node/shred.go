package node

import (
	"context"
	"fmt"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore"
	"github.com/ringleader-go/ringleader/eventstore/shred"
	"github.com/ringleader-go/ringleader/eventstore/transform"
	"github.com/ringleader-go/ringleader/eventstore/upcast"
)

// transformStore wraps the raw store in the application's upcasters and
// crypto-shredding:
// every reader and writer but the projections' own SQL goes through it. The data keys
// live in PostgreSQL (pii_keys, in the store's schema) or, around a given non-Postgres
// store, in table (a fresh in-memory table when nil). Previous master keys are
// re-wrapped to the current one here, once per start (idempotent across nodes).
func (n *Node) transformStore(ctx context.Context, raw eventstore.Store, pg *pgstore.Store, table shred.Table) (eventstore.Store, error) {
	// Writes: stamp versions, then encrypt; reads: decrypt, then upcast.
	up := n.app.Upcasts
	if up == nil {
		up = upcast.New() // every event type at version 1
	}
	ts := []transform.Transform{up}
	if n.app.Shred != nil {
		keys, err := n.masterKeys(ctx, pg, table)
		if err != nil {
			return nil, err
		}
		sh, err := shred.New(n.app.Shred(keys))
		if err != nil {
			return nil, fmt.Errorf("node: crypto-shredding: %w", err)
		}
		ts = append(ts, sh)
	}
	return transform.Wrap(raw, ts...), nil
}

// masterKeys returns the data-key source, or nil (with a warning) when no master key
// is configured.
func (n *Node) masterKeys(ctx context.Context, pg *pgstore.Store, table shred.Table) (*shred.Keys, error) {
	spec, err := n.cfg.MasterKeyValue()
	if err != nil {
		return nil, err
	}
	if spec == "" {
		n.log.Warn().Msg("no master key (--master-key-file or RL_MASTER_KEY): events with personal data are refused")
		return nil, nil
	}
	master, err := shred.ParseMasterKey(spec)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	var previous []shred.MasterKey
	for _, p := range n.cfg.PreviousMasterKeys {
		m, err := shred.ParseMasterKey(p)
		if err != nil {
			return nil, fmt.Errorf("node: previous master key: %w", err)
		}
		previous = append(previous, m)
	}
	switch {
	case pg != nil:
		if table, err = shred.OpenPGTable(ctx, pg.Pool()); err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
	case table == nil:
		table = shred.NewMemTable()
	}
	keys, err := shred.NewKeys(shred.KeysConfig{Table: table, Master: master, Previous: previous})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if len(previous) > 0 {
		moved, err := keys.RotateMaster(ctx)
		if err != nil {
			return nil, fmt.Errorf("node: master key rotation: %w", err)
		}
		n.log.Info().Str("master_key", master.ID).Int("rewrapped", moved).Msg("data keys re-wrapped with the current master key")
	}
	n.log.Info().Str("master_key", master.ID).Int("previous", len(previous)).Msg("crypto-shredding on")
	return keys, nil
}
