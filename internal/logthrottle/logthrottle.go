// Package logthrottle keeps a log from getting one line per request while a
// dependency is down: one record per key and interval passes, the others
// are counted and reported with the next one.
package logthrottle

import (
	"sync"
	"time"
)

// maxKeys bounds the keys remembered; keys come from small fixed sets, and
// forgetting them all only lets one more record through each.
const maxKeys = 256

// Limiter lets one record per key through per Interval. The zero value is
// not usable: set Interval. It is safe for concurrent use.
type Limiter struct {
	Interval time.Duration

	mu   sync.Mutex
	next map[string]time.Time
	held map[string]int
}

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
	if len(l.next) >= maxKeys {
		clear(l.next)
	}
	l.next[key] = now.Add(l.Interval)
	held = l.held[key]
	delete(l.held, key)
	return true, held
}
