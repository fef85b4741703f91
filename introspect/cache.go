package introspect

import (
	"container/list"
	"sync"
	"time"
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

// cache is a bounded LRU of answers.
type cache struct {
	mu      sync.Mutex
	max     int
	entries map[cacheKey]*list.Element
	order   *list.List // front: most recently used
}

func newCache(max int) *cache {
	return &cache{max: max, entries: make(map[cacheKey]*list.Element), order: list.New()}
}

// get returns the entry for key unless it has outlived both its freshness
// and its grace; stale entries are dropped.
func (c *cache) get(key cacheKey, now time.Time) (entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return entry{}, false
	}
	e := el.Value.(*entry)
	if !now.Before(e.fresh) && !now.Before(e.graceUntil) {
		c.order.Remove(el)
		delete(c.entries, key)
		return entry{}, false
	}
	c.order.MoveToFront(el)
	return *e, true
}

func (c *cache) put(e entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[e.key]; ok {
		*el.Value.(*entry) = e
		c.order.MoveToFront(el)
		return
	}
	c.entries[e.key] = c.order.PushFront(&e)
	for c.order.Len() > c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.entries, oldest.Value.(*entry).key)
	}
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
