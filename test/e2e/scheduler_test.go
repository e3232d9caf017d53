package e2e

import (
	"context"
	"errors"
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

// TestScheduledCommandsFireOnceAcrossKill: the owner of 35 due schedules (commands
// scheduled by application code, straight into the schedules table) is kill -9'd
// while it is firing them. Its marks are held back (the test holds the schedules'
// rows locked), so it dies after dispatching some of them and before recording any
// as fired: the crash between dispatch and mark. The nodes that inherit its
// partitions fire them all again, and those due while it is dead, and the events
// table holds exactly one event per schedule id (its Command-Id). Schedules
// cancelled before they were due never fire, and the other nodes' schedules fire
// as usual.
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
	orphans := ids("sched-victim", 25, true)
	others := ids("sched-other", 25, false)
	cancelled := ids("sched-cancelled", 5, true)

	// The victim's 25 come due in three seconds. Before that, a transaction of the
	// test locks their rows: the victim reads them as due (a plain SELECT) and
	// dispatches them, but its marks (UPDATE … SET state = 'fired') wait.
	victimDue := time.Now().Add(3 * time.Second)
	for _, id := range orphans {
		schedule(id, victimDue, true)
	}
	lockConn := pgtest.Connect(t)
	lock, err := lockConn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lock.Rollback(ctx) }()
	var locked int
	if err := lock.QueryRow(ctx, strings.ReplaceAll(`SELECT count(*) FROM (SELECT 1 FROM SCHEDULES WHERE schedule_id = ANY($1) AND state = 'pending' FOR UPDATE) l`,
		"SCHEDULES", e.schema+".schedules"), orphans).Scan(&locked); err != nil {
		t.Fatal(err)
	}
	if locked != len(orphans) {
		t.Fatalf("locked %d pending schedules of the victim, want %d (did they fire before the lock?)", locked, len(orphans))
	}
	var lockPID int
	if err := lock.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&lockPID); err != nil {
		t.Fatal(err)
	}
	for _, id := range others {
		schedule(id, time.Now().Add(2*time.Second), true)
	}
	for _, id := range cancelled {
		schedule(id, time.Now().Add(2*time.Second), false)
		if ok, err := app.Cancel(ctx, id); err != nil || !ok {
			t.Fatalf("cancel %s: %v %v", id, ok, err)
		}
	}
	// Wait until the victim has fired some of them (their deposits are in the
	// events table) and is stuck recording it.
	dispatched := func() []string {
		per := e.eventsPerCommand()
		var out []string
		for _, id := range orphans {
			if per[id] > 0 {
				out = append(out, id)
			}
		}
		return out
	}
	waitFor(t, 30*time.Second, "the victim to fire some of its schedules", func() error {
		if d := dispatched(); len(d) == 0 {
			return errors.New("none of its schedules has an event yet")
		}
		var waiting int
		if err := e.db.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`, lockPID).Scan(&waiting); err != nil {
			return err
		}
		if waiting == 0 {
			return errors.New("no mark is waiting for the locked rows")
		}
		return nil
	})

	e.kill(victim)
	killedAt := time.Now()
	// The dead node's marks still wait in PostgreSQL, which has not noticed that
	// their client is gone: end them, so that they cannot land once the rows are
	// unlocked. (The survivors need about a second to declare the victim dead
	// before they own its partitions; nothing of theirs waits yet.)
	if _, err := lock.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))`); err != nil {
		t.Fatal(err)
	}
	firedBeforeKill := dispatched()
	var stillPending int
	if err := lock.QueryRow(ctx, strings.ReplaceAll(`SELECT count(*) FROM SCHEDULES WHERE schedule_id = ANY($1) AND state = 'pending'`,
		"SCHEDULES", e.schema+".schedules"), firedBeforeKill).Scan(&stillPending); err != nil {
		t.Fatal(err)
	}
	if stillPending != len(firedBeforeKill) {
		t.Fatalf("of %d schedules the victim fired, %d are pending at the kill; want all (marked none)", len(firedBeforeKill), stillPending)
	}
	t.Logf("FIGURE: killed %s after it fired %d of its %d due schedules, before it marked any", victim, len(firedBeforeKill), len(orphans))
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// In the dead node's partitions, already due while it is dead but still on the
	// ring (gossip takes about a second to declare it dead): 25 + 10 = 35 due
	// schedules of the killed node in all.
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
	// The ones the victim fired before it died were fired again by a survivor
	// (answered as duplicates: still one event each, checked above).
	for _, id := range firedBeforeKill {
		s, err := app.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if s.FiredBy == victim || s.FiredBy == "" {
			t.Errorf("schedule %s, fired by the victim before its kill, is marked fired by %q", id, s.FiredBy)
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
// mark (and are refunded), some complete first. Each of those three happens at
// least once: rounds of 40 transfers are sent until each has, up to 10 rounds (the
// rarest, an expiry before the withdrawal, came 1-2 times a round in the runs
// measured, so 10 rounds without one would take a broken race).
// Every transfer still ends completed or failed, money is conserved, the projection
// equals the store, and no expiry is left pending.
func TestTransfersRacingTheirExpiry(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"n1", "n2", "n3"} {
		e.start(id, "--scheduler-poll=250ms", "--transfer-timeout=1ms")
	}
	e.waitConverged("n1", "n2", "n3")
	const accounts, initial, transfers, maxRounds = 4, int64(100), 40, 10
	for i := range accounts {
		e.mustOK("OpenAccount", map[string]any{"account_number": fmt.Sprintf("R%d", i), "initial_balance": initial}, fmt.Sprintf("open-R%d", i))
	}
	const (
		expiredBefore = "expired before its withdrawal"
		refunded      = "expired after its withdrawal, refunded"
		completed     = "completed before its expiry"
		declined      = "failed, not expired (insufficient funds)"
	)
	// outcomes reads how each transfer of the round ended: its last event, whether
	// that is an expiry, and whether its source was debited.
	outcomes := func(round int) (map[string]string, error) {
		rows := e.query(`SELECT t.id, t.typ, t.expired, EXISTS (SELECT 1 FROM EVENTS w
				WHERE w.event_type = 'MoneyWithdrawn' AND w.metadata->>'correlation_id' = t.id)
			FROM (SELECT DISTINCT ON (stream_id) substr(stream_id, length('transfer-') + 1) AS id, event_type AS typ,
				coalesce(data->>'expired', '') = 'true' AS expired
				FROM EVENTS WHERE stream_id LIKE $1 ORDER BY stream_id, stream_version DESC) t`, fmt.Sprintf("transfer-race-%d-%%", round))
		defer rows.Close()
		out := map[string]string{}
		for rows.Next() {
			var id, typ string
			var expired, withdrawn bool
			if err := rows.Scan(&id, &typ, &expired, &withdrawn); err != nil {
				return nil, err
			}
			switch {
			case typ == "TransferCompleted":
				out[id] = completed
			case typ == "TransferFailed" && expired && withdrawn:
				out[id] = refunded
			case typ == "TransferFailed" && expired:
				out[id] = expiredBefore
			case typ == "TransferFailed":
				out[id] = declined
			default:
				out[id] = "at " + typ
			}
		}
		return out, rows.Err()
	}
	counts := map[string]int{}
	sent := 0
	for round := 0; round < maxRounds && (counts[expiredBefore] == 0 || counts[refunded] == 0 || counts[completed] == 0); round++ {
		for i := range transfers {
			id := fmt.Sprintf("race-%d-%d", round, i)
			body := map[string]any{"transfer_id": id, "from_account": fmt.Sprintf("R%d", i%accounts), "to_account": fmt.Sprintf("R%d", (i+1)%accounts), "amount": 10 + i}
			if _, err := e.sendUntilAcked("TransferMoney", body, id, 30*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		sent += transfers
		var outcome map[string]string
		waitFor(t, 60*time.Second, fmt.Sprintf("every transfer of round %d to complete or fail", round), func() error {
			var err error
			if outcome, err = outcomes(round); err != nil {
				return err
			}
			for i := range transfers {
				id := fmt.Sprintf("race-%d-%d", round, i)
				if o := outcome[id]; o == "" || strings.HasPrefix(o, "at ") {
					return fmt.Errorf("transfer %s is %q", id, o)
				}
			}
			return nil
		})
		roundCounts := map[string]int{}
		for _, o := range outcome {
			roundCounts[o]++
			counts[o]++
		}
		t.Logf("FIGURE: round %d, %d transfers racing a 1ms expiry: %v", round, transfers, roundCounts)
	}
	for _, c := range []string{expiredBefore, refunded, completed} {
		if counts[c] == 0 {
			t.Errorf("in %d transfers racing a 1ms expiry, none %s: that race was not exercised (outcomes %v)", sent, c, counts)
		}
	}
	waitFor(t, 30*time.Second, "no expiry pending", func() error {
		for id, st := range e.scheduleStates("bank_transfers:race-") {
			if st == scheduler.Pending {
				return fmt.Errorf("%s is pending", id)
			}
		}
		return nil
	})
	// A transfer that expired after its withdrawal is failed by the expiry at once,
	// and refunded by its process after that: wait for the refunds before the
	// books must balance (money that never comes back still fails here).
	waitFor(t, 30*time.Second, "every refund", func() error {
		var total int64
		for _, b := range e.balances() {
			total += b
		}
		if total != accounts*initial {
			return fmt.Errorf("balances add to %d, want %d", total, accounts*initial)
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
