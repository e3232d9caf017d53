package node

import (
	"context"
	"encoding/json"
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
		return "", nil, replyError(err)
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
			return transport.Reply{CommandID: req.CommandID, Error: replyError(err)}
		}
	}
	if !req.Deadline.IsZero() && time.Until(req.Deadline) <= 0 {
		return transport.ErrorReply(req.CommandID, errcode.Timeout, "the command's deadline passed before it could run")
	}
	res, err := n.dispatcher.Dispatch(ctx, cmd, dispatchOptions(req)...)
	if err != nil {
		var conflict *aggregate.ConflictError
		if errors.As(err, &conflict) {
			n.metrics.conflicts.Inc()
		}
		reply := transport.Reply{CommandID: req.CommandID, Error: replyError(err)}
		if rejected := (*aggregate.RejectedError)(nil); errors.As(err, &rejected) {
			reply.AggregateVersion = rejected.StreamVersion // the version it was decided at
		}
		if res != nil {
			// A consistency timeout: the events are stored, and the reply says which.
			reply = n.resultReply(res)
			reply.OK, reply.Error = false, replyError(err)
		}
		return reply
	}
	return n.resultReply(res)
}

// dispatchOptions turns a request's headers into dispatch options.
func dispatchOptions(req transport.Request) []aggregate.Option {
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
		opts = append(opts, aggregate.WithTimeout(time.Until(req.Deadline)))
	}
	switch req.Expected.Kind {
	case transport.ExpectNoStream:
		opts = append(opts, aggregate.ExpectNoStream())
	case transport.ExpectExists:
		opts = append(opts, aggregate.ExpectExists())
	case "":
		opts = append(opts, aggregate.ExpectVersion(req.Expected.Version))
	}
	if len(req.Metadata) > 0 {
		opts = append(opts, aggregate.WithMetadata(req.Metadata))
	}
	if req.ReturnState {
		opts = append(opts, aggregate.ReturnState())
	}
	return opts
}

// resultReply is the successful reply of res.
func (n *Node) resultReply(res *aggregate.Result) transport.Reply {
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
	if res.State != nil {
		state, err := json.Marshal(res.State)
		if err != nil {
			n.log.Warn().Err(err).Str("stream", res.StreamID).Msg("cannot encode the aggregate's state for the reply")
		} else {
			reply.State = state
		}
	}
	return reply
}

// replyError is the wire error of a failed dispatch or decode: its code, the
// domain's reason of a rejection, and for an invalid command the field and a message
// without Go's type names.
func replyError(err error) *transport.ReplyError {
	re := &transport.ReplyError{Code: aggregate.CodeOf(err), Message: err.Error(), Reason: aggregate.ReasonOf(err)}
	var invalid *aggregate.InvalidError
	if errors.As(err, &invalid) {
		re.Field, re.Message = invalid.Field, invalid.Message()
		if invalid.CommandType != "" {
			re.Message = invalid.CommandType + ": " + re.Message
		}
	}
	return re
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func joinURLs(urls []string) string { return strings.Join(urls, ",") }
