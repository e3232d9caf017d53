// Package config loads a node's configuration from, in rising precedence, built-in
// defaults, an optional JSON file (--config / RL_CONFIG), RL_* environment variables
// and command-line flags, and validates it with messages that say what to fix.
//
// Every setting has one name in three spellings: the flag --gossip-addr, the
// environment variable RL_GOSSIP_ADDR and the file key "gossip_addr".
package config

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Cluster modes.
const (
	// ClusterGossip: nodes find each other with memberlist and split ownership on a ring.
	ClusterGossip = "gossip"
	// ClusterNone: no gossip; every node owns every aggregate and the event store's
	// optimistic concurrency arbitrates ("multi-node, but not distributed").
	ClusterNone = "none"
)

// Config is everything a node needs. The zero value is not valid; use Load, or
// Defaults and then set fields.
type Config struct {
	// NodeID names the node in the cluster, in replies and in logs. Default: the host name.
	NodeID string `json:"node_id"`
	// NATSURLs are the NATS servers to connect to. Default nats://127.0.0.1:4222.
	NATSURLs []string `json:"nats"`
	// Prefix is the NATS subject prefix: commands arrive on <prefix>.cmd.<Type>. Default "rl".
	Prefix string `json:"prefix"`
	// DSN is the PostgreSQL connection string of the event store. Required.
	DSN string `json:"dsn"`
	// Schema holds the event store's tables. Default "ringleader".
	Schema string `json:"schema"`
	// Cluster is ClusterGossip (default) or ClusterNone.
	Cluster string `json:"cluster"`
	// GossipAddr is the host:port memberlist binds (TCP and UDP). Default 127.0.0.1:7946.
	GossipAddr string `json:"gossip_addr"`
	// AdvertiseAddr is the host:port other nodes should use, if not GossipAddr.
	AdvertiseAddr string `json:"advertise_addr"`
	// Seeds are host:port gossip addresses of other nodes to join.
	Seeds []string `json:"seeds"`
	// GossipKey encrypts gossip: base64 of 16, 24 or 32 bytes. Empty: no encryption.
	GossipKey string `json:"gossip_key"`
	// GossipKeysExtra are further gossip keys (base64 each) that decrypt but never
	// encrypt: the memberlist keyring holds GossipKey as its primary key and these as
	// secondary ones, so keys can be rotated without a cluster split (docs/security.md,
	// "Rotating the gossip key"). They need GossipKey.
	GossipKeysExtra []string `json:"gossip_keys_extra"`
	// GossipAllowedCIDRs, if set, restricts the source networks that may gossip with
	// this node (e.g. 10.0.0.0/8). Empty: any.
	GossipAllowedCIDRs []string `json:"gossip_allowed_cidrs"`
	// ClusterLabel keeps clusters that share a network apart. Optional.
	ClusterLabel string `json:"cluster_label"`
	// AdminAddr is where the admin HTTP listener (/healthz, /cluster, /metrics) binds.
	// Default 127.0.0.1:8080; empty string in a file or "off" disables it.
	AdminAddr string `json:"admin_addr"`
	// AdminToken, if set, is the bearer token every admin request but /healthz must
	// carry (Authorization: Bearer <token>). Prefer AdminTokenFile or the environment
	// (a flag shows in ps). Empty (and no file): no token is required.
	AdminToken string `json:"admin_token"`
	// AdminTokenFile names a file holding AdminToken (surrounding space ignored).
	AdminTokenFile string `json:"admin_token_file"`
	// NATSCreds names a NATS credentials file (JWT and nkey seed, nats.UserCredentials).
	NATSCreds string `json:"nats_creds"`
	// NATSNkey names a file holding an nkey seed (nats.NkeyOptionFromSeed).
	NATSNkey string `json:"nats_nkey"`
	// NATSTLSCA names a PEM file of CAs that NATS servers' certificates must chain to.
	NATSTLSCA string `json:"nats_tls_ca"`
	// NATSTLSCert and NATSTLSKey name the PEM client certificate and key for NATS
	// (mutual TLS); set both or neither.
	NATSTLSCert string `json:"nats_tls_cert"`
	NATSTLSKey  string `json:"nats_tls_key"`
	// CommandTimeout is how long a command may take when the request names no Timeout. Default 5s.
	CommandTimeout time.Duration `json:"command_timeout"`
	// MaxBodyBytes limits a command request's body. Default 1 MiB.
	MaxBodyBytes int `json:"max_body_bytes"`
	// MaxLiveAggregates caps the aggregates kept in memory (LRU passivation). Default 10000.
	MaxLiveAggregates int `json:"max_live_aggregates"`
	// MaxAppendBatch caps how many aggregates' appends share one group commit (one
	// transaction). Default 256; 1 turns group commit off.
	MaxAppendBatch int `json:"max_append_batch"`
	// AppendBatchesInFlight is how many appends or group commits a node has out at
	// once; appends arriving meanwhile wait for the next batch. Default 1 (biggest
	// batches); raise it when the database has cores to spare for concurrent commits.
	AppendBatchesInFlight int `json:"append_batches_in_flight"`
	// ShutdownTimeout bounds a graceful shutdown's wait for in-flight commands. Default 10s.
	ShutdownTimeout time.Duration `json:"shutdown_timeout"`
	// SchedulerPoll is the longest the scheduler waits between looks for due
	// schedules (it also wakes for the next one it knows of and on ring changes).
	// Default 1s; between 10ms and 1h.
	SchedulerPoll time.Duration `json:"scheduler_poll"`
	// HandlerReadInterval is the least time between two wake-ups of the node's handler
	// partitions by appends (handlers.RunnerConfig.ReadInterval): appends within it
	// are read together. Default 2ms; 0 wakes them for every append; at most 1s.
	HandlerReadInterval time.Duration `json:"handler_read_interval"`
	// OutcomeRetention is how long the recorded outcomes of commands that appended
	// nothing (rejections) are kept; older ones are deleted, and a retry of such a
	// command after that is decided again. Default 0: kept for good. At least 1m.
	OutcomeRetention time.Duration `json:"outcome_retention"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `json:"log_level"`
	// LogFormat is json (default) or console.
	LogFormat string `json:"log_format"`
	// MasterKey is the crypto-shredding master key, "<id>:<base64 of 32 bytes>": it
	// wraps the per-subject keys of personal data. Prefer MasterKeyFile or the
	// environment (a flag shows in ps). Empty (and no file): personal data is refused.
	MasterKey string `json:"master_key"`
	// MasterKeyFile names a file holding MasterKey (surrounding space ignored).
	MasterKeyFile string `json:"master_key_file"`
	// PreviousMasterKeys are older master keys ("<id>:<base64>" each), still accepted
	// for unwrapping; at start-up the node re-wraps every data key still under one of
	// them with MasterKey (rotation: docs/crypto-shredding.md). Optional.
	PreviousMasterKeys []string `json:"previous_master_keys"`
	// App holds the values of the application's own settings (the ones given to
	// Load), which the node hands to the application.
	App Values `json:"-"`
}

// Defaults returns the configuration a node runs with when nothing is set (DSN
// excepted: it has no sensible default).
func Defaults() Config {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	return Config{
		NodeID:                host,
		NATSURLs:              []string{"nats://127.0.0.1:4222"},
		Prefix:                "rl",
		Schema:                "ringleader",
		Cluster:               ClusterGossip,
		GossipAddr:            "127.0.0.1:7946",
		AdminAddr:             "127.0.0.1:8080",
		CommandTimeout:        5 * time.Second,
		MaxBodyBytes:          1 << 20,
		MaxLiveAggregates:     10_000,
		MaxAppendBatch:        256,
		AppendBatchesInFlight: 1,
		ShutdownTimeout:       10 * time.Second,
		SchedulerPoll:         time.Second,
		HandlerReadInterval:   2 * time.Millisecond,
		LogLevel:              "info",
		LogFormat:             "json",
	}
}

// setting binds one setting's flag, environment variable and parser.
type setting struct {
	name  string // flag name; env is RL_ + upper snake case
	usage string
	field
}

// field reads and writes one setting's value in a Config, as text.
type field struct {
	set func(c *Config, v string) error
	get func(c *Config) string
}

func (s setting) env() string { return envName(s.name) }

// envName is the environment variable of the setting whose flag is name.
func envName(name string) string {
	return "RL_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

func settings() []setting {
	str := func(f func(*Config) *string) field {
		return field{
			set: func(c *Config, v string) error { *f(c) = v; return nil },
			get: func(c *Config) string { return *f(c) },
		}
	}
	list := func(f func(*Config) *[]string) field {
		return field{
			set: func(c *Config, v string) error { *f(c) = splitList(v); return nil },
			get: func(c *Config) string { return strings.Join(*f(c), ",") },
		}
	}
	dur := func(f func(*Config) *time.Duration) field {
		return field{
			set: func(c *Config, v string) error {
				d, err := time.ParseDuration(v)
				if err != nil {
					return fmt.Errorf("%q is not a duration such as 5s or 500ms", v)
				}
				*f(c) = d
				return nil
			},
			get: func(c *Config) string { return f(c).String() },
		}
	}
	num := func(f func(*Config) *int) field {
		return field{
			set: func(c *Config, v string) error {
				n, err := strconv.Atoi(v)
				if err != nil {
					return fmt.Errorf("%q is not a whole number", v)
				}
				*f(c) = n
				return nil
			},
			get: func(c *Config) string { return strconv.Itoa(*f(c)) },
		}
	}
	return []setting{
		{"node-id", "unique name of this node", str(func(c *Config) *string { return &c.NodeID })},
		{"nats", "comma-separated NATS server URLs", list(func(c *Config) *[]string { return &c.NATSURLs })},
		{"prefix", "NATS subject prefix", str(func(c *Config) *string { return &c.Prefix })},
		{"dsn", "PostgreSQL DSN of the event store (required)", str(func(c *Config) *string { return &c.DSN })},
		{"schema", "PostgreSQL schema of the event store", str(func(c *Config) *string { return &c.Schema })},
		{"cluster", "gossip (memberlist + ring) or none (every node owns everything)", str(func(c *Config) *string { return &c.Cluster })},
		{"gossip-addr", "host:port for gossip (TCP and UDP)", str(func(c *Config) *string { return &c.GossipAddr })},
		{"advertise-addr", "host:port other nodes reach this node's gossip on", str(func(c *Config) *string { return &c.AdvertiseAddr })},
		{"seeds", "comma-separated host:port gossip addresses to join", list(func(c *Config) *[]string { return &c.Seeds })},
		{"gossip-key", "base64 key (16, 24 or 32 bytes) encrypting gossip", str(func(c *Config) *string { return &c.GossipKey })},
		{"gossip-keys-extra", "comma-separated further base64 gossip keys that decrypt only (key rotation)", list(func(c *Config) *[]string { return &c.GossipKeysExtra })},
		{"gossip-allowed-cidrs", "comma-separated networks allowed to gossip with this node (default any)", list(func(c *Config) *[]string { return &c.GossipAllowedCIDRs })},
		{"cluster-label", "label that keeps clusters on one network apart", str(func(c *Config) *string { return &c.ClusterLabel })},
		{"admin-addr", "host:port of the admin HTTP listener, or off", str(func(c *Config) *string { return &c.AdminAddr })},
		{"admin-token", "bearer token required by the admin listener except /healthz (prefer the env or a file)", str(func(c *Config) *string { return &c.AdminToken })},
		{"admin-token-file", "file holding the admin bearer token", str(func(c *Config) *string { return &c.AdminTokenFile })},
		{"nats-creds", "NATS credentials file (JWT + nkey seed)", str(func(c *Config) *string { return &c.NATSCreds })},
		{"nats-nkey", "file holding a NATS nkey seed", str(func(c *Config) *string { return &c.NATSNkey })},
		{"nats-tls-ca", "PEM file of CAs for the NATS servers' certificates", str(func(c *Config) *string { return &c.NATSTLSCA })},
		{"nats-tls-cert", "PEM client certificate for NATS (with --nats-tls-key)", str(func(c *Config) *string { return &c.NATSTLSCert })},
		{"nats-tls-key", "PEM client key for NATS (with --nats-tls-cert)", str(func(c *Config) *string { return &c.NATSTLSKey })},
		{"command-timeout", "default command timeout", dur(func(c *Config) *time.Duration { return &c.CommandTimeout })},
		{"max-body-bytes", "largest command body accepted", num(func(c *Config) *int { return &c.MaxBodyBytes })},
		{"max-live-aggregates", "aggregates kept in memory at most", num(func(c *Config) *int { return &c.MaxLiveAggregates })},
		{"max-append-batch", "appends of different aggregates one group commit carries at most (1: no group commit)", num(func(c *Config) *int { return &c.MaxAppendBatch })},
		{"append-batches-in-flight", "appends or group commits a node has out at once", num(func(c *Config) *int { return &c.AppendBatchesInFlight })},
		{"shutdown-timeout", "how long a graceful shutdown waits for in-flight commands", dur(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
		{"scheduler-poll", "longest wait between the scheduler's looks for due schedules", dur(func(c *Config) *time.Duration { return &c.SchedulerPoll })},
		{"handler-read-interval", "least time between handler wake-ups by appends (0: every append)", dur(func(c *Config) *time.Duration { return &c.HandlerReadInterval })},
		{"outcome-retention", "how long rejections of commands with a Command-Id stay final (0: for good)", dur(func(c *Config) *time.Duration { return &c.OutcomeRetention })},
		{"log-level", "debug, info, warn or error", str(func(c *Config) *string { return &c.LogLevel })},
		{"log-format", "json or console", str(func(c *Config) *string { return &c.LogFormat })},
		{"master-key", "crypto-shredding master key <id>:<base64 of 32 bytes> (prefer the env or a file)", str(func(c *Config) *string { return &c.MasterKey })},
		{"master-key-file", "file holding the master key <id>:<base64 of 32 bytes>", str(func(c *Config) *string { return &c.MasterKeyFile })},
		{"previous-master-keys", "comma-separated older master keys <id>:<base64>, for rotation", list(func(c *Config) *[]string { return &c.PreviousMasterKeys })},
	}
}

// Load builds a Config from args (without the program name), the environment (env
// looks a variable up, e.g. os.Getenv) and the file named by --config or RL_CONFIG,
// then validates it. Usage goes to usage when args ask for -h. app are the
// application's own settings, loaded the same way into Config.App.
func Load(args []string, env func(string) string, usage io.Writer, app ...Setting) (Config, error) {
	if err := checkAppSettings(app); err != nil {
		return Config{}, err
	}
	cfg := Defaults()
	all := settings()

	// Flags are parsed first only to find --config and report unknown flags early;
	// they are applied last so that they win.
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.SetOutput(usage)
	configFile := fs.String("config", env("RL_CONFIG"), "JSON configuration file (keys as the flags, with _ for -)")
	given := map[string]string{}
	for _, s := range all {
		help := s.usage + " (env " + s.env()
		if d := s.get(&cfg); d != "" { // cfg holds the defaults until the file, env and flags are applied below
			help += ", default " + d
		}
		fs.Func(s.name, help+")", func(v string) error { given[s.name] = v; return nil })
	}
	for _, s := range app {
		fs.Func(s.Name, fmt.Sprintf("%s (env %s, default %s)", s.Usage, s.env(), s.Default), func(v string) error { given[s.Name] = v; return nil })
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("config: unexpected argument %q (settings are flags: --name=value)", fs.Arg(0))
	}

	fromFile := map[string]string{}
	if *configFile != "" {
		var err error
		if fromFile, err = loadFile(*configFile, &cfg, app); err != nil {
			return Config{}, err
		}
	}
	var errs []error
	apply := func(s setting, source, v string) {
		if err := s.set(&cfg, v); err != nil {
			errs = append(errs, fmt.Errorf("config: %s: %w", source, err))
		}
	}
	for _, s := range all {
		if v := env(s.env()); v != "" {
			apply(s, s.env(), v)
		}
	}
	for _, s := range all {
		if v, ok := given[s.name]; ok {
			apply(s, "--"+s.name, v)
		}
	}
	cfg.App, errs = loadApp(app, *configFile, fromFile, env, given, errs)
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return cfg, cfg.Validate()
}

// loadApp resolves the application's settings: default, then file, environment and
// flag, the last one given winning. Values that do not parse are added to errs.
func loadApp(app []Setting, file string, fromFile map[string]string, env func(string) string, given map[string]string, errs []error) (Values, []error) {
	var values Values
	if len(app) > 0 {
		values.values = make(map[string]any, len(app))
	}
	for _, s := range app {
		raw, source := s.Default, "default of "+s.Name
		if v, ok := fromFile[s.Name]; ok {
			raw, source = v, "file "+file+": "+s.fileKey()
		}
		if v := env(s.env()); v != "" {
			raw, source = v, s.env()
		}
		if v, ok := given[s.Name]; ok {
			raw, source = v, "--"+s.Name
		}
		v, err := s.parse(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("config: %s: %w", source, err))
			continue
		}
		values.values[s.Name] = v
	}
	return values, errs
}

// loadFile merges a JSON file into cfg and returns the values it gives the
// application's settings; unknown keys are an error, so a typo is not silently
// ignored.
func loadFile(path string, cfg *Config, app []Setting) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("config: file %s: %w", path, err)
	}
	appValues := takeAppKeys(obj, app)
	if raw, err = json.Marshal(obj); err != nil {
		return nil, fmt.Errorf("config: file %s: %w", path, err)
	}
	// Durations are written as strings ("5s") in the file.
	type fileConfig struct {
		Config
		CommandTimeout  string `json:"command_timeout"`
		ShutdownTimeout string `json:"shutdown_timeout"`
		SchedulerPoll   string `json:"scheduler_poll"`
		HandlerRead     string `json:"handler_read_interval"`
		Retention       string `json:"outcome_retention"`
	}
	fc := fileConfig{Config: *cfg}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fc); err != nil {
		return nil, fmt.Errorf("config: file %s: %w", path, err)
	}
	*cfg = fc.Config
	for _, d := range []struct {
		raw string
		dst *time.Duration
		key string
	}{
		{fc.CommandTimeout, &cfg.CommandTimeout, "command_timeout"},
		{fc.ShutdownTimeout, &cfg.ShutdownTimeout, "shutdown_timeout"},
		{fc.SchedulerPoll, &cfg.SchedulerPoll, "scheduler_poll"},
		{fc.HandlerRead, &cfg.HandlerReadInterval, "handler_read_interval"},
		{fc.Retention, &cfg.OutcomeRetention, "outcome_retention"},
	} {
		if d.raw == "" {
			continue
		}
		v, err := time.ParseDuration(d.raw)
		if err != nil {
			return nil, fmt.Errorf("config: file %s: %s: %q is not a duration such as 5s", path, d.key, d.raw)
		}
		*d.dst = v
	}
	return appValues, nil
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("config: "+format, args...)) }
	if c.NodeID == "" || strings.ContainsAny(c.NodeID, " .*>\t\n") {
		bad("node id %q must be non-empty and contain no spaces, dots, * or > (it is part of a NATS subject)", c.NodeID)
	}
	if len(c.NATSURLs) == 0 {
		bad("no NATS URL (--nats)")
	}
	for _, u := range c.NATSURLs {
		if p, err := url.Parse(u); err != nil || p.Host == "" {
			bad("NATS URL %q is not a URL such as nats://127.0.0.1:4222", u)
		}
	}
	if c.Prefix == "" || strings.ContainsAny(c.Prefix, " *>\t\n") {
		bad("subject prefix %q must be non-empty with no spaces, * or >", c.Prefix)
	}
	if c.DSN == "" {
		bad("no event store DSN: set --dsn or RL_DSN (e.g. postgres://user@host:5432/db)")
	}
	if c.Schema == "" {
		bad("empty schema name")
	}
	switch c.Cluster {
	case ClusterGossip:
		if err := checkHostPort(c.GossipAddr); err != nil {
			bad("gossip address: %v", err)
		}
		if c.AdvertiseAddr != "" {
			if err := checkHostPort(c.AdvertiseAddr); err != nil {
				bad("advertise address: %v", err)
			}
		}
		for _, s := range c.Seeds {
			if err := checkHostPort(s); err != nil {
				bad("seed: %v", err)
			}
		}
	case ClusterNone:
	default:
		bad("cluster mode %q is neither %q nor %q", c.Cluster, ClusterGossip, ClusterNone)
	}
	if c.GossipKey != "" {
		if err := checkGossipKey(c.GossipKey); err != nil {
			bad("gossip key %v", err)
		}
	}
	if len(c.GossipKeysExtra) > 0 && c.GossipKey == "" {
		bad("extra gossip keys are set but no gossip key (--gossip-key): the primary key encrypts, extra keys only decrypt")
	}
	for i, k := range c.GossipKeysExtra {
		if err := checkGossipKey(k); err != nil {
			bad("extra gossip key %d %v", i+1, err)
		}
	}
	for _, s := range c.GossipAllowedCIDRs {
		if _, _, err := net.ParseCIDR(s); err != nil {
			bad("gossip allowed CIDR %q is not a network such as 10.0.0.0/8", s)
		}
	}
	if c.AdminToken != "" && c.AdminTokenFile != "" {
		bad("set the admin token by --admin-token or by --admin-token-file, not both")
	}
	if _, err := c.AdminTokenValue(); err != nil {
		errs = append(errs, err)
	}
	for _, f := range []struct{ what, path string }{
		{"NATS credentials file (--nats-creds)", c.NATSCreds}, {"NATS nkey seed file (--nats-nkey)", c.NATSNkey},
		{"NATS TLS CA file (--nats-tls-ca)", c.NATSTLSCA}, {"NATS TLS certificate (--nats-tls-cert)", c.NATSTLSCert},
		{"NATS TLS key (--nats-tls-key)", c.NATSTLSKey},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			bad("%s: %v", f.what, err)
		}
	}
	if (c.NATSTLSCert == "") != (c.NATSTLSKey == "") {
		bad("NATS client TLS needs both --nats-tls-cert and --nats-tls-key")
	}
	if c.AdminAddr != "" && c.AdminAddr != "off" {
		if err := checkHostPort(c.AdminAddr); err != nil {
			bad("admin address: %v", err)
		}
	}
	if c.CommandTimeout <= 0 {
		bad("command timeout %s must be positive", c.CommandTimeout)
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown timeout %s must be positive", c.ShutdownTimeout)
	}
	if c.SchedulerPoll < 10*time.Millisecond || c.SchedulerPoll > time.Hour {
		bad("scheduler poll interval %s must be between 10ms and 1h", c.SchedulerPoll)
	}
	if c.HandlerReadInterval < 0 || c.HandlerReadInterval > time.Second {
		bad("handler read interval %s must be between 0 and 1s", c.HandlerReadInterval)
	}
	if c.OutcomeRetention != 0 && c.OutcomeRetention < time.Minute {
		bad("outcome retention %s must be 0 (keep for good) or at least 1m", c.OutcomeRetention)
	}
	if c.MaxBodyBytes <= 0 {
		bad("max body bytes %d must be positive", c.MaxBodyBytes)
	}
	if c.MaxLiveAggregates <= 0 {
		bad("max live aggregates %d must be positive", c.MaxLiveAggregates)
	}
	if c.MaxAppendBatch <= 0 {
		bad("max append batch %d must be positive", c.MaxAppendBatch)
	}
	if c.AppendBatchesInFlight <= 0 {
		bad("append batches in flight %d must be positive", c.AppendBatchesInFlight)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log level %q is not debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "json", "console":
	default:
		bad("log format %q is not json or console", c.LogFormat)
	}
	errs = append(errs, c.validateMasterKeys()...)
	return errors.Join(errs...)
}

// MasterKeySize is the size of a crypto-shredding master key (AES-256).
const MasterKeySize = 32

// validateMasterKeys checks the master key settings (reading the key file).
func (c Config) validateMasterKeys() []error {
	var errs []error
	if c.MasterKey != "" && c.MasterKeyFile != "" {
		errs = append(errs, errors.New("config: set the master key by --master-key or by --master-key-file, not both"))
	}
	current, err := c.MasterKeyValue()
	if err != nil {
		errs = append(errs, err)
	}
	ids := map[string]bool{}
	check := func(what, v string) {
		id, err := checkMasterKey(v)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("config: %s: %w", what, err))
		case ids[id]:
			errs = append(errs, fmt.Errorf("config: %s: key id %q is used twice", what, id))
		}
		ids[id] = true
	}
	if current != "" {
		check("master key", current)
	}
	if len(c.PreviousMasterKeys) > 0 && current == "" {
		errs = append(errs, errors.New("config: previous master keys are set but no master key (--master-key or --master-key-file)"))
	}
	for i, v := range c.PreviousMasterKeys {
		check(fmt.Sprintf("previous master key %d", i+1), v)
	}
	return errs
}

// checkMasterKey checks "<id>:<base64 of 32 bytes>" and returns the id.
func checkMasterKey(v string) (string, error) {
	id, b64, ok := strings.Cut(v, ":")
	if !ok || id == "" {
		return "", errors.New(`want "<id>:<base64 of 32 bytes>", e.g. k1:$(head -c32 /dev/urandom | base64)`)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return id, fmt.Errorf("key %q is not base64: %v", id, err)
	}
	if len(key) != MasterKeySize {
		return id, fmt.Errorf("key %q is %d bytes; it must be %d", id, len(key), MasterKeySize)
	}
	return id, nil
}

// MasterKeyValue returns the master key ("<id>:<base64>"), from MasterKey or read
// from MasterKeyFile; "" when neither is set.
func (c Config) MasterKeyValue() (string, error) {
	if c.MasterKeyFile == "" {
		return strings.TrimSpace(c.MasterKey), nil
	}
	b, err := os.ReadFile(c.MasterKeyFile)
	if err != nil {
		return "", fmt.Errorf("config: master key file: %w", err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("config: master key file %s is empty", c.MasterKeyFile)
	}
	return v, nil
}

// GossipKeyBytes returns the decoded gossip key (nil when none). Call after Validate.
func (c Config) GossipKeyBytes() []byte {
	if c.GossipKey == "" {
		return nil
	}
	key, _ := base64.StdEncoding.DecodeString(c.GossipKey)
	return key
}

// AdminTokenValue returns the admin bearer token, from AdminToken or read from
// AdminTokenFile; "" when neither is set (no token required).
func (c Config) AdminTokenValue() (string, error) {
	if c.AdminTokenFile == "" {
		return strings.TrimSpace(c.AdminToken), nil
	}
	b, err := os.ReadFile(c.AdminTokenFile)
	if err != nil {
		return "", fmt.Errorf("config: admin token file: %w", err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("config: admin token file %s is empty", c.AdminTokenFile)
	}
	return v, nil
}

// GossipKeysExtraBytes returns the decoded extra gossip keys. Call after Validate.
func (c Config) GossipKeysExtraBytes() [][]byte {
	var out [][]byte
	for _, k := range c.GossipKeysExtra {
		key, _ := base64.StdEncoding.DecodeString(k)
		out = append(out, key)
	}
	return out
}

// checkGossipKey checks one base64 gossip key; the error completes "gossip key …".
func checkGossipKey(v string) error {
	key, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return fmt.Errorf("is not base64: %v", err)
	}
	if n := len(key); n != 16 && n != 24 && n != 32 {
		return fmt.Errorf("is %d bytes; it must be 16, 24 or 32 (e.g. head -c32 /dev/urandom | base64)", n)
	}
	return nil
}

// AdminEnabled reports whether the admin listener should run.
func (c Config) AdminEnabled() bool { return c.AdminAddr != "" && c.AdminAddr != "off" }

func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", addr, port)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", addr)
	}
	return nil
}

func splitList(v string) []string {
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
