package cluster

import (
	"bytes"

	"github.com/rs/zerolog"
)

// logWriter adapts memberlist's *log.Logger output to zerolog: every line
// becomes one debug event, with memberlist's own level ("[WARN]") kept as a
// field so it can still be filtered on.
type logWriter struct {
	log zerolog.Logger
}

func (w logWriter) Write(p []byte) (int, error) {
	n := len(p)
	for line := range bytes.SplitSeq(bytes.TrimRight(p, "\n"), []byte("\n")) {
		level := ""
		if len(line) > 0 && line[0] == '[' {
			if i := bytes.IndexByte(line, ']'); i > 0 {
				level = string(line[1:i])
				line = bytes.TrimLeft(line[i+1:], " ")
			}
		}
		line = bytes.TrimPrefix(line, []byte("memberlist: "))
		ev := w.log.Debug().Str("component", "memberlist")
		if level != "" {
			ev = ev.Str("ml_level", level)
		}
		ev.Msg(string(line))
	}
	return n, nil
}
