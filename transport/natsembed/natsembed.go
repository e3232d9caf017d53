// Package natsembed runs a NATS server inside the process, for the demo and for
// development: no install, loopback only, no authentication. Production nodes
// connect to a real NATS deployment instead.
//
// Start returns once the server accepts connections; Shutdown stops it and waits.
// A Server's methods are safe for concurrent use.
package natsembed

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configures an embedded server. Zero values take the documented defaults.
type Options struct {
	// Host is the listen address. Default "127.0.0.1".
	Host string
	// Port is the client port; 0 picks a free one (see Server.URL).
	Port int
	// JetStream enables JetStream, storing in StoreDir. Default off.
	JetStream bool
	// StoreDir is JetStream's directory; required when JetStream is on.
	StoreDir string
	// MaxPayload is the largest message in bytes. 0 keeps the server default (1 MiB).
	MaxPayload int32
	// ReadyTimeout bounds the wait for the server to accept connections. Default 10s.
	ReadyTimeout time.Duration
	// Logging turns the server's own log (to stderr) on. Default off.
	Logging bool
}

// Server is a running embedded NATS server.
type Server struct {
	ns   *server.Server
	once sync.Once
}

// Start starts a server and waits until it accepts connections.
func Start(opts Options) (*Server, error) {
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 10 * time.Second
	}
	if opts.Port < 0 {
		return nil, fmt.Errorf("natsembed: port %d is negative", opts.Port)
	}
	if opts.JetStream && opts.StoreDir == "" {
		return nil, errors.New("natsembed: JetStream needs a StoreDir")
	}
	port := opts.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	ns, err := server.NewServer(&server.Options{
		Host:       opts.Host,
		Port:       port,
		JetStream:  opts.JetStream,
		StoreDir:   opts.StoreDir,
		MaxPayload: opts.MaxPayload,
		NoSigs:     true,
		NoLog:      !opts.Logging,
	})
	if err != nil {
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	if opts.Logging {
		ns.ConfigureLogger()
	}
	go ns.Start()
	if !ns.ReadyForConnections(opts.ReadyTimeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("natsembed: server on %s:%d not ready within %s", opts.Host, opts.Port, opts.ReadyTimeout)
	}
	return &Server{ns: ns}, nil
}

// URL is the client URL, e.g. "nats://127.0.0.1:4222".
func (s *Server) URL() string { return s.ns.ClientURL() }

// Shutdown stops the server and waits until it has stopped. It is idempotent.
func (s *Server) Shutdown() {
	s.once.Do(func() {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
	})
}
