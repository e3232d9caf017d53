package main

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ringleader-go/ringleader/bench/internal/load"
	"github.com/ringleader-go/ringleader/eventstore"
	"github.com/ringleader-go/ringleader/eventstore/pgstore"
)

// ceiling measures what any command runtime on this machine could reach at best: a
// NATS request to a responder on a connection of its own, whose payload names a
// stream, answered after one event is appended to that stream, with appends grouped
// exactly like the node's group commit (one batch in flight; whatever queued
// meanwhile goes next, alone when nothing did). There is no command decoding, no
// aggregate, no metadata, no forwarding and no reply body: only the two costs every
// command must pay, a request-reply and an append, plus the grouping that is the
// runtime's one lever on the second.
func ceiling(ctx context.Context, natsURL string, store *pgstore.Store, subject string, clients int, duration time.Duration, body []byte) (load.Result, error) {
	responder, err := nats.Connect(natsURL)
	if err != nil {
		return load.Result{}, err
	}
	defer responder.Close()
	type pending struct {
		msg    *nats.Msg
		stream string
	}
	queue := make(chan pending, 4096)
	sub, err := responder.Subscribe(subject, func(m *nats.Msg) { queue <- pending{msg: m, stream: string(m.Data)} })
	if err != nil {
		return load.Result{}, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	ok, failed := []byte(`{"ok":true}`), []byte(`{"ok":false}`)
	done := make(chan struct{})
	defer close(done)
	go func() {
		versions := map[string]int64{}
		for {
			var batch []pending
			select {
			case <-done:
				return
			case p := <-queue:
				batch = append(batch, p)
			}
		drain:
			for len(batch) < 256 {
				select {
				case p := <-queue:
					batch = append(batch, p)
				default:
					break drain
				}
			}
			reqs := make([]eventstore.AppendRequest, len(batch))
			for i, p := range batch {
				reqs[i] = eventstore.AppendRequest{StreamID: p.stream, Expected: eventstore.Exact(versions[p.stream]),
					Events: []eventstore.EventData{{Type: "MoneyDeposited", Data: body}}}
			}
			for i, r := range store.AppendMany(ctx, reqs) {
				reply := ok
				if r.Err != nil {
					reply = failed
				} else {
					versions[batch[i].stream]++
				}
				_ = batch[i].msg.Respond(reply)
			}
		}
	}()
	client, err := nats.Connect(natsURL)
	if err != nil {
		return load.Result{}, err
	}
	defer client.Close()
	return load.Run(clients, duration, func(w, i int) error {
		m, err := client.Request(subject, []byte(fmt.Sprintf("ceiling-%d-%d", clients, w)), 5*time.Second)
		if err != nil {
			return err
		}
		if !bytes.Equal(m.Data, ok) {
			return fmt.Errorf("ceiling append failed: %s", m.Data)
		}
		return nil
	})
}
