package config_test

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/config"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestPrecedenceFlagsOverEnvOverFileOverDefaults(t *testing.T) {
	file := filepath.Join(t.TempDir(), "node.json")
	if err := os.WriteFile(file, []byte(`{"node_id": "from-file", "schema": "file_schema", "dsn": "postgres://file/db", "command_timeout": "7s", "seeds": ["10.0.0.1:7946"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := envOf(map[string]string{"RL_CONFIG": file, "RL_SCHEMA": "env_schema", "RL_NODE_ID": "from-env", "RL_NATS": "nats://a:4222, nats://b:4222"})
	cfg, err := config.Load([]string{"--node-id=from-flag"}, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := config.Defaults()
	want.NodeID = "from-flag"
	want.Schema = "env_schema"
	want.DSN = "postgres://file/db"
	want.CommandTimeout = 7 * time.Second
	want.Seeds = []string{"10.0.0.1:7946"}
	want.NATSURLs = []string{"nats://a:4222", "nats://b:4222"}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("got  %+v\nwant %+v", cfg, want)
	}
}

func TestErrorsAreClear(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want []string // substrings of the error
	}{
		{"unknown flag", []string{"--dsn=x", "--colour=blue"}, nil, []string{"flag provided but not defined: -colour"}},
		{"missing DSN", nil, nil, []string{"no event store DSN"}},
		{"bad addresses, all reported", []string{"--dsn=x", "--gossip-addr=nowhere", "--seeds=a:1,b", "--admin-addr=:99999"}, nil,
			[]string{`gossip address: "nowhere" is not host:port`, `seed: "b" is not host:port`, "admin address"}},
		{"bad duration from env", []string{"--dsn=x"}, map[string]string{"RL_COMMAND_TIMEOUT": "soon"}, []string{`RL_COMMAND_TIMEOUT: "soon" is not a duration`}},
		{"bad cluster mode", []string{"--dsn=x", "--cluster=mesh"}, nil, []string{`cluster mode "mesh"`}},
		{"bad gossip key", []string{"--dsn=x", "--gossip-key=c2hvcnQ="}, nil, []string{"gossip key is 5 bytes"}},
		{"node id with a dot", []string{"--dsn=x", "--node-id=a.b"}, nil, []string{`node id "a.b"`}},
		{"stray argument", []string{"--dsn=x", "extra"}, nil, []string{`unexpected argument "extra"`}},
		{"missing file", []string{"--dsn=x", "--config=/nonexistent.json"}, nil, []string{"/nonexistent.json"}},
		{"scheduler settings", []string{"--dsn=x", "--scheduler-poll=1ms"}, nil,
			[]string{"scheduler poll interval 1ms must be between 10ms and 1h"}},
		{"group commit settings", []string{"--dsn=x", "--max-append-batch=0", "--append-batches-in-flight=-2"}, nil,
			[]string{"max append batch 0 must be positive", "append batches in flight -2 must be positive"}},
		{"handler read interval", []string{"--dsn=x", "--handler-read-interval=-1ms"}, nil,
			[]string{"handler read interval -1ms must be between 0 and 1s"}},
		{"outcome retention", []string{"--dsn=x", "--outcome-retention=30s"}, nil,
			[]string{"outcome retention 30s must be 0 (keep for good) or at least 1m"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := config.Load(c.args, envOf(c.env), io.Discard)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestSchedulerSettings(t *testing.T) {
	file := filepath.Join(t.TempDir(), "node.json")
	_ = os.WriteFile(file, []byte(`{"dsn": "x", "scheduler_poll": "250ms"}`), 0o600)
	cfg, err := config.Load([]string{"--config=" + file}, envOf(nil), io.Discard)
	if err != nil || cfg.SchedulerPoll != 250*time.Millisecond {
		t.Fatalf("from file: %+v, %v", cfg, err)
	}
	cfg, err = config.Load([]string{"--dsn=x"}, envOf(map[string]string{"RL_SCHEDULER_POLL": "2s"}), io.Discard)
	if err != nil || cfg.SchedulerPoll != 2*time.Second {
		t.Fatalf("from env: %+v, %v", cfg, err)
	}
	if d := config.Defaults(); d.SchedulerPoll != time.Second {
		t.Fatalf("defaults: %s", d.SchedulerPoll)
	}
}

// appSettings are an application's own settings, as a ringleader.App declares them.
var appSettings = []config.Setting{
	config.Duration("order-timeout", 5*time.Minute, "how long an order may wait"),
	config.Int("max-items", 10, "most items per order"),
	config.Bool("audit", false, "log every order"),
	config.String("region", "eu", "where orders ship from"),
}

func TestAppSettingsInThreeSpellings(t *testing.T) {
	file := filepath.Join(t.TempDir(), "node.json")
	_ = os.WriteFile(file, []byte(`{"dsn": "x", "order_timeout": "45s", "max_items": 3, "audit": true}`), 0o600)
	cfg, err := config.Load([]string{"--config=" + file, "--max-items=7"}, envOf(map[string]string{"RL_ORDER_TIMEOUT": "1m"}), io.Discard, appSettings...)
	if err != nil {
		t.Fatal(err)
	}
	// The flag beats the file, the environment beats the file, the file beats the default.
	if got := cfg.App.Duration("order-timeout"); got != time.Minute {
		t.Errorf("order-timeout = %s, want 1m (env over file)", got)
	}
	if got := cfg.App.Int("max-items"); got != 7 {
		t.Errorf("max-items = %d, want 7 (flag over file)", got)
	}
	if !cfg.App.Bool("audit") {
		t.Error("audit = false, want true (file over default)")
	}
	if got := cfg.App.String("region"); got != "eu" {
		t.Errorf("region = %q, want the default eu", got)
	}
}

func TestAppSettingsErrors(t *testing.T) {
	cases := []struct {
		name     string
		settings []config.Setting
		args     []string
		want     string
	}{
		{"bad value", appSettings, []string{"--dsn=x", "--order-timeout=soon"}, `--order-timeout: "soon" is not a duration`},
		{"bad number", appSettings, []string{"--dsn=x", "--max-items=many"}, `--max-items: "many" is not a whole number`},
		{"unknown flag", appSettings, []string{"--dsn=x", "--order-timeot=1s"}, "flag provided but not defined: -order-timeot"},
		{"clash with a built-in", []config.Setting{config.String("prefix", "x", "")}, []string{"--dsn=x"}, `"prefix" has the name of a built-in setting`},
		{"declared twice", []config.Setting{config.Int("n", 1, ""), config.Int("n", 2, "")}, []string{"--dsn=x"}, `"n" is declared twice`},
		{"bad name", []config.Setting{config.Int("Max_Items", 1, "")}, []string{"--dsn=x"}, "lower-case words joined by '-'"},
		{"bad default", []config.Setting{{Name: "wait", Kind: config.KindDuration, Default: "later"}}, []string{"--dsn=x"}, `default "later" is not a duration`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := config.Load(c.args, envOf(nil), io.Discard, c.settings...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one saying %q", err, c.want)
			}
		})
	}
	file := filepath.Join(t.TempDir(), "node.json")
	_ = os.WriteFile(file, []byte(`{"dsn": "x", "order_timout": "45s"}`), 0o600)
	if _, err := config.Load([]string{"--config=" + file}, envOf(nil), io.Discard, appSettings...); err == nil || !strings.Contains(err.Error(), "order_timout") {
		t.Fatalf("a misspelt application key in the file: %v, want an error naming it", err)
	}
}

func TestAppValuesPanicOnUndeclaredSettings(t *testing.T) {
	cfg, err := config.Load([]string{"--dsn=x"}, envOf(nil), io.Discard, appSettings...)
	if err != nil {
		t.Fatal(err)
	}
	for name, read := range map[string]func(){
		"undeclared": func() { cfg.App.Duration("nope") },
		"wrong kind": func() { cfg.App.Int("order-timeout") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			read()
		}()
	}
}

func TestGroupCommitSettings(t *testing.T) {
	if d := config.Defaults(); d.MaxAppendBatch != 256 || d.AppendBatchesInFlight != 1 {
		t.Fatalf("defaults: batch %d, in flight %d", d.MaxAppendBatch, d.AppendBatchesInFlight)
	}
	cfg, err := config.Load([]string{"--dsn=x", "--max-append-batch=1"}, envOf(map[string]string{"RL_APPEND_BATCHES_IN_FLIGHT": "3"}), io.Discard)
	if err != nil || cfg.MaxAppendBatch != 1 || cfg.AppendBatchesInFlight != 3 {
		t.Fatalf("from flag and env: %+v, %v", cfg, err)
	}
}

func TestFileRejectsUnknownKeys(t *testing.T) {
	file := filepath.Join(t.TempDir(), "node.json")
	_ = os.WriteFile(file, []byte(`{"dsn": "x", "sedes": ["a:1"]}`), 0o600)
	_, err := config.Load([]string{"--config=" + file}, envOf(nil), io.Discard)
	if err == nil || !strings.Contains(err.Error(), `unknown field "sedes"`) {
		t.Fatalf("got %v, want an unknown field error", err)
	}
}

func TestClusterNoneNeedsNoGossipAddress(t *testing.T) {
	cfg, err := config.Load([]string{"--dsn=x", "--cluster=none", "--gossip-addr=whatever"}, envOf(nil), io.Discard)
	if err != nil || cfg.Cluster != config.ClusterNone {
		t.Fatalf("%+v, %v", cfg, err)
	}
}

func TestMasterKeys(t *testing.T) {
	k1 := "k1:" + strings.Repeat("A", 43) + "="
	k2 := "k2:" + strings.Repeat("B", 43) + "="
	file := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(file, []byte(k2+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load([]string{"--dsn=x", "--master-key-file=" + file}, envOf(map[string]string{"RL_PREVIOUS_MASTER_KEYS": k1}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := cfg.MasterKeyValue(); err != nil || v != k2 || len(cfg.PreviousMasterKeys) != 1 {
		t.Fatalf("%q %v %v", v, cfg.PreviousMasterKeys, err)
	}
	cfg, err = config.Load([]string{"--dsn=x"}, envOf(map[string]string{"RL_MASTER_KEY": k1}), io.Discard)
	if v, _ := cfg.MasterKeyValue(); err != nil || v != k1 {
		t.Fatalf("%q %v", v, err)
	}
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"both":         {[]string{"--master-key=" + k1, "--master-key-file=" + file}, "not both"},
		"no id":        {[]string{"--master-key=" + strings.Repeat("A", 43) + "="}, `want "<id>:<base64 of 32 bytes>"`},
		"short":        {[]string{"--master-key=k1:c2hvcnQ="}, `key "k1" is 5 bytes; it must be 32`},
		"not base64":   {[]string{"--master-key=k1:!!"}, "not base64"},
		"missing file": {[]string{"--master-key-file=/nonexistent.key"}, "master key file"},
		"same id":      {[]string{"--master-key=" + k1, "--previous-master-keys=" + k1}, `key id "k1" is used twice`},
		"only old":     {[]string{"--previous-master-keys=" + k1}, "no master key"},
	} {
		_, err := config.Load(append([]string{"--dsn=x"}, c.args...), envOf(nil), io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", name, err, c.want)
		}
	}
}

func TestSecuritySettings(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(" s3cret \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key1 := "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes
	key2 := "ZmVkY2JhOTg3NjU0MzIxMA=="                     // 16 bytes
	cfg, err := config.Load([]string{"--dsn=x", "--admin-token-file=" + tokenFile, "--gossip-key=" + key1,
		"--gossip-keys-extra=" + key2, "--gossip-allowed-cidrs=10.0.0.0/8,127.0.0.0/8"}, envOf(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := cfg.AdminTokenValue(); err != nil || tok != "s3cret" {
		t.Fatalf("admin token %q, %v", tok, err)
	}
	if extra := cfg.GossipKeysExtraBytes(); len(extra) != 1 || len(extra[0]) != 16 {
		t.Fatalf("extra keys %v", extra)
	}
	if len(cfg.GossipAllowedCIDRs) != 2 {
		t.Fatalf("cidrs %v", cfg.GossipAllowedCIDRs)
	}
	env := envOf(map[string]string{"RL_ADMIN_TOKEN": "from-env"})
	if cfg, err = config.Load([]string{"--dsn=x"}, env, io.Discard); err != nil {
		t.Fatal(err)
	}
	if tok, _ := cfg.AdminTokenValue(); tok != "from-env" {
		t.Fatalf("admin token from RL_ADMIN_TOKEN: %q", tok)
	}
}

func TestSecurityErrorsAreClear(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"extra key without a primary", []string{"--dsn=x", "--gossip-keys-extra=ZmVkY2JhOTg3NjU0MzIxMA=="}, []string{"no gossip key"}},
		{"bad extra key", []string{"--dsn=x", "--gossip-key=ZmVkY2JhOTg3NjU0MzIxMA==", "--gossip-keys-extra=c2hvcnQ="}, []string{"extra gossip key 1 is 5 bytes"}},
		{"bad cidr", []string{"--dsn=x", "--gossip-allowed-cidrs=10.0.0.0"}, []string{`gossip allowed CIDR "10.0.0.0"`}},
		{"token twice", []string{"--dsn=x", "--admin-token=a", "--admin-token-file=" + missing}, []string{"not both", "admin token file"}},
		{"missing NATS files", []string{"--dsn=x", "--nats-creds=" + missing, "--nats-nkey=" + missing, "--nats-tls-ca=" + missing, "--nats-tls-cert=" + missing},
			[]string{"NATS credentials file (--nats-creds)", "NATS nkey seed file", "NATS TLS CA file", "needs both --nats-tls-cert and --nats-tls-key"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := config.Load(c.args, envOf(nil), io.Discard)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestHandlerReadInterval(t *testing.T) {
	if d := config.Defaults(); d.HandlerReadInterval != 2*time.Millisecond {
		t.Fatalf("default %s, want 2ms", d.HandlerReadInterval)
	}
	file := filepath.Join(t.TempDir(), "node.json")
	_ = os.WriteFile(file, []byte(`{"dsn": "x", "handler_read_interval": "5ms"}`), 0o600)
	if cfg, err := config.Load([]string{"--config=" + file}, envOf(nil), io.Discard); err != nil || cfg.HandlerReadInterval != 5*time.Millisecond {
		t.Fatalf("from file: %v, %v", cfg.HandlerReadInterval, err)
	}
	if cfg, err := config.Load([]string{"--dsn=x"}, envOf(map[string]string{"RL_HANDLER_READ_INTERVAL": "0s"}), io.Discard); err != nil || cfg.HandlerReadInterval != 0 {
		t.Fatalf("from env: %v, %v", cfg.HandlerReadInterval, err)
	}
	if _, err := config.Load([]string{"--dsn=x", "--handler-read-interval=2s"}, envOf(nil), io.Discard); err == nil {
		t.Fatal("2s accepted")
	}
}

func TestOutcomeRetention(t *testing.T) {
	if d := config.Defaults(); d.OutcomeRetention != 0 {
		t.Fatalf("default %s, want 0 (keep for good)", d.OutcomeRetention)
	}
	file := filepath.Join(t.TempDir(), "node.json")
	_ = os.WriteFile(file, []byte(`{"dsn": "x", "outcome_retention": "720h"}`), 0o600)
	if cfg, err := config.Load([]string{"--config=" + file}, envOf(nil), io.Discard); err != nil || cfg.OutcomeRetention != 720*time.Hour {
		t.Fatalf("from file: %v, %v", cfg.OutcomeRetention, err)
	}
	if cfg, err := config.Load([]string{"--dsn=x"}, envOf(map[string]string{"RL_OUTCOME_RETENTION": "24h"}), io.Discard); err != nil || cfg.OutcomeRetention != 24*time.Hour {
		t.Fatalf("from env: %v, %v", cfg.OutcomeRetention, err)
	}
}
