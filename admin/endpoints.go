package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/handlers"
)

// endpoints are the admin API's handlers.
type endpoints struct {
	node  Node
	store Store
	token string // sent to the other members by /overview
}

// health answers 200 when the node takes commands (it has started and is not
// shutting down) and can reach NATS and its event store.
func (e *endpoints) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	h := e.node.Health(ctx)
	code := http.StatusOK
	if !h.OK {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, h)
}

func (e *endpoints) cluster(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, e.node.Cluster(r.URL.Query().Get("key")))
}

// handlers lists every handler partition: checkpoint, lag, and whether it runs here.
func (e *endpoints) handlers(w http.ResponseWriter, r *http.Request) {
	rows, err := e.node.Handlers(r.Context())
	if err != nil {
		writeError(w, CodeUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, HandlersView{Node: e.node.ID(), Partitions: rows})
}

// reset replays a handler from its start (a projection rebuild).
func (e *endpoints) reset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	err := e.node.ResetHandler(ctx, name)
	switch {
	case errors.Is(err, handlers.ErrUnknownHandler):
		writeError(w, CodeNotFound, err.Error())
	case err != nil:
		writeError(w, CodeUnavailable, err.Error())
	default:
		writeJSON(w, http.StatusOK, resetReply{Handler: name, Reset: true})
	}
}

func (e *endpoints) stats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, e.node.Stats())
}

func (e *endpoints) overview(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	view := OverviewView{Cluster: e.node.Cluster(""), Stats: map[string]StatsView{}}
	self := e.node.ID()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range view.Cluster.Members {
		if m.ID == self {
			view.Stats[m.ID] = e.node.Stats()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := e.remoteStats(ctx, m.AdminAddr)
			if err != nil {
				s = StatsView{Node: m.ID, Error: err.Error()}
			}
			mu.Lock()
			view.Stats[m.ID] = s
			mu.Unlock()
		}()
	}
	rows, err := e.node.Handlers(ctx)
	if err != nil {
		view.HandlersError = err.Error()
	}
	view.Handlers = rows
	wg.Wait()
	writeJSON(w, http.StatusOK, view)
}

// remoteStats reads another member's /stats, with this node's admin token (the
// members of one cluster share it).
func (e *endpoints) remoteStats(ctx context.Context, addr string) (StatsView, error) {
	var v StatsView
	if addr == "" {
		return v, fmt.Errorf("no admin address gossiped")
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/stats", nil)
	if err != nil {
		return v, err
	}
	if e.token != "" {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return v, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return v, fmt.Errorf("%s/stats answered %s", addr, resp.Status)
	}
	return v, json.NewDecoder(resp.Body).Decode(&v)
}

// maxStreamPage bounds /streams/{id}?limit=.
const maxStreamPage = 1000

// stream lists a stream's events: GET /streams/{id}?from=<version>&limit=<n> (from
// default 1, limit default 100, at most 1000). Personal data is shown as the store
// reads it: the node gives its decrypting store (the admin listener is an
// operator's view).
func (e *endpoints) stream(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	q := r.URL.Query()
	from, limit := int64(1), 100
	if v := q.Get("from"); v != "" {
		f, err := strconv.ParseInt(v, 10, 64)
		if err != nil || f < 1 {
			writeError(w, CodeInvalid, "from must be a stream version ≥ 1")
			return
		}
		from = f
	}
	if v := q.Get("limit"); v != "" {
		l, err := strconv.Atoi(v)
		if err != nil || l < 1 || l > maxStreamPage {
			writeError(w, CodeInvalid, fmt.Sprintf("limit must be 1..%d", maxStreamPage))
			return
		}
		limit = l
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	events, err := e.store.ReadStream(ctx, id, from, limit)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	if len(events) == 0 && from == 1 {
		writeError(w, CodeNotFound, fmt.Sprintf("stream %q has no events", id))
		return
	}
	view := StreamView{Stream: id, From: from, Events: make([]StreamEvent, 0, len(events))}
	for _, ev := range events {
		view.Events = append(view.Events, streamEvent(ev))
	}
	if len(events) == limit {
		view.Next = events[len(events)-1].StreamVersion + 1
	}
	writeJSON(w, http.StatusOK, view)
}

// command tells what became of a command: its events, or its recorded outcome.
func (e *endpoints) command(w http.ResponseWriter, r *http.Request) {
	id, command := r.PathValue("id"), r.PathValue("command")
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	events, err := e.store.ReadCommandEvents(ctx, id, command)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	view := CommandView{Stream: id, CommandID: command, Events: make([]StreamEvent, 0, len(events))}
	for _, ev := range events {
		view.Events = append(view.Events, streamEvent(ev))
	}
	if len(events) == 0 {
		o, err := e.store.ReadOutcome(ctx, id, command)
		if err != nil {
			writeStoreError(w, err)
			return
		}
		if o != nil {
			view.Outcome = &OutcomeView{StreamVersion: o.StreamVersion, Code: o.Code, Message: o.Message, Reason: o.Reason, CreatedAt: o.CreatedAt}
		}
	}
	writeJSON(w, http.StatusOK, view)
}

// writeStoreError answers a store error: the caller's input (an invalid stream id)
// is 400, anything else means the store cannot be reached (503).
func writeStoreError(w http.ResponseWriter, err error) {
	if errors.Is(err, eventstore.ErrInvalid) {
		writeError(w, CodeInvalid, err.Error())
		return
	}
	writeError(w, CodeUnavailable, err.Error())
}
