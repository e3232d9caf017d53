package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/eventstore/pgstore/pgtest"
	"github.com/ringleader-go/ringleader/scheduler"
)

// schedulesByState counts the test schema's schedules by id prefix and state.
func (e *env) scheduleStates(prefix string) map[string]scheduler.State {
	e.t.Helper()
	rows := e.query(strings.ReplaceAll(`SELECT schedule_id, state FROM SCHEDULES WHERE schedule_id LIKE $1`,
		"SCHEDULES", e.schema+".schedules"), prefix+"%")
	out := map[string]scheduler.State{}
	for rows.Next() {
		var id, st string
		if err := rows.Scan(&id, &st); err != nil {
			e.t.Fatal(err)
		}
		out[id] = scheduler.State(st)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// TestScheduledCommandsFireOnceAcrossKill: commands scheduled (by application code,
// straight into the schedules table) in partitions owned by a node that is then
// kill -9'd come due while it is dead or leaving; the nodes that inherit its
// partitions fire them, and the events table holds exactly one event per schedule
// id (its Command-Id). Schedules cancelled before they were due never fire, and the
// other nodes' schedules fire as usual.
func TestScheduledCommandsFireOnceAcrossKill(t *testing.T) {
	e := newEnv(t)
	poll := "--scheduler-poll=250ms"
	for _, id := range []string{"n1", "n2", "n3"} {
		e.start(id, poll)
	}
	e.waitConverged("n1", "n2", "n3")
	const victim = "n2"

	// Which node owns which schedule partition, as the cluster says.
	owner := make([]string, scheduler.Partitions)
	for p := range owner {
		owner[p] = e.ownerOf(url.QueryEscape(scheduler.PartitionKey(p))) // "#" would start a URL fragment
	}
	const accounts = 5
	for i := range accounts {
		e.mustOK("OpenAccount", map[string]any{"account_number": fmt.Sprintf("SCH%d", i), "initial_balance": 0}, fmt.Sprintf("open-SCH%d", i))
	}

	ctx := context.Background()
	app, err := scheduler.Open(ctx, pgtest.Connect(t), e.schema)
	if err != nil {
		t.Fatal(err)
	}
	// ids returns n schedule ids with the given prefix whose partition the victim
	// owns (victim true) or does not.
	ids := func(prefix string, n int, victimOwned bool) []string {
		var out []string
		for i := 0; len(out) < n; i++ {
			if i > 100_000 {
				t.Fatalf("no schedule partition owned by %s (victim %v): owners %v", victim, victimOwned, owner)
			}
			id := fmt.Sprintf("%s-%d", prefix, i)
			if (owner[scheduler.PartitionOf(id)] == victim) == victimOwned {
				out = append(out, id)
			}
		}
		return out
	}
	want := map[string]int64{} // account → deposits that must take effect
	scheduled := 0
	schedule := func(id string, due time.Time, effective bool) {
		t.Helper()
		acct := fmt.Sprintf("SCH%d", scheduled%accounts)
		scheduled++
		if _, err := app.ScheduleOnce(ctx, scheduler.Request{
			ID: id, CommandType: "DepositMoney", Command: map[string]any{"account_number": acct, "amount": 1}, DueAt: due,
		}); err != nil {
			t.Fatalf("schedule %s: %v", id, err)
		}
		// Scheduling again is a no-op.
		if _, err := app.ScheduleOnce(ctx, scheduler.Request{
			ID: id, CommandType: "DepositMoney", Command: map[string]any{"account_number": acct, "amount": 1}, DueAt: due,
		}); err != nil {
			t.Fatalf("schedule %s again: %v", id, err)
		}
		if effective {
			want[acct]++
		}
	}
	due := time.Now().Add(2 * time.Second)
	orphans := ids("sched-victim", 25, true)
	others := ids("sched-other", 25, false)
	cancelled := ids("sched-cancelled", 5, true)
	for _, id := range others {
		schedule(id, due, true)
	}
	for _, id := range cancelled {
		schedule(id, due, false)
		if ok, err := app.Cancel(ctx, id); err != nil || !ok {
			t.Fatalf("cancel %s: %v %v", id, ok, err)
		}
	}

	e.kill(victim)
	killedAt := time.Now()
	// In the dead node's partitions, due while it is dead but still on the ring
	// (gossip takes about a second to declare it dead): due in 300ms, or already
	// due. They wait for the ring to move.
	for _, id := range orphans {
		schedule(id, killedAt.Add(300*time.Millisecond), true)
	}
	late := ids("sched-late", 10, true)
	for _, id := range late {
		schedule(id, time.Now().Add(-time.Second), true)
	}
	e.waitConverged("n1", "n3")

	all := append(append(append([]string{}, orphans...), others...), late...)
	waitFor(t, 60*time.Second, "every schedule fired", func() error {
		states := e.scheduleStates("sched-")
		for _, id := range all {
			if states[id] != scheduler.Fired {
				return fmt.Errorf("%s is %q", id, states[id])
			}
		}
		return nil
	})
	t.Logf("FIGURE: %d schedules (%d in the killed node's partitions) all fired %s after the kill -9", len(all), len(orphans)+len(late), time.Since(killedAt).Round(100*time.Millisecond))

	// Exactly once, by Command-Id, in the events table.
	perCommand := e.eventsPerCommand()
	for _, id := range all {
		if n := perCommand[id]; n != 1 {
			t.Errorf("schedule %s: %d events with its Command-Id, want 1", id, n)
		}
	}
	for _, id := range cancelled {
		if n := perCommand[id]; n != 0 {
			t.Errorf("cancelled schedule %s fired: %d events", id, n)
		}
		if st := e.scheduleStates(id)[id]; st != scheduler.Cancelled {
			t.Errorf("cancelled schedule %s is %s", id, st)
		}
	}
	// The dead node's schedules were fired by the survivors.
	rows := e.query(strings.ReplaceAll(`SELECT schedule_id, fired_by FROM SCHEDULES WHERE schedule_id LIKE 'sched-%' AND state = 'fired'`,
		"SCHEDULES", e.schema+".schedules"))
	firedBy := map[string]int{}
	for rows.Next() {
		var id, by string
		if err := rows.Scan(&id, &by); err != nil {
			t.Fatal(err)
		}
		firedBy[by]++
		if by == victim {
			t.Errorf("schedule %s was fired by the killed node", id)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("FIGURE: schedules fired per node %v", firedBy)

	// The deposits add up: every schedule took effect once, nothing else did.
	balances := e.balances()
	for i := range accounts {
		acct := fmt.Sprintf("SCH%d", i)
		if balances[acct] != want[acct] {
			t.Errorf("account %s: balance %d, want %d", acct, balances[acct], want[acct])
		}
	}
	e.checkStreamsContiguous()
	e.waitProjectionMatchesStore(30 * time.Second)

	// The survivors' /metrics show the schedules.
	resp, err := http.Get("http://" + e.node("n1").admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `ringleader_schedules{state="fired"}`) || !strings.Contains(string(body), "ringleader_schedules_fired_total") {
		t.Errorf("/metrics lacks the scheduler's metrics")
	}
}

// TestTransferExpirySchedule: on a node, the transfer process schedules each
// transfer's expiry (--transfer-timeout) and cancels it when the transfer completes;
// an expiry of an unknown transfer fired straight from the table is refused and the
// schedule fails with the reason.
func TestTransferExpirySchedule(t *testing.T) {
	e := newEnv(t)
	e.start("n1", "--scheduler-poll=250ms", "--transfer-timeout=30s")
	e.waitConverged("n1")
	e.mustOK("OpenAccount", map[string]any{"account_number": "X1", "initial_balance": 100}, "open-X1")
	e.mustOK("OpenAccount", map[string]any{"account_number": "X2", "initial_balance": 0}, "open-X2")
	e.mustOK("TransferMoney", map[string]any{"transfer_id": "tx1", "from_account": "X1", "to_account": "X2", "amount": 30}, "tx1")
	waitFor(t, 30*time.Second, "the expiry of tx1 to be cancelled", func() error {
		st := e.scheduleStates("bank_transfers:tx1:expire")["bank_transfers:tx1:expire"]
		if st != scheduler.Cancelled {
			return fmt.Errorf("expiry schedule is %q", st)
		}
		return nil
	})
	if b := e.balances(); b["X1"] != 70 || b["X2"] != 30 {
		t.Fatalf("balances %v", b)
	}

	app, err := scheduler.Open(context.Background(), pgtest.Connect(t), e.schema)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.ScheduleOnce(context.Background(), scheduler.Request{
		ID: "expire-nobody", CommandType: "ExpireTransfer", Command: map[string]any{"transfer_id": "nobody"}, DueAt: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the refused schedule to fail", func() error {
		s, err := app.Get(context.Background(), "expire-nobody")
		if err != nil {
			return err
		}
		if s.State != scheduler.Failed || !strings.Contains(s.LastError, "transfer not requested") {
			return fmt.Errorf("%s: %q", s.State, s.LastError)
		}
		return nil
	})
}

// TestTransfersRacingTheirExpiry: with a 1ms transfer timeout every transfer's
// expiry comes due at once and races the transfer process across three nodes: some
// transfers expire before their withdrawal, some between the withdrawal and its
// mark (and are refunded), some complete first. Every transfer still ends
// completed or failed, money is conserved, the projection equals the store, and no
// expiry is left pending.
func TestTransfersRacingTheirExpiry(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"n1", "n2", "n3"} {
		e.start(id, "--scheduler-poll=250ms", "--transfer-timeout=1ms")
	}
	e.waitConverged("n1", "n2", "n3")
	const accounts, initial, transfers = 4, int64(100), 40
	for i := range accounts {
		e.mustOK("OpenAccount", map[string]any{"account_number": fmt.Sprintf("R%d", i), "initial_balance": initial}, fmt.Sprintf("open-R%d", i))
	}
	for i := range transfers {
		id := fmt.Sprintf("race-%d", i)
		body := map[string]any{"transfer_id": id, "from_account": fmt.Sprintf("R%d", i%accounts), "to_account": fmt.Sprintf("R%d", (i+1)%accounts), "amount": 10 + i}
		if _, err := e.sendUntilAcked("TransferMoney", body, id, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	outcome := map[string]string{}
	waitFor(t, 60*time.Second, "every transfer to complete or fail", func() error {
		rows := e.query(`SELECT DISTINCT ON (stream_id) stream_id, event_type, coalesce(data->>'expired', '') FROM EVENTS
			WHERE stream_id LIKE 'transfer-race-%' ORDER BY stream_id, stream_version DESC`)
		outcome = map[string]string{}
		for rows.Next() {
			var stream, typ, expired string
			if err := rows.Scan(&stream, &typ, &expired); err != nil {
				return err
			}
			if expired == "true" {
				typ += " (expired)"
			}
			outcome[stream] = typ
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for i := range transfers {
			if typ := outcome[fmt.Sprintf("transfer-race-%d", i)]; !strings.HasPrefix(typ, "TransferCompleted") && !strings.HasPrefix(typ, "TransferFailed") {
				return fmt.Errorf("transfer race-%d is at %q", i, typ)
			}
		}
		return nil
	})
	counts := map[string]int{}
	for _, typ := range outcome {
		counts[typ]++
	}
	// Expired transfers whose source had been debited, and so was refunded.
	var refunded int
	rows := e.query(`SELECT count(DISTINCT w.metadata->>'correlation_id')::int FROM EVENTS w JOIN EVENTS f
		ON f.stream_id = 'transfer-' || (w.metadata->>'correlation_id') AND f.event_type = 'TransferFailed' AND f.data->>'expired' = 'true'
		WHERE w.event_type = 'MoneyWithdrawn' AND w.metadata->>'correlation_id' LIKE 'race-%'`)
	for rows.Next() {
		if err := rows.Scan(&refunded); err != nil {
			t.Fatal(err)
		}
	}
	rows.Close()
	t.Logf("FIGURE: %d transfers racing a 1ms expiry ended %v; %d expired after their withdrawal and were refunded", transfers, counts, refunded)
	waitFor(t, 30*time.Second, "no expiry pending", func() error {
		for id, st := range e.scheduleStates("bank_transfers:race-") {
			if st == scheduler.Pending {
				return fmt.Errorf("%s is pending", id)
			}
		}
		return nil
	})
	e.checkMoney(accounts * initial)
	for _, p := range []string{"n1", "n2", "n3"} {
		parts, err := getHandlers(e.node(p).admin)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range parts {
			if s.State == "failed" || s.LastError != "" {
				t.Errorf("%s: handler %s#%d is %s: %s", p, s.Handler, s.Partition, s.State, s.LastError)
			}
		}
	}
}
