package introspect

import (
	"time"

	bounded "github.com/olympus/aegis/internal/cache"
)

// cacheKey is the SHA-256 of a token: the token itself is never stored.
type cacheKey [32]byte

// entry is one cached answer: res for an active token, err for a refusal.
type entry struct {
	key cacheKey
	res *Result
	err error
	// fresh is when the answer stops being served.
	fresh time.Time
	// graceUntil is how long a positive answer may still be served while the
	// server is unreachable (never past the token's exp).
	graceUntil time.Time
}

// cache is a bounded cache of answers (internal/cache: sharded, and
// answers asked for once go before those in repeated use).
type cache struct {
	c *bounded.Cache[entry]
}

func newCache(max int) *cache {
	return &cache{c: bounded.New[entry](bounded.Config{MaxEntries: max})}
}

// get returns the entry for key unless it has outlived both its freshness
// and its grace; stale entries are dropped.
func (a *cache) get(key cacheKey, now time.Time) (entry, bool) {
	e, ok := a.c.Get(string(key[:]), now)
	if !ok {
		return entry{}, false
	}
	// The cache drops the entry once past both by the wall clock; this is
	// the same test with now's monotonic reading, if it has one.
	if !now.Before(e.fresh) && !now.Before(e.graceUntil) {
		a.c.Delete(string(key[:]))
		return entry{}, false
	}
	return e, true
}

func (a *cache) put(e entry) {
	a.c.Set(string(e.key[:]), e, maxTime(e.fresh, e.graceUntil))
}

func (a *cache) remove(key cacheKey) { a.c.Delete(string(key[:])) }

func (a *cache) len() int { return a.c.Len() }

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
