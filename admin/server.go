package admin

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader/eventstore"
)

//go:embed dashboard.html
var dashboardHTML []byte

// Node is what the admin endpoints read of the node they serve. Its methods are
// called from concurrent requests.
type Node interface {
	// ID is the node's id.
	ID() string
	// Health reports whether the node takes commands and reaches NATS and its event
	// store (/healthz); ctx bounds the checks.
	Health(ctx context.Context) HealthView
	// Cluster is the membership and ring as the node sees them (/cluster), with the
	// owner of key when key is not "".
	Cluster(key string) ClusterView
	// Handlers are the node's handler partitions (/handlers, /overview).
	Handlers(ctx context.Context) ([]HandlerPartitionRow, error)
	// ResetHandler replays handler name from its start. An error wrapping
	// handlers.ErrUnknownHandler is answered 404.
	ResetHandler(ctx context.Context, name string) error
	// Stats are the node's counters (/stats, /overview).
	Stats() StatsView
}

// Store is the part of the event store the stream endpoints read. Personal data is
// shown as the store returns it: give the node's decrypting store for an operator's
// view.
type Store interface {
	eventstore.StreamReader
	eventstore.CommandIndex
	// ReadOutcome is eventstore.OutcomeStore's.
	ReadOutcome(ctx context.Context, streamID, commandID string) (*eventstore.CommandOutcome, error)
}

// Config is what the admin API serves.
type Config struct {
	// Addr is the listen address (host:port; port 0 picks a free one). Serve only.
	Addr string
	// Token, when not "", is required of every request but GET /healthz.
	Token string
	// Node is the node served. Required.
	Node Node
	// Store is read by /streams/... Required.
	Store Store
	// Metrics are served at /metrics (nil: none).
	Metrics prometheus.Gatherer
	// Logger receives the listener's failure, should it fail after starting. Serve
	// only.
	Logger zerolog.Logger
}

// Handler returns the admin API as an http.Handler, the token check included.
func Handler(cfg Config) http.Handler {
	metrics := cfg.Metrics
	if metrics == nil {
		metrics = prometheus.NewRegistry()
	}
	e := &endpoints{node: cfg.Node, store: cfg.Store, token: cfg.Token}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", e.health)
	mux.HandleFunc("GET /cluster", e.cluster)
	mux.HandleFunc("GET /handlers", e.handlers)
	mux.HandleFunc("POST /handlers/{name}/reset", e.reset)
	mux.HandleFunc("GET /stats", e.stats)
	mux.HandleFunc("GET /overview", e.overview)
	mux.HandleFunc("GET /streams/{id}", e.stream)
	mux.HandleFunc("GET /streams/{id}/commands/{command}", e.command)
	// OpenMetrics, when the scraper asks for it, carries the latency exemplars.
	mux.Handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(dashboardHTML)
	})
	return requireToken(cfg.Token, jsonErrors(mux))
}

// Server is an admin listener: bound by Listen (or Serve), serving after Serve.
type Server struct {
	addr string
	ln   net.Listener
	log  zerolog.Logger
	http *http.Server
}

// Serve listens on cfg.Addr and serves the admin API there until Shutdown: Listen,
// then Server.Serve.
func Serve(cfg Config) (*Server, error) {
	s, err := Listen(cfg)
	if err != nil {
		return nil, err
	}
	s.Serve()
	return s, nil
}

// Listen binds cfg.Addr without serving yet, so that a caller can learn Addr (the
// port chosen for port 0) before the first request can ask for it; Serve starts.
func Listen(cfg Config) (*Server, error) {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("admin: listener on %s: %w", cfg.Addr, err)
	}
	return &Server{addr: ln.Addr().String(), ln: ln, log: cfg.Logger,
		http: &http.Server{Handler: Handler(cfg), ReadHeaderTimeout: 5 * time.Second}}, nil
}

// Serve serves the admin API on the listener Listen bound, in a goroutine of its
// own, until Shutdown. Call it once.
func (s *Server) Serve() {
	go func() {
		if err := s.http.Serve(s.ln); err != nil && err != http.ErrServerClosed {
			s.log.Error().Err(err).Msg("admin listener failed")
		}
	}()
}

// Addr is the address the server listens on (with the port chosen when
// Config.Addr's was 0).
func (s *Server) Addr() string { return s.addr }

// Shutdown stops the listener and waits, within ctx, for the requests in progress.
func (s *Server) Shutdown(ctx context.Context) error { return s.http.Shutdown(ctx) }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Error codes of ErrorView, one per HTTP status the admin API answers with.
const (
	CodeInvalid          = "invalid"            // 400: the request's input is wrong
	CodeUnauthorized     = "unauthorized"       // 401: no valid admin token
	CodeNotFound         = "not_found"          // 404: no such path, stream or handler
	CodeMethodNotAllowed = "method_not_allowed" // 405: the path exists for another method
	CodeUnavailable      = "unavailable"        // 503: the store or NATS cannot be reached
)

// statusCodes maps each ErrorView code to its HTTP status.
var statusCodes = map[string]int{
	CodeInvalid:          http.StatusBadRequest,
	CodeUnauthorized:     http.StatusUnauthorized,
	CodeNotFound:         http.StatusNotFound,
	CodeMethodNotAllowed: http.StatusMethodNotAllowed,
	CodeUnavailable:      http.StatusServiceUnavailable,
}

// writeError answers an ErrorView with the status of code.
func writeError(w http.ResponseWriter, code, msg string) {
	writeJSON(w, statusCodes[code], ErrorView{Code: code, Message: msg})
}

// jsonErrors answers the requests mux has no route for (404, or 405 for a path that
// exists for another method) with an ErrorView, as every other error, instead of
// ServeMux's plain text.
func jsonErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		rec := &statusRecorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		switch rec.status {
		case http.StatusNotFound:
			writeError(w, CodeNotFound, fmt.Sprintf("no such path: %s", r.URL.Path))
		case http.StatusMethodNotAllowed:
			w.Header().Set("Allow", rec.header.Get("Allow"))
			writeError(w, CodeMethodNotAllowed, fmt.Sprintf("%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, rec.header.Get("Allow")))
		default: // a redirect to the clean path
			maps.Copy(w.Header(), rec.header)
			w.WriteHeader(rec.status)
		}
	})
}

// statusRecorder keeps the status and headers ServeMux's own answer would have.
type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *statusRecorder) WriteHeader(status int)      { r.status = status }
