package node

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/ringleader-go/ringleader/aggregate"
	"github.com/ringleader-go/ringleader/errcode"
	"github.com/ringleader-go/ringleader/transport"
)

// locate says which node owns the aggregate a request is for, and returns the
// command it decoded, which Execute reuses when the command runs here.
func (n *Node) locate(req transport.Request) (string, any, error) {
	cmd, target, err := n.router.DecodeTarget(req.CommandType, req.Body)
	if err != nil {
		return "", nil, transport.WithCode(aggregate.CodeOf(err), err)
	}
	owner, ok := n.ring.Load().Owner(target.StreamID)
	if !ok {
		return n.cfg.NodeID, cmd, nil
	}
	return owner.ID, cmd, nil
}

// Execute implements transport.Executor: it runs the request on this node's
// dispatcher and builds the wire reply.
func (n *Node) Execute(ctx context.Context, req transport.Request) transport.Reply {
	cmd := req.Command
	if cmd == nil {
		var err error
		if cmd, err = n.router.Decode(req.CommandType, req.Body); err != nil {
			return transport.ErrorReply(req.CommandID, aggregate.CodeOf(err), err.Error())
		}
	}
	var opts []aggregate.Option
	if req.CommandID != "" {
		opts = append(opts, aggregate.WithCommandID(req.CommandID))
	}
	if req.CorrelationID != "" {
		opts = append(opts, aggregate.WithCorrelationID(req.CorrelationID))
	}
	if req.CausationID != "" {
		opts = append(opts, aggregate.WithCausationID(req.CausationID))
	}
	if strings.EqualFold(req.Consistency, string(aggregate.Strong)) {
		opts = append(opts, aggregate.WithConsistency(aggregate.Strong))
	}
	if !req.Deadline.IsZero() {
		if left := time.Until(req.Deadline); left > 0 {
			opts = append(opts, aggregate.WithTimeout(left))
		} else {
			return transport.ErrorReply(req.CommandID, errcode.Timeout, "the command's deadline passed before it could run")
		}
	}
	res, err := n.dispatcher.Dispatch(ctx, cmd, opts...)
	if err != nil {
		id := req.CommandID
		if res != nil {
			id = res.CommandID
		}
		var conflict *aggregate.ConflictError
		if errors.As(err, &conflict) {
			n.metrics.conflicts.Inc()
		}
		return transport.ErrorReply(id, aggregate.CodeOf(err), err.Error())
	}
	reply := transport.Reply{
		OK:               true,
		CommandID:        res.CommandID,
		AggregateID:      res.AggregateID,
		AggregateVersion: res.AggregateVersion,
		Node:             n.cfg.NodeID,
		Duplicate:        res.Duplicate,
		Events:           make([]transport.ReplyEvent, len(res.Events)),
	}
	for i, e := range res.Events {
		reply.Events[i] = transport.ReplyEvent{Type: e.Type, StreamVersion: e.StreamVersion, GlobalPosition: e.GlobalPosition, Data: e.Data}
	}
	return reply
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func joinURLs(urls []string) string { return strings.Join(urls, ",") }
