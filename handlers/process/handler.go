package process

import "github.com/ringleader-go/ringleader/handlers"

// Handler returns the manager as an event handler with spec; an empty spec.Name
// means the manager's name. Register it with a handlers.Runner. Keep the process
// handler's StartFrom and partitioning fixed and never Reset it: its records are its
// memory of what it already did.
func (m *Manager[S]) Handler(spec handlers.Spec) handlers.Handler {
	if spec.Name == "" {
		spec.Name = m.cfg.Name
	}
	return handlers.Handler{Spec: spec, Handle: m.Handle}
}
