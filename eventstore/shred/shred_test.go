package shred_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/memstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
	"github.com/ringleader-go/ringleader/eventstore/shred"
	"github.com/ringleader-go/ringleader/eventstore/transform"
)

func master(t testing.TB, id string) shred.MasterKey {
	t.Helper()
	k := make([]byte, shred.MasterKeySize)
	_, _ = rand.Read(k)
	return shred.MasterKey{ID: id, Key: k}
}

// tables lists the Table implementations every table test runs against.
func tables() map[string]func(t *testing.T) shred.Table {
	return map[string]func(t *testing.T) shred.Table{
		"mem": func(*testing.T) shred.Table { return shred.NewMemTable() },
		"pg": func(t *testing.T) shred.Table {
			if testing.Short() {
				t.Skip("PostgreSQL skipped in -short mode")
			}
			store := pgtest.NewStore(t)
			tab, err := shred.OpenPGTable(context.Background(), store.Pool())
			if err != nil {
				t.Fatal(err)
			}
			// Idempotent.
			if _, err := shred.OpenPGTable(context.Background(), store.Pool()); err != nil {
				t.Fatal(err)
			}
			return tab
		},
	}
}

func eachTable(t *testing.T, f func(t *testing.T, tab shred.Table)) {
	for name, open := range tables() {
		t.Run(name, func(t *testing.T) { f(t, open(t)) })
	}
}

func TestTable(t *testing.T) {
	eachTable(t, func(t *testing.T, tab shred.Table) {
		ctx := context.Background()
		if _, err := tab.Load(ctx, "s1"); !errors.Is(err, shred.ErrNoKey) {
			t.Fatalf("Load of a new subject: %v", err)
		}
		first := shred.Record{Subject: "s1", MasterKeyID: "m1", Wrapped: []byte("first")}
		if got, err := tab.Create(ctx, first); err != nil || string(got.Wrapped) != "first" || got.MasterKeyID != "m1" {
			t.Fatal(got, err)
		}
		if got, err := tab.Create(ctx, shred.Record{Subject: "s1", MasterKeyID: "m1", Wrapped: []byte("second")}); err != nil || string(got.Wrapped) != "first" {
			t.Fatalf("second Create: %+v %v", got, err)
		}
		if got, err := tab.Load(ctx, "s1"); err != nil || string(got.Wrapped) != "first" || got.Forgotten {
			t.Fatal(got, err)
		}
		for range 2 {
			if err := tab.Forget(ctx, "s1"); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := tab.Load(ctx, "s1"); err != nil || !got.Forgotten || got.Wrapped != nil {
			t.Fatalf("after Forget: %+v %v", got, err)
		}
		if got, err := tab.Create(ctx, first); err != nil || !got.Forgotten {
			t.Fatalf("Create after Forget: %+v %v", got, err)
		}
		if err := tab.Forget(ctx, "never-had-a-key"); err != nil {
			t.Fatal(err)
		}
		// Rewrap: all or nothing, tombstones and current keys left alone.
		for _, s := range []string{"a", "b"} {
			if _, err := tab.Create(ctx, shred.Record{Subject: s, MasterKeyID: "m1", Wrapped: []byte("w-" + s)}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := tab.Create(ctx, shred.Record{Subject: "c", MasterKeyID: "m2", Wrapped: []byte("w-c")}); err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		calls := 0
		if _, err := tab.Rewrap(ctx, "m2", func(r shred.Record) ([]byte, error) {
			if calls++; calls == 2 {
				return nil, boom
			}
			return []byte("x"), nil
		}); !errors.Is(err, boom) {
			t.Fatalf("failing Rewrap: %v", err)
		}
		if got, _ := tab.Load(ctx, "a"); got.MasterKeyID != "m1" || string(got.Wrapped) != "w-a" {
			t.Fatalf("failed Rewrap changed a: %+v", got)
		}
		n, err := tab.Rewrap(ctx, "m2", func(r shred.Record) ([]byte, error) { return []byte("re-" + string(r.Wrapped)), nil })
		if err != nil || n != 2 {
			t.Fatalf("Rewrap: %d %v", n, err)
		}
		for s, want := range map[string]string{"a": "re-w-a", "b": "re-w-b", "c": "w-c"} {
			if got, _ := tab.Load(ctx, s); got.MasterKeyID != "m2" || string(got.Wrapped) != want {
				t.Errorf("%s after Rewrap: %+v", s, got)
			}
		}
	})
}

func TestKeys(t *testing.T) {
	eachTable(t, func(t *testing.T, tab shred.Table) {
		ctx := context.Background()
		m1 := master(t, "m1")
		keys, err := shred.NewKeys(shred.KeysConfig{Table: tab, Master: m1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keys.DataKey(ctx, "s", false); !errors.Is(err, shred.ErrNoKey) {
			t.Fatal(err)
		}
		k1, err := keys.DataKey(ctx, "s", true)
		if err != nil || len(k1) != 32 {
			t.Fatal(err)
		}
		// Another process (no cache) gets the same key.
		other, _ := shred.NewKeys(shred.KeysConfig{Table: tab, Master: m1, CacheTTL: -1})
		if k2, err := other.DataKey(ctx, "s", true); err != nil || string(k2) != string(k1) {
			t.Fatal("a second Keys made another key", err)
		}
		// Forget is effective at once despite the cache.
		if err := keys.Forget(ctx, "s"); err != nil {
			t.Fatal(err)
		}
		for _, k := range []*shred.Keys{keys, other} {
			for _, create := range []bool{false, true} {
				if _, err := k.DataKey(ctx, "s", create); !errors.Is(err, shred.ErrForgotten) {
					t.Fatalf("after Forget (create %v): %v", create, err)
				}
			}
		}

		// Rotation: m1 → m2. A node with only m2 cannot read m1's keys.
		if _, err := keys.DataKey(ctx, "t", true); err != nil {
			t.Fatal(err)
		}
		kt, _ := keys.DataKey(ctx, "t", false)
		m2 := master(t, "m2")
		only2, _ := shred.NewKeys(shred.KeysConfig{Table: tab, Master: m2, CacheTTL: -1})
		if _, err := only2.DataKey(ctx, "t", false); !errors.Is(err, shred.ErrUnknownMasterKey) {
			t.Fatalf("unknown master: %v", err)
		}
		if n, err := only2.RotateMaster(ctx); !errors.Is(err, shred.ErrUnknownMasterKey) || n != 0 {
			t.Fatalf("rotation without the old key: %d %v", n, err)
		}
		rot, _ := shred.NewKeys(shred.KeysConfig{Table: tab, Master: m2, Previous: []shred.MasterKey{m1}, CacheTTL: -1})
		if n, err := rot.RotateMaster(ctx); err != nil || n != 1 {
			t.Fatalf("rotation: %d %v", n, err)
		}
		if n, err := rot.RotateMaster(ctx); err != nil || n != 0 {
			t.Fatalf("second rotation: %d %v", n, err)
		}
		if got, err := only2.DataKey(ctx, "t", false); err != nil || string(got) != string(kt) {
			t.Fatalf("after rotation: %v", err)
		}
		// A wrong master key with a known id: corrupt, not forgotten.
		wrong, _ := shred.NewKeys(shred.KeysConfig{Table: tab, Master: master(t, "m2"), CacheTTL: -1})
		if _, err := wrong.DataKey(ctx, "t", false); !errors.Is(err, shred.ErrCorrupt) {
			t.Fatalf("wrong master key: %v", err)
		}
	})
}

func TestKeysCacheExpires(t *testing.T) {
	ctx := context.Background()
	tab := shred.NewMemTable()
	now := time.Unix(0, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	keys, _ := shred.NewKeys(shred.KeysConfig{Table: tab, Master: master(t, "m"), CacheTTL: time.Second, Now: clock})
	if _, err := keys.DataKey(ctx, "s", true); err != nil {
		t.Fatal(err)
	}
	_ = tab.Forget(ctx, "s") // behind this Keys' back: another node forgot it
	if _, err := keys.DataKey(ctx, "s", false); err != nil {
		t.Fatalf("within the TTL the cached key serves: %v", err)
	}
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	if _, err := keys.DataKey(ctx, "s", false); !errors.Is(err, shred.ErrForgotten) {
		t.Fatalf("after the TTL: %v", err)
	}
}

func TestParseMasterKey(t *testing.T) {
	good := "k1:" + strings.Repeat("A", 43) + "="
	if m, err := shred.ParseMasterKey(good); err != nil || m.ID != "k1" || len(m.Key) != 32 {
		t.Fatal(m, err)
	}
	for _, bad := range []string{"", "nokey", ":" + strings.Repeat("A", 43) + "=", "k1:!!", "k1:AAAA"} {
		if _, err := shred.ParseMasterKey(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if _, err := shred.NewKeys(shred.KeysConfig{}); err == nil {
		t.Error("NewKeys of nothing: no error")
	}
}

// The rules of the tests: a "person" event with a name and an age (age forgotten as
// 0), and a forget event.
func testConfig(keys *shred.Keys) shred.Config {
	return shred.Config{
		Keys: keys,
		Rules: []shred.Rule{{EventType: "PersonAdded", SubjectField: "id", SubjectPrefix: "person:",
			Fields: []shred.Field{{Name: "name"}, {Name: "age", Forgotten: json.RawMessage(`0`)}}}},
		Forget: []shred.ForgetRule{{EventType: "PersonErased", SubjectField: "id", SubjectPrefix: "person:"}},
		SnapshotSubject: func(stream string) (string, bool) {
			id, ok := strings.CutPrefix(stream, "person-")
			return "person:" + id, ok
		},
	}
}

type person struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Age  int    `json:"age"`
	Note string `json:"note"`
}

func add(t *testing.T, s eventstore.Store, p person) []eventstore.RecordedEvent {
	t.Helper()
	data, _ := json.Marshal(p)
	rec, err := s.Append(context.Background(), "person-"+p.ID, eventstore.AnyVersion, []eventstore.EventData{{Type: "PersonAdded", Data: data}})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func readPerson(t *testing.T, s eventstore.Store, id string) (person, map[string]string) {
	t.Helper()
	evs, err := s.ReadStream(context.Background(), "person-"+id, 1, 10)
	if err != nil || len(evs) == 0 {
		t.Fatal(evs, err)
	}
	var p person
	if err := json.Unmarshal(evs[0].Data, &p); err != nil {
		t.Fatalf("%s: %v", evs[0].Data, err)
	}
	return p, evs[0].Metadata
}

func TestShredder(t *testing.T) {
	eachTable(t, func(t *testing.T, tab shred.Table) {
		ctx := context.Background()
		keys, _ := shred.NewKeys(shred.KeysConfig{Table: tab, Master: master(t, "m")})
		sh, err := shred.New(testConfig(keys))
		if err != nil {
			t.Fatal(err)
		}
		raw := memstore.New()
		t.Cleanup(func() { _ = raw.Close() })
		store := transform.Wrap(raw, sh)

		ada := person{ID: "1", Name: "Ada", Age: 36, Note: "not personal"}
		rec := add(t, store, ada)
		if !strings.Contains(string(rec[0].Data), `"Ada"`) {
			t.Errorf("Append returned %s, want the plaintext", rec[0].Data)
		}
		add(t, store, person{ID: "2", Name: "Grace", Age: 85})
		stored, _ := raw.ReadStream(ctx, "person-1", 1, 1)
		if s := string(stored[0].Data); strings.Contains(s, "Ada") || strings.Contains(s, `"age":36`) || !strings.Contains(s, `"$pii"`) || !strings.Contains(s, "not personal") {
			t.Errorf("stored %s", s)
		}
		if stored[0].Metadata[shred.MetaSubject] != "person:1" {
			t.Errorf("metadata %v", stored[0].Metadata)
		}
		if got, _ := readPerson(t, store, "1"); got != ada {
			t.Errorf("read %+v", got)
		}

		// Forgetting through a forget event, before the event is appended.
		if _, err := store.Append(ctx, "person-1", eventstore.AnyVersion, []eventstore.EventData{{Type: "PersonErased", Data: json.RawMessage(`{"id":"1"}`)}}); err != nil {
			t.Fatal(err)
		}
		got, md := readPerson(t, store, "1")
		if want := (person{ID: "1", Name: shred.Forgotten, Age: 0, Note: "not personal"}); got != want {
			t.Errorf("forgotten: %+v, want %+v", got, want)
		}
		if md[shred.MetaForgotten] != "age,name" {
			t.Errorf("metadata %v", md)
		}
		all, err := store.ReadAll(ctx, 0, 100)
		if err != nil || len(all) != 3 {
			t.Fatal(all, err)
		}
		if g, _ := readPerson(t, store, "2"); g.Name != "Grace" {
			t.Errorf("another subject was affected: %+v", g)
		}
		// New personal data about a forgotten subject is refused.
		data, _ := json.Marshal(ada)
		if _, err := store.Append(ctx, "person-1", eventstore.AnyVersion, []eventstore.EventData{{Type: "PersonAdded", Data: data}}); !errors.Is(err, shred.ErrForgotten) {
			t.Errorf("re-adding a forgotten subject: %v", err)
		}
		// An event without personal data present is stored as it is.
		rec, err = store.Append(ctx, "person-3", eventstore.AnyVersion, []eventstore.EventData{{Type: "PersonAdded", Data: json.RawMessage(`{"id":"3","name":null}`)}})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := rec[0].Metadata[shred.MetaSubject]; ok {
			t.Errorf("no personal data, yet %v", rec[0].Metadata)
		}
	})
}

func TestShredderSnapshots(t *testing.T) {
	ctx := context.Background()
	keys, _ := shred.NewKeys(shred.KeysConfig{Table: shred.NewMemTable(), Master: master(t, "m")})
	sh, _ := shred.New(testConfig(keys))
	raw := memstore.New()
	t.Cleanup(func() { _ = raw.Close() })
	store := transform.Wrap(raw, sh)
	snap := eventstore.Snapshot{StreamID: "person-1", StreamVersion: 1, SchemaVersion: 1, Type: "person", Data: json.RawMessage(`{"name":"Ada"}`)}
	// No key yet: stored as it is.
	if err := store.SaveSnapshot(ctx, snap); err != nil {
		t.Fatal(err)
	}
	if s, _ := raw.LoadSnapshot(ctx, "person-1", 1); !strings.Contains(string(s.Data), "Ada") {
		t.Fatal(string(s.Data))
	}
	add(t, store, person{ID: "1", Name: "Ada"})
	if err := store.SaveSnapshot(ctx, snap); err != nil {
		t.Fatal(err)
	}
	if s, _ := raw.LoadSnapshot(ctx, "person-1", 1); strings.Contains(string(s.Data), "Ada") {
		t.Fatalf("snapshot stored in plaintext: %s", s.Data)
	}
	if s, err := store.LoadSnapshot(ctx, "person-1", 1); err != nil || string(s.Data) != `{"name":"Ada"}` {
		t.Fatal(string(s.Data), err)
	}
	if err := keys.Forget(ctx, "person:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.LoadSnapshot(ctx, "person-1", 1); !errors.Is(err, eventstore.ErrNotFound) {
		t.Fatalf("forgotten snapshot: %v", err)
	}
	if err := store.SaveSnapshot(ctx, snap); !errors.Is(err, shred.ErrForgotten) {
		t.Fatalf("saving a forgotten subject's snapshot: %v", err)
	}
}

func TestShredderBadInput(t *testing.T) {
	ctx := context.Background()
	keys, _ := shred.NewKeys(shred.KeysConfig{Table: shred.NewMemTable(), Master: master(t, "m")})
	sh, _ := shred.New(testConfig(keys))
	raw := memstore.New()
	t.Cleanup(func() { _ = raw.Close() })
	store := transform.Wrap(raw, sh)
	add(t, store, person{ID: "1", Name: "Ada"})
	good, _ := raw.ReadStream(ctx, "person-1", 1, 1)

	tamper := func(data string) eventstore.RecordedEvent {
		e := good[0]
		e.Data = json.RawMessage(data)
		return e
	}
	var f map[string]json.RawMessage
	_ = json.Unmarshal(good[0].Data, &f)
	var m map[string]string
	_ = json.Unmarshal(f["name"], &m)
	ct := m["$pii"]
	flipped := ct[:len(ct)-3] + "AA="
	for name, e := range map[string]eventstore.RecordedEvent{
		"flipped ciphertext": tamper(`{"id":"1","name":{"$pii":"` + flipped + `"}}`),
		"moved to age":       tamper(`{"id":"1","age":{"$pii":"` + ct + `"}}`),
		"not base64":         tamper(`{"id":"1","name":{"$pii":"v1:!!"}}`),
		"unknown version":    tamper(`{"id":"1","name":{"$pii":"v9:AAAA"}}`),
		"short":              tamper(`{"id":"1","name":{"$pii":"v1:AAAA"}}`),
		"malformed JSON":     tamper(`{"id":`),
	} {
		if err := sh.DecodeEvent(ctx, &e); err == nil {
			t.Errorf("%s: no error", name)
		} else if name != "malformed JSON" && !errors.Is(err, shred.ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
	// Another subject's metadata: the AAD does not match.
	e := good[0]
	e.Metadata = map[string]string{shred.MetaSubject: "person:2"}
	_, _ = keys.DataKey(ctx, "person:2", true)
	if err := sh.DecodeEvent(ctx, &e); !errors.Is(err, shred.ErrCorrupt) {
		t.Errorf("other subject: %v", err)
	}
	for name, data := range map[string]string{"no subject": `{"name":"x"}`, "not an object": `[1]`, "numeric subject": `{"id":1,"name":"x"}`} {
		if _, err := store.Append(ctx, "person-x", eventstore.AnyVersion, []eventstore.EventData{{Type: "PersonAdded", Data: json.RawMessage(data)}}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// Without keys personal data is refused, and encrypted data cannot be read.
	nokeys, _ := shred.New(testConfig(nil))
	if err := nokeys.EncodeEvent(ctx, "person-1", &eventstore.EventData{Type: "PersonAdded", Data: json.RawMessage(`{"id":"1","name":"x"}`)}); !errors.Is(err, shred.ErrNoMasterKey) {
		t.Errorf("no keys, encode: %v", err)
	}
	if err := nokeys.DecodeEvent(ctx, &good[0]); !errors.Is(err, shred.ErrNoMasterKey) {
		t.Errorf("no keys, decode: %v", err)
	}
	if _, err := shred.New(shred.Config{Rules: []shred.Rule{{EventType: "E"}, {EventType: "F", SubjectField: "id", Fields: []shred.Field{{Name: "id"}}}}}); err == nil {
		t.Error("bad rules: no error")
	}
}

// Group commit through the wrapper: a refused request fails alone, the others are
// stored encrypted and returned in plaintext.
func TestShredderAppendMany(t *testing.T) {
	ctx := context.Background()
	keys, _ := shred.NewKeys(shred.KeysConfig{Table: shred.NewMemTable(), Master: master(t, "m")})
	sh, _ := shred.New(testConfig(keys))
	raw := memstore.New()
	t.Cleanup(func() { _ = raw.Close() })
	b, ok := transform.Wrap(raw, sh).(eventstore.BatchAppender)
	if !ok {
		t.Fatal("no BatchAppender")
	}
	res := b.AppendMany(ctx, []eventstore.AppendRequest{
		{StreamID: "person-1", Expected: eventstore.NoStream, Events: []eventstore.EventData{{Type: "PersonAdded", Data: json.RawMessage(`{"id":"1","name":"Ada"}`)}}},
		{StreamID: "person-2", Expected: eventstore.NoStream, Events: []eventstore.EventData{{Type: "PersonAdded", Data: json.RawMessage(`{"name":"no id"}`)}}},
		{StreamID: "person-3", Expected: eventstore.NoStream, Events: []eventstore.EventData{{Type: "PersonAdded", Data: json.RawMessage(`{"id":"3","name":"Grace"}`)}}},
	})
	if res[0].Err != nil || res[2].Err != nil || !errors.Is(res[1].Err, shred.ErrNoSubject) {
		t.Fatal(res)
	}
	if !strings.Contains(string(res[2].Events[0].Data), "Grace") {
		t.Errorf("returned %s", res[2].Events[0].Data)
	}
	if s, _ := raw.ReadStream(ctx, "person-3", 1, 1); strings.Contains(string(s[0].Data), "Grace") {
		t.Errorf("stored %s", s[0].Data)
	}
}
