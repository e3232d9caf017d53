package bank_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/errcode"
	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/memstore"
	"github.com/ringleader-go/ringleader/examples/bank"
	"github.com/ringleader-go/ringleader/handlers"
	"github.com/ringleader-go/ringleader/handlers/process"
	"github.com/ringleader-go/ringleader/internal/testwait"
)

// localDispatcher is a process.Dispatcher calling an aggregate.Dispatcher directly,
// the way the node's NATS adapter calls a node: the command is decoded from its JSON
// body by the router, refusals become Outcomes, everything else an error. It can
// inject faults: failing before the command reaches the aggregate, and losing the
// reply after it took effect.
type localDispatcher struct {
	d *aggregate.Dispatcher
	r *aggregate.Router

	mu         sync.Mutex
	rng        *rand.Rand
	failBefore float64
	loseReply  float64
	faults     int
}

var _ process.Dispatcher = (*localDispatcher)(nil)

func (l *localDispatcher) roll(p float64) bool {
	if p == 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rng.Float64() < p {
		l.faults++
		return true
	}
	return false
}

func (l *localDispatcher) Dispatch(ctx context.Context, typ string, cmd any, o process.DispatchOptions) (process.Outcome, error) {
	body, ok := cmd.(json.RawMessage)
	if !ok {
		return process.Outcome{}, fmt.Errorf("command is %T, want json.RawMessage", cmd)
	}
	if l.roll(l.failBefore) {
		return process.Outcome{}, errors.New("injected: no nodes")
	}
	c, err := l.r.Decode(typ, body)
	if err != nil {
		return refusal(err)
	}
	res, err := l.d.Dispatch(ctx, c, aggregate.WithCommandID(o.CommandID),
		aggregate.WithCorrelationID(o.CorrelationID), aggregate.WithCausationID(o.CausationID))
	if err != nil {
		return refusal(err)
	}
	if l.roll(l.loseReply) {
		return process.Outcome{}, errors.New("injected: reply lost")
	}
	return process.Outcome{Duplicate: res.Duplicate}, nil
}

func refusal(err error) (process.Outcome, error) {
	switch code := aggregate.CodeOf(err); code {
	case errcode.Rejected, errcode.Invalid, errcode.UnknownCommand:
		return process.Outcome{Code: code, Message: err.Error(), Reason: aggregate.ReasonOf(err)}, nil
	default:
		return process.Outcome{}, err
	}
}

type transferWorld struct {
	store *memstore.Store
	d     *aggregate.Dispatcher
	disp  *localDispatcher
	proc  *process.Manager[bank.TransferState]
	state *process.MemStore
}

func newTransferWorld(t *testing.T, seed uint64) *transferWorld {
	t.Helper()
	store := memstore.New()
	t.Cleanup(func() { _ = store.Close() })
	r := bank.NewRouter(bank.Config{})
	d := newBank(t, store, aggregate.Config{Router: r})
	w := &transferWorld{store: store, d: d, state: process.NewMemStore(),
		disp: &localDispatcher{d: d, r: r, rng: rand.New(rand.NewPCG(seed, 1))}}
	cfg := bank.TransferProcess()
	cfg.States, cfg.Dispatcher = w.state, w.disp
	m, err := process.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.proc = m
	return w
}

func (w *transferWorld) must(t *testing.T, cmd any) {
	t.Helper()
	if _, err := w.d.Dispatch(context.Background(), cmd); err != nil {
		t.Fatalf("%T: %v", cmd, err)
	}
}

// drive feeds the process the global order from *from, like a handler partition:
// a failed event is retried, and with redeliver > 0 handled events are sometimes
// handled again (at-least-once delivery). It returns how many events it read.
func (w *transferWorld) drive(t *testing.T, from *int64, rng *rand.Rand, redeliver float64) int {
	t.Helper()
	ctx := context.Background()
	n := 0
	for {
		page, err := w.store.ReadAll(ctx, *from, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return n
		}
		for _, e := range decoded(t, page) {
			for attempt := 1; ; attempt++ {
				err := w.proc.Handle(ctx, e)
				if err == nil {
					break
				}
				if !errors.Is(err, process.ErrDispatch) || attempt > 100 {
					t.Fatalf("event %s at %d: %v", e.Type, e.GlobalPosition, err)
				}
			}
			if rng != nil && rng.Float64() < redeliver {
				if err := w.proc.Handle(ctx, e); err != nil && !errors.Is(err, process.ErrDispatch) {
					t.Fatalf("redelivery of %s: %v", e.Type, err)
				}
			}
			*from = e.GlobalPosition + 1
			n++
		}
	}
}

// transferOutcomes returns each transfer's last status event type, by transfer id.
func transferOutcomes(events []eventstore.RecordedEvent) map[string]string {
	out := map[string]string{}
	for _, e := range events {
		if id, ok := strings.CutPrefix(e.StreamID, bank.TransferStreamPrefix); ok {
			out[id] = e.Type
		}
	}
	return out
}

// finishedTransfers counts the transfers whose last event is TransferCompleted or
// TransferFailed.
func finishedTransfers(events []eventstore.RecordedEvent) int {
	finished := 0
	for _, o := range transferOutcomes(events) {
		if o == "TransferCompleted" || o == "TransferFailed" {
			finished++
		}
	}
	return finished
}

func balances(t *testing.T, events []eventstore.RecordedEvent) map[string]bank.AccountRow {
	t.Helper()
	rows, err := bank.ReplayBalances(events)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestTransferPaths(t *testing.T) {
	ctx := context.Background()
	w := newTransferWorld(t, 1)
	w.must(t, bank.OpenAccount{AccountNumber: "A", InitialBalance: 100})
	w.must(t, bank.OpenAccount{AccountNumber: "B", InitialBalance: 0})
	w.must(t, bank.OpenAccount{AccountNumber: "Z", InitialBalance: 0})
	w.must(t, bank.CloseAccount{AccountNumber: "Z"})
	w.must(t, bank.TransferMoney{TransferID: "ok", FromAccount: "A", ToAccount: "B", Amount: 30})
	w.must(t, bank.TransferMoney{TransferID: "poor", FromAccount: "B", ToAccount: "A", Amount: 1000})
	w.must(t, bank.TransferMoney{TransferID: "closed", FromAccount: "A", ToAccount: "Z", Amount: 20})
	w.must(t, bank.TransferMoney{TransferID: "nobody", FromAccount: "A", ToAccount: "nobody", Amount: 5})
	var from int64
	w.drive(t, &from, nil, 0)

	events, err := bank.ReadAllEvents(ctx, w.store)
	if err != nil {
		t.Fatal(err)
	}
	got := transferOutcomes(events)
	want := map[string]string{"ok": "TransferCompleted", "poor": "TransferFailed", "closed": "TransferFailed", "nobody": "TransferFailed"}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("transfer %s ended with %s, want %s", id, got[id], w)
		}
	}
	rows := balances(t, events)
	if rows["A"].Balance != 70 || rows["B"].Balance != 30 || rows["Z"].Balance != 0 {
		t.Errorf("balances = %+v", rows)
	}
	recs := w.state.Records(bank.TransferProcessName)
	for id := range want {
		r := recs[id]
		var st bank.TransferState
		_ = json.Unmarshal(r.State, &st)
		if r.Status != process.Done || (st.Step != bank.StepCompleted && st.Step != bank.StepFailed) {
			t.Errorf("process %s: status %s step %s", id, r.Status, st.Step)
		}
		if id == "closed" && (!strings.Contains(st.Reason, "account closed") || !strings.Contains(st.Reason, "refunded")) {
			t.Errorf("closed: reason %q", st.Reason)
		}
		if id == "poor" && !strings.Contains(st.Reason, "insufficient funds") {
			t.Errorf("poor: reason %q", st.Reason)
		}
	}
	// The account events carry the transfer id as correlation id and the
	// TransferRequested event's id as causation id.
	var requested = map[string]string{}
	for _, e := range events {
		if e.Type == "TransferRequested" {
			requested[strings.TrimPrefix(e.StreamID, bank.TransferStreamPrefix)] = e.ID.String()
		}
	}
	for _, e := range events {
		if e.StreamID == "account-B" && e.Type == "MoneyDeposited" {
			if e.Metadata[eventstore.MetaCorrelationID] != "ok" || e.Metadata[eventstore.MetaCausationID] != requested["ok"] ||
				!strings.HasPrefix(e.Metadata[eventstore.MetaCommandID], bank.TransferProcessName+":ok:"+requested["ok"]+":") {
				t.Errorf("deposit metadata = %v", e.Metadata)
			}
		}
	}
}

// A refund refused (the source was emptied and closed while the transfer ran) fails
// the transfer with the amount it holds recorded.
func TestTransferRefundRefused(t *testing.T) {
	w := newTransferWorld(t, 1)
	w.must(t, bank.OpenAccount{AccountNumber: "A", InitialBalance: 10})
	w.must(t, bank.TransferMoney{TransferID: "t", FromAccount: "A", ToAccount: "nobody", Amount: 10})
	// Handle TransferRequested step by step: the withdrawal empties A; close A before
	// the deposit is refused and refunded.
	closer := &closingDispatcher{inner: w.disp, d: w.d}
	cfg := bank.TransferProcess()
	cfg.States, cfg.Dispatcher = w.state, closer
	m, err := process.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.proc = m
	var from int64
	w.drive(t, &from, nil, 0)
	var st bank.TransferState
	_ = json.Unmarshal(w.state.Records(bank.TransferProcessName)["t"].State, &st)
	if st.Step != bank.StepFailed || st.Unrefunded != 10 || !strings.Contains(st.Reason, "held by the transfer") {
		t.Fatalf("state = %+v", st)
	}
}

// closingDispatcher closes the source account A right after it is debited.
type closingDispatcher struct {
	inner process.Dispatcher
	d     *aggregate.Dispatcher
}

func (c *closingDispatcher) Dispatch(ctx context.Context, typ string, cmd any, o process.DispatchOptions) (process.Outcome, error) {
	out, err := c.inner.Dispatch(ctx, typ, cmd, o)
	if err == nil && typ == "WithdrawMoney" && out.OK() {
		if _, err := c.d.Dispatch(ctx, bank.CloseAccount{AccountNumber: "A"}); err != nil {
			return out, err
		}
	}
	return out, err
}

// Random transfers among accounts, some to closed or unknown accounts, many beyond
// the source's funds, while the process suffers failed dispatches, lost replies and
// re-delivered events: money is conserved, no balance goes negative, every transfer
// ends completed or failed and every process is done.
func TestRandomTransfersConserveMoney(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			ctx := context.Background()
			w := newTransferWorld(t, seed)
			w.disp.failBefore, w.disp.loseReply = 0.1, 0.1
			rng := rand.New(rand.NewPCG(seed, 2))
			const accounts, transfers = 8, 300
			var total int64
			names := []string{"closed", "unknown"}
			w.must(t, bank.OpenAccount{AccountNumber: "closed"})
			w.must(t, bank.CloseAccount{AccountNumber: "closed"})
			for i := range accounts {
				n := fmt.Sprint("acc", i)
				bal := int64(rng.IntN(200))
				total += bal
				w.must(t, bank.OpenAccount{AccountNumber: n, InitialBalance: bal})
				names = append(names, n)
			}
			// Clients request transfers concurrently while the process runs.
			var wg sync.WaitGroup
			for c := range 4 {
				crng := rand.New(rand.NewPCG(seed, uint64(10+c)))
				wg.Go(func() {
					for i := range transfers / 4 {
						from := names[2+crng.IntN(accounts)]
						to := names[crng.IntN(len(names))]
						if to == from {
							continue
						}
						_, err := w.d.Dispatch(ctx, bank.TransferMoney{TransferID: fmt.Sprintf("t%d-%d", c, i),
							FromAccount: from, ToAccount: to, Amount: 1 + int64(crng.IntN(120))})
						if err != nil {
							t.Error(err)
						}
					}
				})
			}
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			var pos int64
			for running := true; running; {
				select {
				case <-done:
					running = false
				default:
				}
				w.drive(t, &pos, rng, 0.2)
			}
			w.drive(t, &pos, rng, 0.2) // the marks the last transfers appended

			events, err := bank.ReadAllEvents(ctx, w.store)
			if err != nil {
				t.Fatal(err)
			}
			rows := balances(t, events) // also checks: no negative balance, no gap
			var sum int64
			for _, r := range rows {
				sum += r.Balance
			}
			if sum != total {
				t.Errorf("sum of balances %d, want %d", sum, total)
			}
			outcomes := transferOutcomes(events)
			count := map[string]int{}
			for id, o := range outcomes {
				count[o]++
				if o != "TransferCompleted" && o != "TransferFailed" {
					t.Errorf("transfer %s ended at %s", id, o)
				}
			}
			if count["TransferCompleted"] == 0 || count["TransferFailed"] == 0 {
				t.Errorf("outcomes %v: want both kinds", count)
			}
			for id, r := range w.state.Records(bank.TransferProcessName) {
				if r.Status != process.Done || len(r.Pending) != 0 {
					t.Errorf("process %s: %+v", id, r)
				}
			}
			if len(w.state.Records(bank.TransferProcessName)) != len(outcomes) {
				t.Errorf("%d processes for %d transfers", len(w.state.Records(bank.TransferProcessName)), len(outcomes))
			}
			t.Logf("%d transfers %v, %d faults injected", len(outcomes), count, w.disp.faults)
		})
	}
}

// The transfer process as a handlers.Handler on a Runner over the in-memory store,
// with four partitions.
func TestTransfersOnRunner(t *testing.T) {
	ctx := context.Background()
	w := newTransferWorld(t, 7)
	w.disp.failBefore = 0.05
	bh, err := bank.Handlers(bank.HandlersConfig{Dispatcher: w.disp, States: w.state,
		OnError: func(f handlers.Failure) (handlers.Decision, time.Duration) { return handlers.Retry, time.Millisecond }})
	if err != nil {
		t.Fatal(err)
	}
	r, err := handlers.NewRunner(handlers.RunnerConfig{Store: w.store, NodeID: "n1", Decode: decodeEvent})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	if err := r.Register(bh.Transfers); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		w.must(t, bank.OpenAccount{AccountNumber: fmt.Sprint("acc", i), InitialBalance: 50})
	}
	const n = 60
	for i := range n {
		from, to := fmt.Sprint("acc", i%6), fmt.Sprint("acc", (i*5+1)%7) // acc6 does not exist
		if from == to {
			to = "acc6"
		}
		w.must(t, bank.TransferMoney{TransferID: fmt.Sprint("t", i), FromAccount: from, ToAccount: to, Amount: int64(10 + i%40)})
	}
	var events []eventstore.RecordedEvent
	waitFor(t, 20*time.Second, func() error {
		events, err = bank.ReadAllEvents(ctx, w.store)
		if err != nil {
			return err
		}
		if finished := finishedTransfers(events); finished != n {
			return fmt.Errorf("%d of %d transfers finished", finished, n)
		}
		return nil
	})
	var sum int64
	for _, r := range balances(t, events) {
		sum += r.Balance
	}
	if sum != 6*50 {
		t.Errorf("sum of balances %d, want %d", sum, 6*50)
	}
}

// waitFor polls cond until it returns nil, failing t after total.
func waitFor(t testing.TB, total time.Duration, cond func() error) {
	t.Helper()
	testwait.For(t, total, cond)
}
