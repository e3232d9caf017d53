package pgstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/ringleader-go/ringleader/eventstore"
)

// appendManySQL appends the events of several streams, each at an exact expected
// version, in one statement of the caller's (implicit) transaction. The arguments are
// one array element per event: $1 stream id, $2 the stream's expected version, $3 the
// event's 1-based index within its stream's events, $4 ids, $5 types, $6 data, $7
// metadata; and one per stream: $8 stream ids, $9 how many events each is to get.
// Event i (1-based, in array order) gets position xid * 65536 + i - 1, so the
// position's low 16 bits say which event a returned row is.
//
// A stream's events are inserted only if its expected version exists (or is 0), and
// a version another transaction took is skipped (ON CONFLICT on the stream-version key
// only) instead of failing the statement: that stream's request failed, the others'
// go on. A conflict always hits a stream's first event (whoever holds version v+k for
// k > 1 wrote or saw v+1 first, see batch.go), so a stream gets all or none of its
// events. The statement guards that promise against a writer that does not follow the
// protocol: if some stream got some but not all of its events, it fails (division by
// zero, SQLSTATE 22012) and the transaction with it. The guard reads the INSERT's own
// returned rows, so it costs no statement or index scan of its own. Rows are inserted
// in stream-id order so that two batches never wait for each other in a cycle.
const appendManySQL = `WITH inserted AS (
INSERT INTO events (global_position, stream_id, stream_version, event_id, event_type, data, metadata)
SELECT pg_current_xact_id()::text::bigint * 65536 + r.ord - 1, r.stream_id, r.expected + r.k,
	r.id, r.typ, r.data::jsonb, r.meta::jsonb
FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::uuid[], $5::text[], $6::text[], $7::text[])
	WITH ORDINALITY AS r(stream_id, expected, k, id, typ, data, meta, ord)
LEFT JOIN LATERAL (SELECT e.stream_version AS found FROM events e
	WHERE e.stream_id = r.stream_id AND e.stream_version = r.expected LIMIT 1) AS v ON true
WHERE r.expected = 0 OR v.found IS NOT NULL
ORDER BY r.ord
ON CONFLICT (stream_id, stream_version) DO NOTHING
RETURNING global_position, stream_id, stream_version, created_at),
partial AS (SELECT coalesce(bool_or(got.n <> want.n), false) AS found
	FROM (SELECT stream_id, count(*) AS n FROM inserted GROUP BY stream_id) AS got
	JOIN unnest($8::text[], $9::bigint[]) AS want(stream_id, n) USING (stream_id))
SELECT i.global_position, i.stream_version, i.created_at, 1 / (CASE WHEN p.found THEN 0 ELSE 1 END)
FROM inserted i CROSS JOIN partial p`

// pending is one request of an AppendMany call on its way through it.
type pending struct {
	index int // in the caller's requests
	req   eventstore.AppendRequest
	args  appendArgs
	first int // index of its first event in the statement's arrays
}

var _ eventstore.BatchAppender = (*Store)(nil)

// AppendMany implements eventstore.BatchAppender: the requests with an exact expected
// version go to PostgreSQL in one round trip and one transaction (appendManySQL,
// pipelined with the store's NOTIFY when one is due), so N
// commands cost one commit instead of N. A request whose stream was not at its
// expected version fails alone with a *eventstore.WrongVersionError (its actual
// version costs one more query). Requests
// expecting AnyVersion or StreamExists, and — should the statement fail as a whole,
// e.g. on a duplicate event id — every request, are appended one by one with Append,
// so each gets exactly the outcome Append gives it. Requests for a stream already in
// the batch go in a later round, in request order.
func (s *Store) AppendMany(ctx context.Context, requests []eventstore.AppendRequest) []eventstore.AppendResult {
	out := make([]eventstore.AppendResult, len(requests))
	var round []pending
	var later []int // requests for a stream already in this round
	seen := make(map[string]struct{}, len(requests))
	total := 0
	for i, r := range requests {
		if err := eventstore.ValidateAppend(r.StreamID, r.Expected, r.Events, s.maxEventBytes); err != nil {
			out[i].Err = err
			continue
		}
		if len(r.Events) > PositionsPerTransaction {
			out[i].Err = fmt.Errorf("%w: a transaction appends at most %d events", eventstore.ErrInvalid, PositionsPerTransaction)
			continue
		}
		if _, dup := seen[r.StreamID]; dup || total+len(r.Events) > PositionsPerTransaction {
			later = append(later, i)
			continue
		}
		seen[r.StreamID] = struct{}{}
		if r.Expected < 0 {
			// Any version or stream exists: computed expectations go one by one.
			out[i].Events, out[i].Err = s.Append(ctx, r.StreamID, r.Expected, r.Events)
			continue
		}
		args, err := buildAppendArgs(r.Events)
		if err != nil {
			out[i].Err = err
			continue
		}
		total += len(r.Events)
		round = append(round, pending{index: i, req: r, args: args})
	}
	if len(round) > 0 {
		s.appendRound(ctx, round, out)
	}
	if len(later) > 0 {
		rest := make([]eventstore.AppendRequest, len(later))
		for k, i := range later {
			rest[k] = requests[i]
		}
		for k, res := range s.AppendMany(ctx, rest) {
			out[later[k]] = res
		}
	}
	return out
}

// appendRound appends round (at most one request per stream, all exact) in one
// transaction and fills in their results.
func (s *Store) appendRound(ctx context.Context, round []pending, out []eventstore.AppendResult) {
	if len(round) == 1 {
		// Nothing to group: the single-stream statement is the cheaper one.
		p := round[0]
		out[p.index].Events, out[p.index].Err = s.Append(ctx, p.req.StreamID, p.req.Expected, p.req.Events)
		return
	}
	slices.SortFunc(round, func(a, b pending) int { return cmp.Compare(a.req.StreamID, b.req.StreamID) })
	n := 0
	for i := range round {
		round[i].first = n
		n += len(round[i].req.Events)
	}
	streams := make([]string, n)
	expected := make([]int64, n)
	k := make([]int64, n)
	ids := make([]pgtype.UUID, 0, n)
	types := make([]string, 0, n)
	data := make([]string, 0, n)
	meta := make([]string, 0, n)
	wantStreams := make([]string, len(round))
	wantCounts := make([]int64, len(round))
	var commands []commandKey
	for i, p := range round {
		commands = append(commands, commandKeys(p.req.StreamID, p.req.Events)...)
		for j := range p.req.Events {
			streams[p.first+j] = p.req.StreamID
			expected[p.first+j] = int64(p.req.Expected)
			k[p.first+j] = int64(j + 1)
		}
		ids = append(ids, p.args.pgIDs...)
		types = append(types, p.args.types...)
		data = append(data, p.args.data...)
		meta = append(meta, p.args.metadata...)
		wantStreams[i], wantCounts[i] = p.req.StreamID, int64(len(p.req.Events))
	}

	type assigned struct {
		position, version int64
		at                time.Time
		ok                bool
	}
	got := make([]assigned, n)
	ticket, carried := s.notify.carry()
	b := &pgx.Batch{}
	queueOutcomeGuard(b, commands)
	b.Queue(appendManySQL, streams, expected, k, ids, types, data, meta, wantStreams, wantCounts)
	if carried {
		b.Queue(notifyCarrySQL, s.notify.channel, s.notify.origin)
	}
	br := s.pool.SendBatch(ctx, b)
	err := func() error {
		if err := readOutcomeGuard(br, commands); err != nil {
			return err
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		for rows.Next() {
			var position, version int64
			var at time.Time
			var guard int32
			if err := rows.Scan(&position, &version, &at, &guard); err != nil {
				rows.Close()
				return err
			}
			i := int(position % PositionsPerTransaction)
			if i < 0 || i >= n {
				rows.Close()
				return fmt.Errorf("position %d names no event of the batch", position)
			}
			got[i] = assigned{position: position, version: version, at: at, ok: true}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if carried {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		return nil
	}()
	if cerr := br.Close(); err == nil { // exactly once, see appendOnce
		err = cerr
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) || errors.Is(err, eventstore.ErrCommandDecided) {
		// The statement failed as a whole (a duplicate event id, a command with a
		// recorded outcome, the all-or-nothing guard) and nothing was written: give
		// every request Append's own verdict.
		for _, p := range round {
			out[p.index].Events, out[p.index].Err = s.Append(ctx, p.req.StreamID, p.req.Expected, p.req.Events)
		}
		return
	}
	if err != nil {
		err = s.wrap("append to "+strconv.Itoa(len(round))+" streams", err)
		for _, p := range round {
			out[p.index].Err = err
		}
		return
	}
	appended := false
	for _, p := range round {
		if !got[p.first].ok {
			// The expected version did not hold (the check guarantees none of the
			// stream's events went in).
			out[p.index].Err = s.wrongVersion(ctx, p.req.StreamID, p.req.Expected)
			continue
		}
		rec := make([]eventstore.RecordedEvent, len(p.req.Events))
		for j, e := range p.req.Events {
			g := got[p.first+j]
			rec[j] = recordedEvent(p.req.StreamID, e, p.args.ids[j], g.position, g.version, g.at)
		}
		out[p.index].Events = rec
		appended = true
	}
	if appended {
		s.notify.appended(ticket, carried)
	}
}
