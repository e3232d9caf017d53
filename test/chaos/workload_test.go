package chaos

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// outcome is what a client knows about one operation.
type outcome int

const (
	okOutcome       outcome = iota // acknowledged: it happened
	rejectedOutcome                // refused by the domain: it did not happen
	unknownOutcome                 // timeout / unavailable after every retry: it may or may not have happened
	errorOutcome                   // any other error code: a bug, counted as a violation
)

func (o outcome) String() string {
	return [...]string{"ok", "rejected", "unknown", "error"}[o]
}

// op is one client operation as the history records it. Call and Return are
// nanoseconds on the monotonic clock since the history began; an unknown op never
// returned.
type op struct {
	Client  int
	Kind    string // open, deposit, withdraw, transfer
	Account string // the account (transfers: the source)
	To      string // transfers: the destination
	Amount  int64  // initial balance for opens
	ID      string // Command-Id (and transfer id)
	Call    int64
	Return  int64
	Outcome outcome
	Version int64  // aggregate_version of an acknowledged op
	Node    string // node that answered
	Code    string // error code of the last reply, if any
	// Attempts lists each attempt's answer ("ok@n2", "timeout@n1", "no answer"), to
	// explain the longest waits.
	Attempts []string
}

// history is every operation of a run, appended by concurrent clients.
type history struct {
	start time.Time
	mu    sync.Mutex
	ops   []*op
}

func newHistory() *history { return &history{start: time.Now()} }

func (h *history) now() int64 { return int64(time.Since(h.start)) }

func (h *history) add(o *op) {
	h.mu.Lock()
	h.ops = append(h.ops, o)
	h.mu.Unlock()
}

func (h *history) all() []*op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*op(nil), h.ops...)
}

// wireReply is the reply body (docs/wire-contract.md), decoded black-box.
type wireReply struct {
	OK               bool   `json:"ok"`
	Node             string `json:"node"`
	Duplicate        bool   `json:"duplicate"`
	AggregateVersion int64  `json:"aggregate_version"`
	Error            *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// client sends commands over its own NATS connection (root namespace, loopback) and
// retries an operation with the same Command-Id until it gets a definite answer or
// its retry budget is spent.
type client struct {
	id     int
	nc     *nats.Conn
	prefix string
	h      *history
	budget time.Duration // total time spent retrying one operation
}

// attemptTimeout is how long one attempt waits for its answer: what a request lost
// with its node (killed, paused, cut off) costs a client before it retries, and so
// the failover time a client sees when it cannot be answered by another node sooner.
// Commands take milliseconds here; 750 ms leaves room for a loaded machine.
const attemptTimeout = 750 * time.Millisecond

// noAnswer is the code attempt reports when no answer came within attemptTimeout;
// the client retries at once (the node it reached may be gone), where it backs off
// after an answer that says to retry later.
const noAnswer = "no answer"

// attempt makes one request. It returns the reply, or a nil reply when the outcome of
// this attempt is unknown.
func (c *client) attempt(typ string, body []byte, commandID string) *wireReply {
	msg := nats.NewMsg(c.prefix + ".cmd." + typ)
	msg.Data = body
	msg.Header.Set("Command-Id", commandID)
	// A node answers within Timeout (it stops work a margin before, see the wire
	// contract), so the client waits exactly that long: a request lost inside a
	// node that died is given up after attemptTimeout and retried elsewhere.
	msg.Header.Set("Timeout", attemptTimeout.String())
	resp, err := c.nc.RequestMsg(msg, attemptTimeout)
	if errors.Is(err, nats.ErrTimeout) {
		return &wireReply{Error: &struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}{Code: noAnswer, Message: err.Error()}}
	}
	if err != nil {
		return nil
	}
	var r wireReply
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return &wireReply{Error: &struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}{Code: "bad_reply", Message: string(resp.Data)}}
	}
	return &r
}

// do runs one operation to a definite outcome (or unknown) and records it.
func (c *client) do(o *op, typ string, body map[string]any) *op {
	data, _ := json.Marshal(body)
	o.Client = c.id
	o.Call = c.h.now()
	deadline := time.Now().Add(c.budget)
	for {
		t0 := time.Now()
		r := c.attempt(typ, data, o.ID)
		o.Attempts = append(o.Attempts, describeAttempt(r, time.Since(t0)))
		switch {
		case r != nil && r.OK:
			o.Outcome, o.Version, o.Node = okOutcome, r.AggregateVersion, r.Node
		case r != nil && r.Error != nil && r.Error.Code == "rejected":
			o.Outcome, o.Node, o.Code = rejectedOutcome, r.Node, r.Error.Code
		case r != nil && (r.Error == nil || (r.Error.Code != "timeout" && r.Error.Code != "unavailable" && r.Error.Code != "conflict" && r.Error.Code != noAnswer)):
			o.Outcome, o.Node = errorOutcome, r.Node
			if r.Error != nil {
				o.Code = r.Error.Code + ": " + r.Error.Message
			}
		default:
			if r != nil && r.Error != nil {
				o.Code = r.Error.Code
			} else {
				o.Code = "no reply"
			}
			if time.Now().Before(deadline) {
				if o.Code != noAnswer {
					time.Sleep(200 * time.Millisecond)
				}
				continue
			}
			o.Outcome = unknownOutcome
			c.h.add(o)
			return o
		}
		o.Return = c.h.now()
		c.h.add(o)
		return o
	}
}

// Account names. Linearizability is checked on the L and N accounts, which only
// clients touch; the T accounts also take transfers (whose debits and credits the
// process manager issues at times no client observes) and are checked by the
// conservation and replay checkers instead.
func linAccount(i int) string      { return fmt.Sprintf("L%d", i) }
func transferAccount(i int) string { return fmt.Sprintf("T%d", i) }

const (
	linAccounts      = 6
	transferAccounts = 4
	initialBalance   = 100
)

// workload is the clients' plan: a seed, how many clients, and (for the broken-build
// check) how concentrated the traffic is.
type workload struct {
	seed    uint64
	clients int
	pause   time.Duration // between one client's operations
}

// setup opens the shared accounts (acknowledged before the clients start).
func (w workload) setup(c *client) error {
	var names []string
	for i := range linAccounts {
		names = append(names, linAccount(i))
	}
	for i := range transferAccounts {
		names = append(names, transferAccount(i))
	}
	for _, a := range names {
		c.budget = 30 * time.Second
		o := c.do(&op{Kind: "open", Account: a, Amount: initialBalance, ID: "open-" + a}, "OpenAccount",
			map[string]any{"account_number": a, "initial_balance": initialBalance})
		if o.Outcome != okOutcome {
			return fmt.Errorf("open %s: %s %s", a, o.Outcome, o.Code)
		}
	}
	return nil
}

// run drives client c until stop closes.
func (w workload) run(c *client, stop <-chan struct{}) {
	rng := rand.New(rand.NewPCG(w.seed, uint64(c.id)))
	var own []string // accounts this client opened
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		id := fmt.Sprintf("c%d-%d", c.id, i)
		pick := func() string {
			if len(own) > 0 && rng.IntN(4) == 0 {
				return own[rng.IntN(len(own))]
			}
			return linAccount(rng.IntN(linAccounts))
		}
		switch p := rng.IntN(100); {
		case p < 4:
			a := fmt.Sprintf("N%d-%d", c.id, i)
			o := c.do(&op{Kind: "open", Account: a, Amount: 50, ID: id}, "OpenAccount",
				map[string]any{"account_number": a, "initial_balance": 50})
			if o.Outcome == okOutcome {
				own = append(own, a)
			}
		case p < 36:
			a, amt := pick(), int64(1+rng.IntN(20))
			c.do(&op{Kind: "deposit", Account: a, Amount: amt, ID: id}, "DepositMoney",
				map[string]any{"account_number": a, "amount": amt})
		case p < 68:
			a, amt := pick(), int64(1+rng.IntN(40))
			c.do(&op{Kind: "withdraw", Account: a, Amount: amt, ID: id}, "WithdrawMoney",
				map[string]any{"account_number": a, "amount": amt})
		case p < 76:
			a, amt := transferAccount(rng.IntN(transferAccounts)), int64(1+rng.IntN(20))
			kind, typ := "deposit", "DepositMoney"
			if rng.IntN(2) == 0 {
				kind, typ = "withdraw", "WithdrawMoney"
			}
			c.do(&op{Kind: kind, Account: a, Amount: amt, ID: id}, typ, map[string]any{"account_number": a, "amount": amt})
		default:
			from := rng.IntN(transferAccounts)
			to := (from + 1 + rng.IntN(transferAccounts-1)) % transferAccounts
			amt := int64(1 + rng.IntN(60))
			c.do(&op{Kind: "transfer", Account: transferAccount(from), To: transferAccount(to), Amount: amt, ID: id}, "TransferMoney",
				map[string]any{"transfer_id": id, "from_account": transferAccount(from), "to_account": transferAccount(to), "amount": amt})
		}
		if w.pause > 0 {
			time.Sleep(w.pause)
		}
	}
}

// newClient connects a client to NATS on loopback.
func newClient(id int, prefix string, h *history) (*client, error) {
	nc, err := nats.Connect("nats://"+natsTarget(), nats.Timeout(3*time.Second), nats.MaxReconnects(-1))
	if err != nil {
		return nil, errors.New("NATS at " + natsTarget() + " is unreachable: " + err.Error())
	}
	return &client{id: id, nc: nc, prefix: prefix, h: h, budget: 8 * time.Second}, nil
}

// describeAttempt says how one attempt ended and how long it took.
func describeAttempt(r *wireReply, took time.Duration) string {
	switch {
	case r == nil:
		return fmt.Sprintf("no reply (%s)", took.Round(time.Millisecond))
	case r.OK:
		return fmt.Sprintf("ok@%s (%s)", r.Node, took.Round(time.Millisecond))
	case r.Error != nil:
		return fmt.Sprintf("%s@%s (%s)", r.Error.Code, r.Node, took.Round(time.Millisecond))
	}
	return fmt.Sprintf("failed@%s (%s)", r.Node, took.Round(time.Millisecond))
}
