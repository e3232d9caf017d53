package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// result is one scenario's row of the table, plus the violations behind it.
type result struct {
	scenario                          string
	attempted, ok, rejected, unknown  int
	errors                            int
	ackedLost, duplicates, gaps       int
	linearizable                      string   // acknowledged writes: yes, NO, timeout
	strict                            string   // rejections included: yes, NO, timeout
	views                             int      // most distinct membership views seen at once during the fault
	notes                             []string // findings that are not (yet) invariants
	info                              []string // what a run measured beyond the table, logged
	conserved                         bool
	maxUnavailable, converge, elapsed time.Duration
	violations                        []string
}

func (r *result) violate(format string, args ...any) {
	r.violations = append(r.violations, fmt.Sprintf(format, args...))
}

// storedEvent is one row of the events table.
type storedEvent struct {
	pos       int64
	stream    string
	version   int64
	typ       string
	data      json.RawMessage
	commandID string
	corrID    string
}

func loadEvents(ctx context.Context, db *pgxpool.Pool, schema string) ([]storedEvent, error) {
	rows, err := db.Query(ctx, `SELECT global_position, stream_id, stream_version, event_type, data,
		coalesce(metadata->>'command_id', ''), coalesce(metadata->>'correlation_id', '')
		FROM `+pgx.Identifier{schema, "events"}.Sanitize()+` ORDER BY global_position`)
	if err != nil {
		return nil, err
	}
	var out []storedEvent
	for rows.Next() {
		var e storedEvent
		if err := rows.Scan(&e.pos, &e.stream, &e.version, &e.typ, &e.data, &e.commandID, &e.corrID); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// accountRow is an account as the replay or the projection has it.
type accountRow struct{ Balance, Version int64 }

// replay folds the account streams in version order. It returns the balances and the
// problems it met: an event before the account was opened, a negative balance, an
// event whose recorded resulting balance disagrees with the replay.
func replay(events []storedEvent) (map[string]accountRow, []string) {
	streams := map[string][]storedEvent{}
	for _, e := range events {
		if strings.HasPrefix(e.stream, "account-") {
			streams[e.stream] = append(streams[e.stream], e)
		}
	}
	out := map[string]accountRow{}
	var problems []string
	for stream, evs := range streams {
		sort.Slice(evs, func(i, j int) bool { return evs[i].version < evs[j].version })
		acct := strings.TrimPrefix(stream, "account-")
		var row accountRow
		opened := false
		for _, e := range evs {
			var d struct {
				Initial int64  `json:"initial_balance"`
				Amount  int64  `json:"amount"`
				Balance *int64 `json:"balance"`
			}
			_ = json.Unmarshal(e.data, &d)
			switch e.typ {
			case "AccountOpened":
				if opened {
					problems = append(problems, fmt.Sprintf("%s v%d: opened twice", stream, e.version))
				}
				opened, row.Balance = true, d.Initial
			case "MoneyDeposited":
				row.Balance += d.Amount
			case "MoneyWithdrawn":
				row.Balance -= d.Amount
			}
			if !opened {
				problems = append(problems, fmt.Sprintf("%s v%d: %s before the account was opened", stream, e.version, e.typ))
			}
			if d.Balance != nil && *d.Balance != row.Balance {
				problems = append(problems, fmt.Sprintf("%s v%d %s (command %s): event records balance %d, replay gives %d",
					stream, e.version, e.typ, e.commandID, *d.Balance, row.Balance))
			}
			if row.Balance < 0 {
				problems = append(problems, fmt.Sprintf("%s v%d: negative balance %d", stream, e.version, row.Balance))
			}
			row.Version = e.version
		}
		out[acct] = row
	}
	return out, problems
}

func loadProjection(ctx context.Context, db *pgxpool.Pool, schema string) (map[string]accountRow, error) {
	rows, err := db.Query(ctx, "SELECT account_number, balance, version FROM "+pgx.Identifier{schema, "bank_accounts"}.Sanitize())
	if err != nil {
		return nil, err
	}
	out := map[string]accountRow{}
	for rows.Next() {
		var a string
		var r accountRow
		if err := rows.Scan(&a, &r.Balance, &r.Version); err != nil {
			return nil, err
		}
		out[a] = r
	}
	return out, rows.Err()
}

// projectionMatches reports nil when bank_accounts equals the store's replay.
func projectionMatches(ctx context.Context, db *pgxpool.Pool, schema string) error {
	events, err := loadEvents(ctx, db, schema)
	if err != nil {
		return err
	}
	want, _ := replay(events)
	got, err := loadProjection(ctx, db, schema)
	if err != nil {
		return err
	}
	if len(got) != len(want) {
		return fmt.Errorf("projection has %d accounts, the replay %d", len(got), len(want))
	}
	for a, w := range want {
		if got[a] != w {
			return fmt.Errorf("account %s: projection %+v, replay %+v", a, got[a], w)
		}
	}
	return nil
}

// transfersSettled reports nil when every transfer stream ends in TransferCompleted
// or TransferFailed.
func transfersSettled(ctx context.Context, db *pgxpool.Pool, schema string) error {
	events, err := loadEvents(ctx, db, schema)
	if err != nil {
		return err
	}
	last := map[string]storedEvent{}
	for _, e := range events {
		if strings.HasPrefix(e.stream, "transfer-") && e.version > last[e.stream].version {
			last[e.stream] = e
		}
	}
	var open []string
	for s, e := range last {
		if e.typ != "TransferCompleted" && e.typ != "TransferFailed" {
			open = append(open, s+" at "+e.typ)
		}
	}
	if len(open) > 0 {
		sort.Strings(open)
		return fmt.Errorf("%d transfers unsettled: %v", len(open), open)
	}
	return nil
}

// checkpointSampler reads the checkpoints table periodically and records any
// checkpoint that went backward.
type checkpointSampler struct {
	mu        sync.Mutex
	last      map[string]int64
	backwards []string
	samples   int
	stop      chan struct{}
	done      chan struct{}
}

func sampleCheckpoints(db *pgxpool.Pool, schema string) *checkpointSampler {
	s := &checkpointSampler{last: map[string]int64{}, stop: make(chan struct{}), done: make(chan struct{})}
	table := pgx.Identifier{schema, "checkpoints"}.Sanitize()
	go func() {
		defer close(s.done)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			rows, err := db.Query(ctx, "SELECT name, position FROM "+table)
			if err == nil {
				s.mu.Lock()
				for rows.Next() {
					var name string
					var pos int64
					if rows.Scan(&name, &pos) == nil {
						if prev, ok := s.last[name]; ok && pos < prev {
							s.backwards = append(s.backwards, fmt.Sprintf("checkpoint %s went from %d back to %d", name, prev, pos))
						}
						s.last[name] = pos
					}
				}
				s.samples++
				s.mu.Unlock()
				rows.Close()
			}
			cancel()
		}
	}()
	return s
}

func (s *checkpointSampler) finish() (backwards []string, samples int) {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.backwards, s.samples
}

// isClientCommand tells the suite's own command ids from the process manager's
// ("<manager>:<process>:<event>:<n>").
func isClientCommand(id string) bool { return id != "" && !strings.Contains(id, ":") }

// checkStore runs the store checkers against the history and fills r.
func checkStore(r *result, ops []*op, events []storedEvent, projection map[string]accountRow) {
	// Per command id: its events, by type.
	perCommand := map[string]int{}
	perCommandType := map[string]int{}
	for _, e := range events {
		perCommand[e.commandID]++
		perCommandType[e.commandID+"\x00"+e.typ]++
	}
	for key, n := range perCommandType {
		if n > 1 && key[0] != 0 {
			parts := strings.SplitN(key, "\x00", 2)
			r.duplicates++
			r.violate("command %s appended %s %d times", parts[0], parts[1], n)
		}
	}
	for _, o := range ops {
		r.attempted++
		switch o.Outcome {
		case okOutcome:
			r.ok++
			if perCommand[o.ID] == 0 {
				r.ackedLost++
				r.violate("acknowledged %s %s (%s on %s) has no event in the store", o.Kind, o.ID, o.Account, o.Node)
			}
		case rejectedOutcome:
			r.rejected++
			if perCommand[o.ID] != 0 {
				r.violate("rejected %s %s has %d events in the store", o.Kind, o.ID, perCommand[o.ID])
			}
		case unknownOutcome:
			r.unknown++
		case errorOutcome:
			r.errors++
			r.violate("%s %s got an unexpected error: %s", o.Kind, o.ID, o.Code)
		}
	}

	// Streams: versions 1..n, no gap, no duplicate.
	versions := map[string][]int64{}
	for _, e := range events {
		versions[e.stream] = append(versions[e.stream], e.version)
	}
	for stream, vs := range versions {
		sort.Slice(vs, func(i, j int) bool { return vs[i] < vs[j] })
		for i, v := range vs {
			if v != int64(i+1) {
				r.gaps++
				r.violate("stream %s has versions %v, want 1..%d", stream, vs, len(vs))
				break
			}
		}
	}

	// Replay: no negative balance, recorded balances agree.
	balances, problems := replay(events)
	for _, p := range problems {
		r.violate("replay: %s", p)
	}

	// Money: what came in from outside (opens, client deposits and withdrawals) equals
	// the sum of balances, and the process manager's movements net to zero per
	// transfer.
	var external, total int64
	perTransfer := map[string]int64{}
	for _, e := range events {
		if !strings.HasPrefix(e.stream, "account-") {
			continue
		}
		var d struct {
			Initial int64 `json:"initial_balance"`
			Amount  int64 `json:"amount"`
		}
		_ = json.Unmarshal(e.data, &d)
		delta := int64(0)
		switch e.typ {
		case "AccountOpened":
			external += d.Initial
			continue
		case "MoneyDeposited":
			delta = d.Amount
		case "MoneyWithdrawn":
			delta = -d.Amount
		}
		if isClientCommand(e.commandID) {
			external += delta
		} else {
			perTransfer[e.corrID] += delta
		}
	}
	for _, b := range balances {
		total += b.Balance
	}
	r.conserved = total == external
	if !r.conserved {
		r.violate("money not conserved: balances add to %d, opens + deposits − withdrawals = %d", total, external)
	}
	for tr, net := range perTransfer {
		if net != 0 {
			r.conserved = false
			r.violate("transfer %s moved a net %d", tr, net)
		}
	}

	// The projection equals the replay.
	if len(projection) != len(balances) {
		r.violate("projection has %d accounts, the replay %d", len(projection), len(balances))
	}
	for a, want := range balances {
		if got, ok := projection[a]; !ok || got != want {
			r.violate("projection row %s = %+v (present %v), replay %+v", a, got, ok, want)
		}
	}
}

// --- linearizability ------------------------------------------------------------

// acctState is the sequential specification's state of one account.
type acctState struct {
	Open    bool
	Balance int64
	Version int64
}

type linInput struct {
	Account string
	Kind    string
	Amount  int64
}

type linOutput struct {
	Outcome outcome
	Version int64
}

// accountModel is one account as a sequential object: open, deposit, withdraw
// (refused on insufficient funds), each acknowledged op at the next stream version.
// An unknown outcome may or may not have happened: the step applies the op if the
// domain would accept it; an op that never happened is the same as one linearized
// after everything else, which porcupine may choose since it never returned.
//
// With strict false a rejection only says the op did not happen (it constrains no
// state): that is linearizability of the acknowledged writes. With strict true a
// rejection must also be justified by the state at its linearization point, so a
// refusal decided on a stale copy of the account (a second owner during a split
// that never saw the other owner's appends) is a violation.
func accountModel(strict bool) porcupine.Model {
	return porcupine.Model{
		Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
			by := map[string][]porcupine.Operation{}
			var keys []string
			for _, o := range history {
				a := o.Input.(linInput).Account
				if _, ok := by[a]; !ok {
					keys = append(keys, a)
				}
				by[a] = append(by[a], o)
			}
			sort.Strings(keys)
			out := make([][]porcupine.Operation, 0, len(keys))
			for _, k := range keys {
				out = append(out, by[k])
			}
			return out
		},
		Init: func() any { return acctState{} },
		Step: func(state, input, output any) (bool, any) {
			st, in, out := state.(acctState), input.(linInput), output.(linOutput)
			next, accepted := st, false
			switch in.Kind {
			case "open":
				if !st.Open {
					next, accepted = acctState{Open: true, Balance: in.Amount, Version: 1}, true
				}
			case "deposit":
				if st.Open {
					next.Balance += in.Amount
					next.Version++
					accepted = true
				}
			case "withdraw":
				if st.Open && st.Balance >= in.Amount {
					next.Balance -= in.Amount
					next.Version++
					accepted = true
				}
			}
			switch out.Outcome {
			case okOutcome:
				return accepted && next.Version == out.Version, next
			case rejectedOutcome:
				return !accepted || !strict, st
			default:
				if accepted {
					return true, next
				}
				return true, st
			}
		},
		DescribeOperation: func(input, output any) string {
			in, out := input.(linInput), output.(linOutput)
			s := fmt.Sprintf("%s(%s, %d) → %s", in.Kind, in.Account, in.Amount, out.Outcome)
			if out.Outcome == okOutcome {
				s += fmt.Sprintf(" v%d", out.Version)
			}
			return s
		},
		DescribeState: func(state any) string {
			st := state.(acctState)
			if !st.Open {
				return "not open"
			}
			return fmt.Sprintf("balance %d @v%d", st.Balance, st.Version)
		},
	}
}

// checkLinearizable checks the client-only accounts' histories with porcupine, for
// the acknowledged writes (r.linearizable, an invariant) and strictly, rejections
// included (r.strict, an invariant only with -chaos.strict), and writes the
// visualisation and the history on failure.
func checkLinearizable(r *result, ops []*op, strictIsInvariant bool) {
	const never = int64(1) << 62
	var history []porcupine.Operation
	for _, o := range ops {
		if !(strings.HasPrefix(o.Account, "L") || strings.HasPrefix(o.Account, "N")) || o.Kind == "transfer" {
			continue
		}
		out := linOutput{Outcome: o.Outcome, Version: o.Version}
		ret := o.Return
		if o.Outcome == unknownOutcome || o.Outcome == errorOutcome {
			out, ret = linOutput{Outcome: unknownOutcome}, never
		}
		history = append(history, porcupine.Operation{ClientId: o.Client, Input: linInput{Account: o.Account, Kind: o.Kind, Amount: o.Amount},
			Call: o.Call, Output: out, Return: ret})
	}
	// Each account is checked on its own with a time limit, so one hard history cannot
	// starve the rest; the visualisation shows the first account that failed.
	check := func(strict bool, what, tag string, invariant bool) string {
		model := accountModel(strict)
		var bad []string
		var firstBad []porcupine.Operation
		timedOut := false
		for _, part := range model.Partition(history) {
			switch porcupine.CheckOperationsTimeout(model, part, 10*time.Second) {
			case porcupine.Illegal:
				bad = append(bad, part[0].Input.(linInput).Account)
				if firstBad == nil {
					firstBad = part
				}
			case porcupine.Unknown:
				timedOut = true
			}
		}
		if len(bad) == 0 {
			switch {
			case timedOut && invariant:
				// Not knowing is not a yes: the run proved nothing about this.
				r.violate("%s: the linearizability check timed out", what)
				return "timeout"
			case timedOut:
				return "timeout"
			case len(history) == 0:
				r.violate("%s: no operations to check", what)
				return "empty"
			}
			return "yes"
		}
		path := "(not written)"
		if dir, err := os.MkdirTemp("", "ringleader-chaos-porcupine-"); err == nil {
			_, info := porcupine.CheckOperationsVerbose(model, firstBad, 10*time.Second)
			p := filepath.Join(dir, r.scenario+"-"+tag+"-"+bad[0]+".html")
			if err := porcupine.VisualizePath(model, info, p); err == nil {
				path = p
			}
			if data, err := json.MarshalIndent(ops, "", " "); err == nil {
				_ = os.WriteFile(filepath.Join(dir, r.scenario+"-history.json"), data, 0o644)
			}
		}
		msg := fmt.Sprintf("%s: histories of accounts %v are not linearizable (visualisation of %s: %s)", what, bad, bad[0], path)
		if invariant {
			r.violate("%s", msg)
		} else {
			r.notes = append(r.notes, msg)
		}
		return "NO"
	}
	r.linearizable = check(false, "acknowledged writes", "writes", true)
	r.strict = check(true, "strict (rejections included)", "strict", strictIsInvariant)
}

// unavailability is the longest a client waited for a definite answer (ok or
// rejected, retries included) among operations invoked in [from, to] (history
// time); an operation left unknown counts from its call to the end of the
// workload.
func unavailability(ops []*op, from, to int64) time.Duration {
	d, _ := longestWait(ops, from, to)
	return d
}

// longestWait is unavailability with the operation that waited longest (nil if none).
func longestWait(ops []*op, from, to int64) (time.Duration, *op) {
	longest := int64(0)
	var which *op
	for _, o := range ops {
		if o.Call < from || o.Call > to {
			continue
		}
		end := o.Return
		if o.Outcome == unknownOutcome || o.Outcome == errorOutcome {
			end = max(to, o.Call)
		}
		if end-o.Call > longest {
			longest, which = end-o.Call, o
		}
	}
	return time.Duration(longest), which
}

// violationKinds names the checkers behind violation messages, for the summary.
var violationKinds = []struct{ match, kind string }{
	{"upgrade: ", "rolling upgrade"},
	{"negative balance", "negative balance"},
	{"records balance", "event's recorded balance differs from the replay"},
	{"acknowledged writes", "acknowledged writes not linearizable"},
	{"strict", "rejections not linearizable"},
	{"has no event in the store", "acknowledged but lost"},
	{"appended", "duplicate events of one command"},
	{"has versions", "stream version gap or duplicate"},
	{"money not conserved", "money not conserved"},
	{"moved a net", "transfer not net zero"},
	{"projection", "projection differs from the replay"},
	{"transfers", "transfer not settled"},
	{"checkpoint", "checkpoint went backward"},
	{"rejected", "rejected command has events"},
	{"unexpected error", "unexpected error reply"},
	{"agreement", "no agreement after the heal"},
	{"handler partitions", "handler partition owners after the heal"},
	{"after the heal", "commands fail after the heal"},
}

// summarize counts violations per checker, keeping the first example of each.
func summarize(violations []string) string {
	counts := map[string]int{}
	first := map[string]string{}
	var order []string
	for _, v := range violations {
		kind := "other"
		for _, k := range violationKinds {
			if strings.Contains(v, k.match) {
				kind = k.kind
				break
			}
		}
		if counts[kind] == 0 {
			order = append(order, kind)
			first[kind] = v
		}
		counts[kind]++
	}
	var b strings.Builder
	for _, k := range order {
		fmt.Fprintf(&b, "  %5d × %s\n          e.g. %s\n", counts[k], k, first[k])
	}
	return b.String()
}

// table renders the results.
func table(rows []*result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-17s %6s %5s %5s %5s %4s %6s %5s %5s %7s %7s %9s %8s %5s %8s %7s\n",
		"scenario", "tried", "ok", "rej", "unkn", "err", "lost", "dups", "gaps", "linear", "strict", "conserved", "unavail", "views", "converge", "time")
	for _, r := range rows {
		fmt.Fprintf(&b, "%-17s %6d %5d %5d %5d %4d %6d %5d %5d %7s %7s %9v %8s %5d %8s %7s\n",
			r.scenario, r.attempted, r.ok, r.rejected, r.unknown, r.errors, r.ackedLost, r.duplicates, r.gaps,
			r.linearizable, r.strict, r.conserved, r.maxUnavailable.Round(10*time.Millisecond), r.views, r.converge.Round(10*time.Millisecond),
			r.elapsed.Round(time.Second))
	}
	return b.String()
}
