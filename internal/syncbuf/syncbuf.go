// Package syncbuf is a buffer that several goroutines may write to while another
// reads it: the output of a node process (exec copies it from its own goroutine) or
// a logger shared by a test's goroutines.
package syncbuf

import (
	"bytes"
	"sync"
)

// Buffer is a goroutine-safe bytes.Buffer for writing and reading whole contents.
// The bytes.Buffer is a field, not embedded, so that nothing (exec's copier looks
// for io.ReaderFrom) can reach its methods around the lock.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
