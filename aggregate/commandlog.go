package aggregate

// commandLog remembers the command ids whose events an instance has replayed or
// appended, so that a duplicate check can often be answered without the store.
//
// It covers the stream from version knownFrom on: every command id with an event at
// or after knownFrom is in ids. An id it does not hold is proven new only when
// knownFrom is 1 (the whole stream was replayed); otherwise the part before knownFrom
// (covered by a snapshot, or forgotten to bound memory) must be asked of the store.
// It holds at most limit ids; forgetting the oldest raises knownFrom past its events.
type commandLog struct {
	limit     int
	knownFrom int64
	ids       map[string]int64 // id → version of its last event
	order     []string         // ring of ids, oldest at head once full
	head      int
}

func newCommandLog(limit int, knownFrom int64) *commandLog {
	return &commandLog{limit: max(limit, 1), knownFrom: max(knownFrom, 1), ids: map[string]int64{}}
}

// record notes that command id appended the event at version. Versions are
// recorded in increasing order.
func (l *commandLog) record(id string, version int64) {
	if id == "" {
		return
	}
	if _, ok := l.ids[id]; ok {
		l.ids[id] = version
		return
	}
	if len(l.order) < l.limit {
		l.order = append(l.order, id)
	} else {
		oldest := l.order[l.head]
		l.knownFrom = max(l.knownFrom, l.ids[oldest]+1)
		delete(l.ids, oldest)
		l.order[l.head] = id
		l.head = (l.head + 1) % l.limit
	}
	l.ids[id] = version
}

// seen reports whether id is known to have appended events.
func (l *commandLog) seen(id string) bool {
	_, ok := l.ids[id]
	return ok
}

// complete reports whether an id that is not seen is proven never to have appended.
func (l *commandLog) complete() bool { return l.knownFrom <= 1 }
