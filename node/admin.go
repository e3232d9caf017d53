package node

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ringleader-go/ringleader/cluster"
	"github.com/ringleader-go/ringleader/handlers"
)

//go:embed dashboard.html
var dashboardHTML []byte

// ClusterView is the JSON of /cluster: members and ring ownership as this node sees
// them.
type ClusterView struct {
	// Node is the id of the node answering.
	Node string `json:"node"`
	// Mode is the cluster mode (gossip or none).
	Mode string `json:"mode"`
	// Members are the cluster's members.
	Members []MemberView `json:"members"`
	// Ring describes the placement ring.
	Ring RingView `json:"ring"`
	// Key and Owner answer /cluster?key=…: which node owns that key (a stream id).
	Key   string `json:"key,omitempty"`
	Owner string `json:"owner,omitempty"`
	// Partition is the ring partition of Key.
	Partition *int `json:"partition,omitempty"`
}

// MemberView is one member in ClusterView.
type MemberView struct {
	ID         string `json:"id"`
	AdminAddr  string `json:"admin,omitempty"`
	Version    string `json:"version,omitempty"`
	Partitions int    `json:"partitions"`
}

// RingView is the ring in ClusterView.
type RingView struct {
	Fingerprint string `json:"fingerprint"`
	Partitions  int    `json:"partitions"`
	// Owners lists the owner node of each partition, by partition number.
	Owners []string `json:"owners"`
}

func (n *Node) startAdmin() error {
	if !n.cfg.AdminEnabled() {
		return nil
	}
	ln, err := net.Listen("tcp", n.cfg.AdminAddr)
	if err != nil {
		return fmt.Errorf("node: admin listener on %s: %w", n.cfg.AdminAddr, err)
	}
	n.adminAddr = ln.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", n.handleHealth)
	mux.HandleFunc("GET /cluster", n.handleCluster)
	mux.HandleFunc("GET /handlers", n.handleHandlers)
	mux.HandleFunc("POST /handlers/{name}/reset", n.handleReset)
	mux.HandleFunc("GET /stats", n.handleStats)
	mux.HandleFunc("GET /overview", n.handleOverview)
	mux.HandleFunc("GET /streams/{id}", n.handleStream)
	mux.HandleFunc("GET /streams/{id}/commands/{command}", n.handleCommand)
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.registry(), promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(dashboardHTML)
	})
	token, err := n.cfg.AdminTokenValue()
	if err != nil {
		_ = ln.Close()
		return err
	}
	n.adminToken = token
	n.admin = &http.Server{Handler: requireToken(token, mux), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := n.admin.Serve(ln); err != nil && err != http.ErrServerClosed {
			n.log.Error().Err(err).Msg("admin listener failed")
		}
	}()
	return nil
}

// handleHealth answers 200 when the node takes commands (it has started and is not
// shutting down) and can reach NATS and its event store.
func (n *Node) handleHealth(w http.ResponseWriter, r *http.Request) {
	status := map[string]any{"node": n.cfg.NodeID, "ready": n.ready.Load()}
	healthy := n.ready.Load()
	if n.nc == nil || !n.nc.IsConnected() {
		healthy = false
		status["nats"] = "disconnected"
	} else {
		status["nats"] = "connected"
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := n.store.HeadPosition(ctx); err != nil {
		healthy = false
		status["store"] = err.Error()
	} else {
		status["store"] = "ok"
	}
	status["ok"] = healthy
	code := http.StatusOK
	if !healthy {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, status)
}

func (n *Node) handleCluster(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, n.clusterView(r.URL.Query().Get("key")))
}

// handleHandlers lists every handler partition: checkpoint, lag, and whether it runs
// here.
func (n *Node) handleHandlers(w http.ResponseWriter, r *http.Request) {
	view, err := n.handlersStatus(r.Context())
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, view)
}

// handleReset replays a handler from its start (a projection rebuild).
func (n *Node) handleReset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	err := n.runner.Reset(ctx, name)
	code := http.StatusOK
	switch {
	case errors.Is(err, handlers.ErrUnknownHandler):
		code = http.StatusNotFound
	case err != nil:
		code = http.StatusInternalServerError
	}
	reply := resetReply{Handler: name, Reset: err == nil}
	if err != nil {
		reply.Error = err.Error()
	}
	writeJSON(w, code, reply)
}

func (n *Node) clusterView(key string) ClusterView {
	ring := n.ring.Load()
	owners := ring.PartitionOwners()
	counts := map[string]int{}
	for _, o := range owners {
		counts[o]++
	}
	view := ClusterView{
		Node: n.cfg.NodeID,
		Mode: n.cfg.Cluster,
		Ring: RingView{Fingerprint: ring.Fingerprint(), Partitions: ring.PartitionCount(), Owners: owners},
	}
	for _, m := range n.Members() {
		mv := MemberView{ID: m.ID, Partitions: counts[m.ID]}
		if meta, err := cluster.DecodeMeta(m); err == nil {
			mv.AdminAddr, mv.Version = meta.AdminAddr, meta.Version
		} else if m.ID == n.cfg.NodeID {
			mv.AdminAddr, mv.Version = n.adminAddr, n.version
		}
		view.Members = append(view.Members, mv)
	}
	if key != "" {
		p := ring.PartitionOf(key)
		owner, _ := ring.Owner(key)
		view.Key, view.Owner, view.Partition = key, owner.ID, &p
	}
	return view
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
