// Package testutil holds what Aegis's tests share: a settable clock, a
// buffer that concurrent loggers may write to, and the live heap.
package testutil

import (
	"bytes"
	"log/slog"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// LiveHeap is the heap's live bytes after a full collection (two, so that
// sync.Pool's victim caches are gone too).
func LiveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// Clock is a clock that moves only when told to. It is safe for
// concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock showing start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Buffer is a bytes.Buffer that concurrent writers (loggers of servers
// under test) may share.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
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

// Lines returns the lines written so far that contain all of substrings.
func (b *Buffer) Lines(substrings ...string) []string {
	var lines []string
next:
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		for _, s := range substrings {
			if !strings.Contains(line, s) {
				continue next
			}
		}
		lines = append(lines, line)
	}
	return lines
}

// LogRecorder is a Buffer that a slog text handler writes to, read back
// as "LEVEL message" lines.
type LogRecorder struct{ Buffer }

// Logger returns a debug-level logger writing to the recorder without
// timestamps.
func (r *LogRecorder) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(r, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}))
}

var logLine = regexp.MustCompile(`^level=(\S+) msg=("(?:[^"\\]|\\.)*"|\S+)`)

// Records returns "LEVEL message" per line written.
func (r *LogRecorder) Records() []string {
	out := []string{}
	for line := range strings.Lines(r.String()) {
		m := logLine.FindStringSubmatch(line)
		if m == nil {
			out = append(out, "unparsed: "+line)
			continue
		}
		msg := m[2]
		if unq, err := strconv.Unquote(msg); err == nil {
			msg = unq
		}
		out = append(out, m[1]+" "+msg)
	}
	return out
}
