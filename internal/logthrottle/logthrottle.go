// Package logthrottle is the one throttle of Aegis's logs: it keeps a log
// from getting one line per request while a dependency is down, and from
// repeating the same warning about the same value. One record per key and
// interval passes (once per key when there is no interval); the others are
// counted and reported with the next one.
package logthrottle

import (
	"sync"
	"time"
)

// DefaultMaxKeys bounds the keys a Limiter remembers unless MaxKeys says
// otherwise.
const DefaultMaxKeys = 256

// Limiter lets one record per key through per Interval, or once per key
// when Interval is zero or negative. It remembers at most MaxKeys keys
// (default DefaultMaxKeys); past that it forgets them all, which only lets
// one more record through each. The zero value lets each key through once.
// It is safe for concurrent use.
type Limiter struct {
	Interval time.Duration
	MaxKeys  int

	mu   sync.Mutex
	next map[string]time.Time
	held map[string]int
}

// forever is the next time of a key let through once.
var forever = time.Unix(1<<62, 0)

// Allow reports whether a record for key may be written at now and, when
// it may, how many were held back since the last one.
func (l *Limiter) Allow(key string, now time.Time) (ok bool, held int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.next == nil {
		l.next, l.held = map[string]time.Time{}, map[string]int{}
	}
	if now.Before(l.next[key]) {
		l.held[key]++
		return false, 0
	}
	maxKeys := l.MaxKeys
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	if len(l.next) >= maxKeys {
		clear(l.next)
		clear(l.held)
	}
	if l.Interval > 0 {
		l.next[key] = now.Add(l.Interval)
	} else {
		l.next[key] = forever
	}
	held = l.held[key]
	delete(l.held, key)
	return true, held
}
