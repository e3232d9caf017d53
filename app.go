// Package ringleader describes an application for the Ringleader runtime: its
// router (commands and aggregate types), its event handlers, projections and
// process managers, its event upcasters, its crypto-shredding rules and its own
// settings. node.Main runs an App as a cluster node:
//
//	func main() { node.Main(shop.App()) }
//
// An App is a plain value built once at start-up; the functions it holds are called
// by the node while it starts. See the README, "Your own domain", for a whole
// application.
package ringleader

import (
	"errors"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/config"
	"github.com/ringleader-go/ringleader/eventstore/shred"
	"github.com/ringleader-go/ringleader/eventstore/upcast"
	"github.com/ringleader-go/ringleader/handlers"
	"github.com/ringleader-go/ringleader/handlers/process"
)

// App is an application the runtime hosts.
type App struct {
	// Name names the application in logs and in the node's usage text. Required.
	Name string
	// Router routes the application's commands to its aggregate types. Its
	// registered event types are also how handlers receive events as Go values
	// (handlers.Event.Value). Required.
	Router *aggregate.Router
	// Handlers returns the application's event handlers, projections and process
	// managers (handlers.Handler, handlers.Projection, and Process for a process
	// manager), given what the node provides them. Nil: none. A handler left without
	// an OnError policy gets the node's: retry with backoff, except a process
	// manager's refused command, which stops its partition (visible in /handlers).
	// Projections need PostgreSQL; around another store the node leaves them out
	// with a warning.
	Handlers func(h Host) ([]handlers.Registrant, error)
	// Upcasts are the current versions of the event types and the upcasters from
	// older ones. Nil: every event type is at version 1.
	Upcasts *upcast.Registry
	// Shred returns the crypto-shredding rules: which event fields are personal data
	// of which subject, which events forget a subject. keys is the node's data-key
	// source, nil when no master key is configured (events with personal data are
	// then refused). Nil: the application records no personal data.
	Shred func(keys *shred.Keys) shred.Config
	// Settings are the application's own settings; each is a flag, an RL_*
	// environment variable and a configuration-file key like the node's own, and
	// Host.Settings holds their values.
	Settings []config.Setting
}

// Validate reports every problem of the App at once.
func (a App) Validate() error {
	var errs []error
	if a.Name == "" {
		errs = append(errs, errors.New("ringleader: app: no Name"))
	}
	if a.Router == nil {
		errs = append(errs, fmt.Errorf("ringleader: app %q: no Router", a.Name))
	} else if err := a.Router.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("ringleader: app %q: router: %w", a.Name, err))
	}
	if a.Upcasts != nil {
		if err := a.Upcasts.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("ringleader: app %q: upcasters: %w", a.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Host is what a node provides an application's handlers (App.Handlers).
type Host struct {
	// NodeID is the id of the node the handlers run on.
	NodeID string
	// Router is the application's router.
	Router *aggregate.Router
	// Commands sends commands through the cluster's command path: each reaches the
	// node that owns its aggregate, like a client's. Process managers send theirs
	// with it.
	Commands process.Dispatcher
	// ProcessStates keeps process managers' records (PostgreSQL's process_state
	// table, or memory around an in-memory store).
	ProcessStates process.StateStore
	// Scheduler keeps scheduled commands; the ring owner of each schedule's
	// partition dispatches it when due, once cluster-wide.
	Scheduler process.Scheduler
	// Settings are the values of App.Settings.
	Settings config.Values
	// Logger is the node's logger.
	Logger zerolog.Logger
}

// Process returns process manager cfg as an event handler with spec, wired to the
// node: commands go through h.Commands, records to h.ProcessStates, schedules to
// h.Scheduler, and the Outcome function sees the commands it sent as Go values
// (Sent.Value), decoded by the application's router. Fields of cfg already set are
// kept. An empty spec.Name means cfg.Name.
//
// Keep a process handler's StartFrom and partitioning fixed and never reset it: its
// records are its memory of what it already did.
func Process[S any](h Host, cfg process.Config[S], spec handlers.Spec) (handlers.Handler, error) {
	if cfg.Dispatcher == nil {
		cfg.Dispatcher = h.Commands
	}
	if cfg.States == nil {
		cfg.States = h.ProcessStates
	}
	if cfg.Scheduler == nil {
		cfg.Scheduler = h.Scheduler
	}
	if cfg.DecodeCommand == nil && h.Router != nil {
		cfg.DecodeCommand = h.Router.Decode
	}
	m, err := process.New(cfg)
	if err != nil {
		return handlers.Handler{}, fmt.Errorf("ringleader: process manager %q: %w", cfg.Name, err)
	}
	return m.Handler(spec), nil
}
