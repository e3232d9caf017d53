package bank_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/errcode"
	"github.com/ringleader-go/ringleader/eventstore/memstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
	"github.com/ringleader-go/ringleader/eventstore/shred"
	"github.com/ringleader-go/ringleader/eventstore/transform"
	"github.com/ringleader-go/ringleader/examples/bank"
	"github.com/ringleader-go/ringleader/handlers"
)

func testMasterKey() shred.MasterKey {
	k := make([]byte, shred.MasterKeySize)
	_, _ = rand.Read(k)
	return shred.MasterKey{ID: "test", Key: k}
}

// A forgotten holder's name reads as forgotten everywhere — events through the
// store, the rehydrated aggregate (past its encrypted snapshot), the projection and
// the projection rebuilt from scratch — and nothing else changes: other holders'
// names, balances, versions. Two ways to forget are shown: the ForgetAccountHolder
// command (its event deletes the key and clears the name) and deleting the key
// directly (Keys.Forget, what an operator tool would do).
func TestForgottenHolderReadsForgottenEverywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL skipped in -short mode")
	}
	ctx := context.Background()
	raw := pgtest.NewStore(t)
	table, err := shred.OpenPGTable(ctx, raw.Pool())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := shred.NewKeys(shred.KeysConfig{Table: table, Master: testMasterKey()})
	if err != nil {
		t.Fatal(err)
	}
	sh, err := shred.New(bank.ShredConfig(keys))
	if err != nil {
		t.Fatal(err)
	}
	store := transform.Wrap(raw, sh)
	r, err := handlers.NewRunner(handlers.RunnerConfig{Store: store, PG: raw, NodeID: "n1", Decode: decodeEvent})
	if err != nil {
		t.Fatal(err)
	}
	snaps := aggregate.SnapshotPolicy{Every: 2, Version: 1}
	d := newBank(t, store, aggregate.Config{Router: bank.NewRouter(bank.Config{AccountSnapshots: &snaps}), StrongConsistency: r})
	proj := bank.AccountsProjection(handlers.Spec{Partitions: 2, Strong: true})
	if err := r.Register(proj); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	strong := aggregate.WithConsistency(aggregate.Strong)
	dispatch := func(c any) *aggregate.Result {
		t.Helper()
		res, err := d.Dispatch(ctx, c, strong, aggregate.ReturnState())
		if err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		return res
	}

	holders := map[string]string{"alice": "Alice Liddell", "bob": "Bob Builder", "carol": "Carol Danvers"}
	for acct, name := range holders {
		res := dispatch(bank.OpenAccount{AccountNumber: acct, InitialBalance: 10, HolderName: name})
		if !strings.Contains(string(res.Events[0].Data), name) {
			t.Errorf("the reply carries %s, want the plaintext", res.Events[0].Data)
		}
		for range 3 { // past the snapshot interval
			dispatch(bank.DepositMoney{AccountNumber: acct, Amount: 5})
		}
	}
	dispatch(bank.OpenAccount{AccountNumber: "dave", InitialBalance: 7}) // an old client: no holder name
	names, err := bank.LoadHolderNames(ctx, raw.Pool())
	if err != nil || fmt.Sprint(names) != fmt.Sprint(holders) {
		t.Fatalf("projection names %v, %v", names, err)
	}
	// Nothing personal is stored in plaintext: neither events nor snapshots.
	for _, name := range holders {
		var n int
		err := raw.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM events WHERE data::text LIKE '%'||$1||'%')
			+ (SELECT count(*) FROM snapshots WHERE data::text LIKE '%'||$1||'%')`, name).Scan(&n)
		if err != nil || n != 0 {
			t.Fatalf("%q stored in plaintext %d times (%v)", name, n, err)
		}
	}
	var snapCount int
	if err := raw.Pool().QueryRow(ctx, `SELECT count(*) FROM snapshots`).Scan(&snapCount); err != nil || snapCount < 3 {
		t.Fatalf("%d snapshots (%v): the test wants snapshots to exist", snapCount, err)
	}

	// Forget alice by command, carol by deleting her key.
	res := dispatch(bank.ForgetAccountHolder{AccountNumber: "alice"})
	if len(res.Events) != 1 || res.Events[0].Type != "AccountHolderForgotten" {
		t.Fatalf("forget: %+v", res.Events)
	}
	if st := res.State.(*bank.Account); st.HolderName != "" || !st.HolderForgotten || st.Balance != 25 {
		t.Fatalf("state after forget %+v", st)
	}
	if res := dispatch(bank.ForgetAccountHolder{AccountNumber: "alice"}); len(res.Events) != 0 {
		t.Fatalf("second forget recorded %+v", res.Events)
	}
	if err := keys.Forget(ctx, bank.HolderSubjectPrefix+"carol"); err != nil {
		t.Fatal(err)
	}
	forgotten := map[string]bool{"alice": true, "carol": true}

	// Events, through the store: stream reads and the global order.
	all, err := bank.ReadAllEvents(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	opened := 0
	for _, e := range all {
		if e.Type != "AccountOpened" {
			continue
		}
		opened++
		var ev bank.AccountOpened
		if err := json.Unmarshal(e.Data, &ev); err != nil {
			t.Fatal(err)
		}
		want := holders[ev.AccountNumber]
		if forgotten[ev.AccountNumber] {
			want = shred.Forgotten
			if e.Metadata[shred.MetaForgotten] != "holder_name" {
				t.Errorf("%s: metadata %v", ev.AccountNumber, e.Metadata)
			}
		}
		if ev.HolderName != want {
			t.Errorf("%s reads holder %q, want %q", ev.AccountNumber, ev.HolderName, want)
		}
	}
	if opened != 4 {
		t.Fatalf("%d AccountOpened events", opened)
	}
	// Aggregates, rehydrated (the encrypted snapshots of forgotten holders are
	// unreadable now, so they rebuild from events).
	for acct, want := range map[string]string{"alice": "", "bob": "Bob Builder", "carol": shred.Forgotten, "dave": ""} {
		if err := d.Passivate(ctx, bank.AccountStreamPrefix+acct); err != nil {
			t.Fatal(err)
		}
		st := dispatch(bank.DepositMoney{AccountNumber: acct, Amount: 1}).State.(*bank.Account)
		if st.HolderName != want || (acct != "dave" && st.Balance != 26) {
			t.Errorf("%s rehydrated as %+v, want holder %q", acct, st, want)
		}
	}
	// The projection, live and rebuilt: alice's name was cleared by her event; carol's
	// is still the old plaintext until a rebuild (deleting a key alone does not
	// rewrite read models), after which it reads as forgotten.
	names, _ = bank.LoadHolderNames(ctx, raw.Pool())
	if want := map[string]string{"bob": "Bob Builder", "carol": "Carol Danvers"}; fmt.Sprint(names) != fmt.Sprint(want) {
		t.Errorf("live projection names %v, want %v", names, want)
	}
	if err := r.Reset(ctx, bank.ProjectionName); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() error {
		events, err := bank.ReadAllEvents(ctx, store)
		if err != nil {
			return err
		}
		want, err := bank.ReplayBalances(events)
		if err != nil {
			return err
		}
		got, err := bank.LoadAccounts(ctx, raw.Pool())
		if err != nil {
			return err
		}
		if d := bank.DiffAccounts(got, want); len(d) > 0 {
			return fmt.Errorf("rebuilt projection differs: %v", d)
		}
		names, err := bank.LoadHolderNames(ctx, raw.Pool())
		if want := map[string]string{"bob": "Bob Builder", "carol": shred.Forgotten}; err != nil || fmt.Sprint(names) != fmt.Sprint(want) {
			return fmt.Errorf("rebuilt projection names %v, want %v (%v)", names, want, err)
		}
		return nil
	})
	// A forgotten account keeps working and cannot get personal data back.
	if _, err := d.Dispatch(ctx, bank.OpenAccount{AccountNumber: "alice", HolderName: "Alice"}); !errors.Is(err, bank.ErrAccountExists) {
		t.Errorf("reopen: %v", err)
	}
	dispatch(bank.WithdrawMoney{AccountNumber: "alice", Amount: 26})
	dispatch(bank.CloseAccount{AccountNumber: "alice"})
}

// Without a master key, holder names are refused with a clear error and accounts
// without one (old clients) work as before.
func TestHolderNameWithoutMasterKey(t *testing.T) {
	ctx := context.Background()
	sh, err := shred.New(bank.ShredConfig(nil))
	if err != nil {
		t.Fatal(err)
	}
	mem := memstore.New()
	t.Cleanup(func() { _ = mem.Close() })
	d := newBank(t, transform.Wrap(mem, sh), aggregate.Config{})
	if _, err := d.Dispatch(ctx, bank.OpenAccount{AccountNumber: "A", InitialBalance: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Dispatch(ctx, bank.OpenAccount{AccountNumber: "B", HolderName: "Bea"}); !errors.Is(err, shred.ErrNoMasterKey) || aggregate.CodeOf(err) != errcode.Invalid {
		t.Fatalf("holder name without a master key: %v (code %s)", err, aggregate.CodeOf(err))
	}
	if _, err := d.Dispatch(ctx, bank.ForgetAccountHolder{AccountNumber: "A"}); err != nil {
		t.Fatal(err)
	}
	evs, _ := mem.ReadStream(ctx, "account-A", 1, 10)
	if len(evs) != 2 || strings.Contains(string(evs[0].Data), "holder_name") {
		t.Fatalf("stored %+v", evs)
	}
	if _, err := d.Dispatch(ctx, bank.ForgetAccountHolder{AccountNumber: "nobody"}); !errors.Is(err, bank.ErrAccountNotOpen) {
		t.Fatalf("forget an unknown account: %v", err)
	}
}
