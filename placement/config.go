package placement

import (
	"errors"
	"fmt"
	"math"
)

// Defaults applied by Config to zero-valued fields. They match the defaults of
// github.com/buraksezer/consistent.
const (
	// DefaultPartitions is the default number of partitions. A prime spreads
	// keys more evenly under the modulo.
	DefaultPartitions = 271
	// DefaultReplicationFactor is the default number of virtual nodes per member.
	DefaultReplicationFactor = 20
	// DefaultLoad is the default load factor: no member owns more than
	// ceil(floor(Partitions/N) × Load) partitions.
	DefaultLoad = 1.25
)

// Limits enforced by Config.Validate.
const (
	// MaxPartitions bounds Config.Partitions.
	MaxPartitions = 1 << 16
	// MinReplicationFactor is the smallest accepted Config.ReplicationFactor.
	// consistent v0.10.0 walks at most N×ReplicationFactor−1 virtual nodes
	// when placing a partition, so with one virtual node per member it can
	// skip the only member with room and panic (a single member always does).
	MinReplicationFactor = 2
	// MaxReplicationFactor bounds Config.ReplicationFactor.
	MaxReplicationFactor = 1024
)

// Config shapes a Ring. The zero value is valid and means all defaults.
// Every node of a cluster must use the same Config: it is part of
// Ring.Fingerprint.
type Config struct {
	// Partitions is the fixed number of partitions keys hash into.
	// Zero means DefaultPartitions (271). Changing it re-maps almost every
	// key, so it is a cluster-wide, set-once value. It also caps the cluster
	// size: a ring cannot have more members than partitions.
	Partitions int

	// ReplicationFactor is the number of virtual nodes each member gets on
	// the hash circle; more gives a smoother spread and costs build time.
	// Zero means DefaultReplicationFactor (20). Minimum MinReplicationFactor.
	ReplicationFactor int

	// Load is the bounded-load factor, at least 1: a member owns at most
	// ceil(floor(Partitions/N) × Load) partitions. Lower is more even but
	// moves more partitions on membership changes, and New fails with a
	// *CapacityError when N members cannot hold every partition. Only the
	// maximum is bounded: with the defaults and up to 10 members a member can
	// own as few as half the mean, with 25 members a third (see TestBalance).
	// Zero means DefaultLoad (1.25).
	Load float64
}

// DefaultConfig returns a Config with every field set to its default.
func DefaultConfig() Config {
	return Config{
		Partitions:        DefaultPartitions,
		ReplicationFactor: DefaultReplicationFactor,
		Load:              DefaultLoad,
	}
}

// withDefaults returns c with zero fields replaced by their defaults.
func (c Config) withDefaults() Config {
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = DefaultReplicationFactor
	}
	if c.Load == 0 {
		c.Load = DefaultLoad
	}
	return c
}

// Validate reports every problem with c at once (joined with errors.Join),
// each wrapping ErrInvalidConfig. Zero fields are valid: they mean the default.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Partitions < 1 || c.Partitions > MaxPartitions {
		errs = append(errs, fmt.Errorf("%w: Partitions must be in [1, %d], got %d",
			ErrInvalidConfig, MaxPartitions, c.Partitions))
	}
	if c.ReplicationFactor < MinReplicationFactor || c.ReplicationFactor > MaxReplicationFactor {
		errs = append(errs, fmt.Errorf("%w: ReplicationFactor must be in [%d, %d], got %d",
			ErrInvalidConfig, MinReplicationFactor, MaxReplicationFactor, c.ReplicationFactor))
	}
	if math.IsNaN(c.Load) || math.IsInf(c.Load, 0) || c.Load < 1 {
		errs = append(errs, fmt.Errorf("%w: Load must be a finite number ≥ 1, got %v",
			ErrInvalidConfig, c.Load))
	}
	return errors.Join(errs...)
}

// maxPerMember is consistent v0.10.0's per-member cap for n members,
// computed exactly as its averageLoad does (note the integer division).
func (c Config) maxPerMember(n int) int {
	if n == 0 {
		return 0
	}
	return int(math.Ceil(float64(c.Partitions/n) * c.Load))
}
