package aggregate

import (
	"errors"
	"testing"

	"github.com/ringleader-go/ringleader/eventstore"
)

type evPlain struct {
	N int `json:"n"`
}

type evNamed struct{}

func (evNamed) EventType() string { return "custom.Named" }

func TestEventRegistry(t *testing.T) {
	r := newEventRegistry("agg")
	for _, e := range []any{evPlain{}, &evNamed{}} {
		if err := r.register(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.register(&evPlain{}); err == nil {
		t.Fatal("registered twice")
	}
	if got := r.names(); len(got) != 2 || got[0] != "custom.Named" || got[1] != "evPlain" {
		t.Fatalf("names %v", got)
	}
	meta := map[string]string{eventstore.MetaCommandID: "c"}
	data, err := r.encode([]any{evPlain{N: 1}, &evPlain{N: 2}, evNamed{}}, meta)
	if err != nil {
		t.Fatal(err)
	}
	if data[0].Type != "evPlain" || string(data[1].Data) != `{"n":2}` || data[2].Type != "custom.Named" || data[0].Metadata["command_id"] != "c" {
		t.Fatalf("encoded %+v", data)
	}
	v, err := r.decode("evPlain", data[1].Data)
	if err != nil || v != (evPlain{N: 2}) {
		t.Fatalf("decode = %#v, %v", v, err)
	}
	var ue *UnknownEventError
	if _, err := r.encode([]any{struct{}{}}, nil); !errors.As(err, &ue) {
		t.Fatalf("unregistered: %v", err)
	}
	if _, err := r.encode([]any{nil}, nil); !errors.As(err, &ue) {
		t.Fatalf("nil event: %v", err)
	}
	if _, err := r.decode("nope", []byte(`{}`)); !errors.As(err, &ue) {
		t.Fatalf("unknown name: %v", err)
	}
	if _, err := r.decode("evPlain", []byte(`{"n":"x"}`)); err == nil {
		t.Fatal("bad JSON decoded")
	}
}
