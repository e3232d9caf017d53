package aggregate

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestKeepDeadline(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		k        Keep
		stop     bool
		deadline time.Time
	}{
		{KeepForever, false, time.Time{}},
		{Keep{}, false, time.Time{}},
		{StopNow, true, time.Time{}},
		{KeepFor(time.Minute), false, now.Add(time.Minute)},
		{KeepFor(0), true, time.Time{}},
		{KeepFor(-time.Second), true, time.Time{}},
	}
	for _, c := range cases {
		stop, at := c.k.Deadline(now)
		if stop != c.stop || !at.Equal(c.deadline) {
			t.Errorf("%s: Deadline = %v %v, want %v %v", c.k, stop, at, c.stop, c.deadline)
		}
	}
}

func TestDecideLifespan(t *testing.T) {
	var got []string
	l := LifespanFuncs{
		Event:   func(e any) Keep { got = append(got, "event:"+e.(string)); return StopNow },
		Command: func(c any) Keep { got = append(got, "command:"+c.(string)); return KeepFor(time.Second) },
		Error:   func(err error) Keep { got = append(got, "error:"+err.Error()); return KeepForever },
	}
	if k, _ := decideLifespan(l, "cmd", []any{"e1", "e2"}, nil); k != StopNow {
		t.Errorf("events: %s", k)
	}
	if k, _ := decideLifespan(l, "cmd", nil, nil); k != KeepFor(time.Second) {
		t.Errorf("no events: %s", k)
	}
	if k, _ := decideLifespan(l, "cmd", nil, errors.New("bad")); k != KeepForever {
		t.Errorf("error: %s", k)
	}
	want := []string{"event:e2", "command:cmd", "error:bad"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("calls %v, want %v", got, want)
	}
	boom := LifespanFuncs{Command: func(any) Keep { panic("x") }}
	if k, err := decideLifespan(boom, "c", nil, nil); k != StopNow || err == nil {
		t.Errorf("panicking lifespan: %s %v", k, err)
	}
	if k, _ := decideLifespan(LifespanFuncs{}, "c", nil, nil); k != KeepForever {
		t.Errorf("nil funcs: %s", k)
	}
	if k, _ := decideLifespan(IdleLifespan{Idle: time.Minute}, "c", []any{1}, nil); k != KeepFor(time.Minute) {
		t.Errorf("idle: %s", k)
	}
	if k, _ := decideLifespan(DefaultLifespan{}, "c", nil, errors.New("x")); k != KeepForever {
		t.Errorf("default: %s", k)
	}
}

func TestExpired(t *testing.T) {
	now := time.Unix(100, 0)
	if expired(time.Time{}, now) || expired(now.Add(time.Nanosecond), now) || !expired(now, now) || !expired(now.Add(-time.Second), now) {
		t.Error("expired is wrong")
	}
}

func TestShouldSnapshot(t *testing.T) {
	p := SnapshotPolicy{Every: 10, Version: 1}
	cases := []struct {
		version, last int64
		want          bool
	}{{9, 0, false}, {10, 0, true}, {19, 10, false}, {20, 10, true}, {25, 10, true}, {0, 0, false}}
	for _, c := range cases {
		if got := shouldSnapshot(p, c.version, c.last); got != c.want {
			t.Errorf("shouldSnapshot(%d, %d) = %v", c.version, c.last, got)
		}
	}
	if shouldSnapshot(SnapshotPolicy{}, 1000, 0) {
		t.Error("Every 0 snapshots")
	}
}

func TestShouldRetry(t *testing.T) {
	if !shouldRetry(1, 1) || shouldRetry(2, 1) || shouldRetry(1, 0) {
		t.Error("shouldRetry is wrong")
	}
}

func TestCommandLog(t *testing.T) {
	l := newCommandLog(3, 1)
	if !l.complete() || l.seen("a") {
		t.Fatal("fresh log")
	}
	l.record("a", 1)
	l.record("a", 2) // one command, two events
	l.record("", 3)  // no id: ignored
	l.record("b", 4)
	l.record("c", 5)
	if !l.seen("a") || !l.seen("b") || !l.seen("c") || !l.complete() {
		t.Fatal("within the limit")
	}
	l.record("d", 6) // forgets a, whose last event was version 2
	if l.seen("a") || !l.seen("d") || l.complete() || l.knownFrom != 3 {
		t.Fatalf("after forgetting: knownFrom %d", l.knownFrom)
	}
	l.record("e", 7) // forgets b
	if l.seen("b") || l.knownFrom != 5 || len(l.ids) != 3 {
		t.Fatalf("knownFrom %d, ids %v", l.knownFrom, l.ids)
	}
	// After a snapshot at version 10, nothing before 11 is known.
	s := newCommandLog(5, 11)
	if s.complete() {
		t.Fatal("snapshot-covered log claims completeness")
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{Timeout: -1, MaxLive: -1, SweepInterval: -1, CommandIDMemory: -1}.Validate()
	for _, want := range []string{"Store is required", "Router is required", "Timeout", "MaxLive", "SweepInterval", "CommandIDMemory"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
	c := Config{MaxRetries: -1}.withDefaults()
	if c.Timeout != DefaultTimeout || c.MaxLive != DefaultMaxLive || c.MaxRetries != 0 || c.Now == nil || c.Logger == nil || c.CommandIDMemory != DefaultCommandIDMemory {
		t.Errorf("defaults: %+v", c)
	}
}
