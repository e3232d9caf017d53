package ringleader_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/ringleader-go/ringleader"
	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/handlers"
	"github.com/ringleader-go/ringleader/handlers/process"
)

type Knock struct {
	Door string `json:"door"`
}

type Knocked struct {
	Door string `json:"door"`
}

type Door struct{}

func (*Door) Execute(command any) ([]any, error) { return []any{Knocked(command.(Knock))}, nil }
func (*Door) Apply(any)                          {}

// recordingDispatcher answers every command with success and keeps what it got.
type recordingDispatcher struct{ sent []string }

func (d *recordingDispatcher) Dispatch(_ context.Context, typ string, command any, _ process.DispatchOptions) (process.Outcome, error) {
	d.sent = append(d.sent, typ+" "+string(command.(json.RawMessage)))
	return process.Outcome{}, nil
}

// TestProcessIsWiredToTheHost: ringleader.Process completes a process manager's
// configuration from the Host, so its commands go out through Host.Commands, its
// records land in Host.ProcessStates, and its Outcome sees its commands as Go values
// decoded by the app's router.
func TestProcessIsWiredToTheHost(t *testing.T) {
	door := aggregate.NewType[Door]("door", aggregate.TypeConfig{StreamPrefix: "door-"}, Knocked{})
	router := aggregate.NewRouter()
	aggregate.Route(router, door, func(c Knock) string { return c.Door })
	commands, states := &recordingDispatcher{}, process.NewMemStore()
	host := ringleader.Host{Router: router, Commands: commands, ProcessStates: states}

	var answered []any
	h, err := ringleader.Process(host, process.Config[int]{
		Name:       "echo",
		Interested: func(e process.Event) process.Interest { return process.Start(e.StreamID) },
		Handle: func(int, process.Event) ([]process.Command, error) {
			return []process.Command{process.Cmd(Knock{Door: "back"})}, nil
		},
		Outcome: func(s int, c process.Sent, _ process.Outcome) (int, []process.Command, error) {
			answered = append(answered, c.Value)
			return s + 1, nil, nil
		},
	}, handlers.Spec{})
	if err != nil {
		t.Fatal(err)
	}
	if h.Name != "echo" {
		t.Errorf("handler name %q, want the process's name", h.Name)
	}
	e := handlers.Event{RecordedEvent: eventstore.RecordedEvent{StreamID: "door-front", GlobalPosition: 1, Type: "Knocked"}}
	if err := h.Handle(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if len(commands.sent) != 1 || commands.sent[0] != `Knock {"door":"back"}` {
		t.Errorf("Host.Commands got %q", commands.sent)
	}
	if len(answered) != 1 || answered[0] != (Knock{Door: "back"}) {
		t.Errorf("Outcome saw %#v, want the Knock as a Go value", answered)
	}
	if _, found, err := states.Load(context.Background(), "echo", "door-front"); !found || err != nil {
		t.Errorf("no record in Host.ProcessStates: %v, %v", found, err)
	}
	if _, err := ringleader.Process(ringleader.Host{}, process.Config[int]{Name: "orphan"}, handlers.Spec{}); err == nil {
		t.Error("a process without Interested, states or dispatcher was accepted")
	}
}
