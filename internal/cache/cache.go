// Package cache is the bounded cache Aegis's caches share: string keys, a
// value of any type, an expiry per entry, and a bound on the number of
// entries that holds however the keys are spread.
//
// Keys are spread over independently locked shards by hash/maphash with a
// seed of the cache's own, so no shape of key (a JWT's last base64url
// character takes four values) crowds one shard. The bound is on the whole
// cache, not on each shard: a cache of MaxEntries holds MaxEntries keys
// whichever shards they fall in.
//
// Eviction is S3-FIFO: a new key enters a small FIFO queue (about a tenth
// of the entries) and is dropped from it, its hash remembered in a ghost
// queue, unless it was read again while there; keys read again move to the
// main queue, where each read earns a pass (up to three) past eviction. A
// key dropped recently, found in the ghost queue, goes straight to the main
// queue. So a flood of keys used once only ever displaces keys used once,
// and the keys in repeated use stay.
//
// There is no clock: callers pass the time to Get and Update, and each
// entry's expiry to Set and Update. Times are compared by their wall clock
// reading (their monotonic reading is ignored), to the nanosecond, those
// after the year 2262 as if in it. Expired entries are misses;
// they are removed when found, and each shard also removes all of its
// expired entries after as many lookups as it holds entries (at least
// 1,024), giving back memory when it has shrunk to a quarter.
package cache

import (
	"hash/maphash"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Config bounds a Cache.
type Config struct {
	// MaxEntries is the most entries the cache holds; it must be positive
	// (New panics otherwise): a caller with a default applies it before
	// calling New. At most math.MaxInt32.
	MaxEntries int
	// Shards is the number of independently locked shards, rounded up to
	// a power of two; zero means four per CPU (GOMAXPROCS), at most 64.
	// Either way it is reduced until every shard has at least 64 entries'
	// share of MaxEntries, so a cache of fewer than 128 entries has one.
	Shards int
}

const (
	// minShare is the least share of MaxEntries a shard is given; fewer
	// shards for small caches keep each shard's queues meaningful.
	minShare = 64
	// maxDefaultShards caps the default shard count.
	maxDefaultShards = 64
	// maxFreq caps the reads an entry is credited with.
	maxFreq = 3
	// minPurgeInterval is the least number of lookups in a shard between
	// two removals of all its expired entries.
	minPurgeInterval = 1024
	// minCompact is the least slab capacity worth compacting.
	minCompact = 1024
)

// Cache is a bounded, sharded, scan-resistant cache of values of type V
// under string keys, each with its own expiry. It is safe for concurrent
// use. The zero value is not usable: call New.
type Cache[V any] struct {
	shards []shard[V]
	mask   uint64
	seed   maphash.Seed
	max    int64
	// count is the entries held across shards, plus those being added.
	count atomic.Int64
}

// New returns an empty Cache bounded by cfg. It panics if cfg.MaxEntries is
// not positive or is over math.MaxInt32.
func New[V any](cfg Config) *Cache[V] {
	if cfg.MaxEntries <= 0 || cfg.MaxEntries > math.MaxInt32 {
		panic("cache: Config.MaxEntries must be in 1..MaxInt32")
	}
	want := cfg.Shards
	if want <= 0 {
		want = min(4*runtime.GOMAXPROCS(0), maxDefaultShards)
	}
	n := 1
	for n < want {
		n <<= 1
	}
	for n > 1 && cfg.MaxEntries/n < minShare {
		n >>= 1
	}
	c := &Cache[V]{
		shards: make([]shard[V], n),
		mask:   uint64(n - 1),
		seed:   maphash.MakeSeed(),
		max:    int64(cfg.MaxEntries),
	}
	share := max(1, cfg.MaxEntries/n)
	for i := range c.shards {
		s := &c.shards[i]
		s.index = make(map[uint64]int32)
		s.small = list{head: none, tail: none}
		s.main = list{head: none, tail: none}
		s.free = none
		s.purgeAt = minPurgeInterval
		s.ghost = ghost{max: share, seen: make(map[uint32]int32)}
	}
	return c
}

// Get returns key's value if it is cached and its expiry is after now; an
// expired entry is removed. A hit counts as a use for eviction. It does
// not allocate.
func (c *Cache[V]) Get(key string, now time.Time) (V, bool) {
	h := c.hash(key)
	s := &c.shards[h&c.mask]
	t := nowNanos(now)
	s.mu.Lock()
	s.tick(c, t)
	i := s.find(key, h)
	if i == none {
		s.mu.Unlock()
		var zero V
		return zero, false
	}
	n := &s.nodes[i]
	if n.expires <= t {
		s.remove(i)
		c.count.Add(-1)
		s.mu.Unlock()
		var zero V
		return zero, false
	}
	if n.freq < maxFreq {
		n.freq++
	}
	v := n.value
	s.mu.Unlock()
	return v, true
}

// Set caches v under key until expires; the zero time means no expiry. If
// the cache is full, another entry is evicted first.
func (c *Cache[V]) Set(key string, v V, expires time.Time) {
	h := c.hash(key)
	s := &c.shards[h&c.mask]
	exp := expiryNanos(expires)
	for {
		s.mu.Lock()
		if i := s.find(key, h); i != none {
			n := &s.nodes[i]
			n.value, n.expires = v, exp
			if n.freq < maxFreq {
				n.freq++
			}
			s.mu.Unlock()
			return
		}
		if c.add(s, key, h, v, exp) {
			s.mu.Unlock()
			return
		}
	}
}

// Update reads and writes key's entry in one step, under its shard's lock:
// fn gets the value and true, or the zero value and false if key is absent
// or expired at now, and returns the value to store with its expiry (the
// zero time for none), or keep false to remove the entry (or add none).
//
// fn must not use the cache. It may be called more than once (when the
// cache is full and room must be made in another shard); only what the
// last call returns is stored.
func (c *Cache[V]) Update(key string, now time.Time, fn func(v V, found bool) (nv V, expires time.Time, keep bool)) {
	h := c.hash(key)
	s := &c.shards[h&c.mask]
	t := nowNanos(now)
	for {
		s.mu.Lock()
		s.tick(c, t)
		i := s.find(key, h)
		// An expired entry is not found, but its node is reused if fn
		// keeps a value: no removal and addition for a key that returns.
		found := i != none && s.nodes[i].expires > t
		var old V
		if found {
			old = s.nodes[i].value
		}
		nv, expires, keep := fn(old, found)
		switch {
		case i != none && keep:
			n := &s.nodes[i]
			n.value, n.expires = nv, expiryNanos(expires)
			if n.freq < maxFreq {
				n.freq++
			}
		case i != none:
			s.remove(i)
			c.count.Add(-1)
		case keep:
			if !c.add(s, key, h, nv, expiryNanos(expires)) {
				continue
			}
		}
		s.mu.Unlock()
		return
	}
}

// Delete removes key's entry, if any.
func (c *Cache[V]) Delete(key string) {
	h := c.hash(key)
	s := &c.shards[h&c.mask]
	s.mu.Lock()
	if i := s.find(key, h); i != none {
		s.remove(i)
		c.count.Add(-1)
	}
	s.mu.Unlock()
}

// DeleteFunc calls del for every entry, expired or not, and removes those
// for which it returns true; it returns how many it removed. Each shard is
// locked while its entries are visited: del must not use the cache.
func (c *Cache[V]) DeleteFunc(del func(key string, v V) bool) int {
	return c.removeWhere(func(n *node[V]) bool { return del(n.key, n.value) })
}

// DeleteExpired removes every entry whose expiry is not after now and
// returns how many it removed. The cache does this on its own as it is
// used; DeleteExpired is for giving memory back at once.
func (c *Cache[V]) DeleteExpired(now time.Time) int {
	t := nowNanos(now)
	return c.removeWhere(func(n *node[V]) bool { return n.expires <= t })
}

// Len returns the number of entries held, including expired ones not yet
// removed.
func (c *Cache[V]) Len() int { return int(c.count.Load()) }

func (c *Cache[V]) removeWhere(del func(*node[V]) bool) int {
	removed := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		k := s.removeWhere(del)
		c.count.Add(-int64(k))
		removed += k
		s.mu.Unlock()
	}
	return removed
}

// add inserts key, absent from s, whose lock is held. When the cache is
// full it evicts from s; if s holds nothing, it releases s's lock, evicts
// from another shard and returns false: the caller starts again.
func (c *Cache[V]) add(s *shard[V], key string, h uint64, v V, exp int64) bool {
	if !c.reserve() {
		if s.small.n+s.main.n == 0 {
			s.mu.Unlock()
			c.evictElsewhere(s)
			return false
		}
		s.evict() // its place goes to key
	}
	s.insert(key, h, v, exp)
	return true
}

// reserve counts one more entry unless the cache is full.
func (c *Cache[V]) reserve() bool {
	for {
		n := c.count.Load()
		if n >= c.max {
			return false
		}
		if c.count.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// evictElsewhere evicts one entry from the first shard after except that
// holds any.
func (c *Cache[V]) evictElsewhere(except *shard[V]) {
	start := 0
	for i := range c.shards {
		if &c.shards[i] == except {
			start = i
			break
		}
	}
	for k := 1; k < len(c.shards); k++ {
		s := &c.shards[(start+k)&int(c.mask)]
		s.mu.Lock()
		if s.small.n+s.main.n > 0 {
			s.evict()
			c.count.Add(-1)
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
	}
}

// none is the null node index.
const none = -1

// Queues a node can be in.
const (
	free uint8 = iota
	inSmall
	inMain
)

// node is one entry, in a shard's slab.
type node[V any] struct {
	key        string
	value      V
	expires    int64 // Unix nanoseconds; math.MaxInt64 for none
	hash       uint64
	prev, next int32 // in its queue, or next free node
	same       int32 // next node whose key has the same hash
	freq       uint8
	queue      uint8
}

// list is a FIFO queue of nodes linked through the slab: new ones at head,
// the oldest at tail.
type list struct {
	head, tail int32
	n          int
}

// shard is one lock's worth of the cache.
type shard[V any] struct {
	mu sync.Mutex
	// index maps each key's hash to its node, or to the first of the
	// nodes whose keys share that hash, linked through same.
	index map[uint64]int32
	nodes []node[V]
	free  int32 // first free node, linked through next
	small list
	main  list
	ghost ghost
	// ops counts lookups since expired entries were last removed, which
	// happens again after purgeAt of them.
	ops, purgeAt int
	_            [64]byte // keep shards' locks on separate cache lines
}

// tick counts a lookup at t and removes expired entries when due.
func (s *shard[V]) tick(c *Cache[V], t int64) {
	s.ops++
	if s.ops < s.purgeAt {
		return
	}
	k := s.removeWhere(func(n *node[V]) bool { return n.expires <= t })
	c.count.Add(-int64(k))
}

// insert links a new node at the head of the small queue, or of the main
// queue if its hash is in the ghost queue.
func (s *shard[V]) insert(key string, h uint64, v V, exp int64) {
	var i int32
	if s.free != none {
		i = s.free
		s.free = s.nodes[i].next
	} else {
		s.nodes = append(s.nodes, node[V]{})
		i = int32(len(s.nodes) - 1)
	}
	same, ok := s.index[h]
	if !ok {
		same = none
	}
	s.nodes[i] = node[V]{key: key, value: v, expires: exp, hash: h, same: same}
	s.index[h] = i
	if s.ghost.seen[fingerprint(h)] > 0 {
		s.push(&s.main, i, inMain)
	} else {
		s.push(&s.small, i, inSmall)
	}
}

// evict drops one node, which s must hold: from the small queue while it
// holds a tenth of the entries or more (moving those read since they came
// to the main queue), otherwise from the main queue (giving those read
// since their last pass another).
func (s *shard[V]) evict() {
	for {
		if s.small.n > 0 && (s.small.n*10 >= s.small.n+s.main.n || s.main.n == 0) {
			i := s.small.tail
			n := &s.nodes[i]
			s.unlink(&s.small, i)
			if n.freq > 0 {
				n.freq = 0
				s.push(&s.main, i, inMain)
				continue
			}
			s.ghost.add(fingerprint(n.hash))
			s.release(i)
			return
		}
		i := s.main.tail
		n := &s.nodes[i]
		s.unlink(&s.main, i)
		if n.freq > 0 {
			n.freq--
			s.push(&s.main, i, inMain)
			continue
		}
		s.release(i)
		return
	}
}

// remove drops node i from its queue and the shard.
func (s *shard[V]) remove(i int32) {
	if s.nodes[i].queue == inSmall {
		s.unlink(&s.small, i)
	} else {
		s.unlink(&s.main, i)
	}
	s.release(i)
}

// release forgets node i, already unlinked, and frees its slot.
func (s *shard[V]) release(i int32) {
	n := &s.nodes[i]
	if j := s.index[n.hash]; j == i {
		if n.same == none {
			delete(s.index, n.hash)
		} else {
			s.index[n.hash] = n.same
		}
	} else {
		for s.nodes[j].same != i {
			j = s.nodes[j].same
		}
		s.nodes[j].same = n.same
	}
	s.nodes[i] = node[V]{queue: free, next: s.free}
	s.free = i
}

func (s *shard[V]) push(l *list, i int32, q uint8) {
	n := &s.nodes[i]
	n.queue, n.prev, n.next = q, none, l.head
	if l.head != none {
		s.nodes[l.head].prev = i
	} else {
		l.tail = i
	}
	l.head = i
	l.n++
}

func (s *shard[V]) unlink(l *list, i int32) {
	n := &s.nodes[i]
	if n.prev != none {
		s.nodes[n.prev].next = n.next
	} else {
		l.head = n.next
	}
	if n.next != none {
		s.nodes[n.next].prev = n.prev
	} else {
		l.tail = n.prev
	}
	n.prev, n.next = none, none
	l.n--
}

// removeWhere removes the nodes del selects, resets the lookup count and
// compacts the slab if it is mostly empty; it returns how many it removed.
func (s *shard[V]) removeWhere(del func(*node[V]) bool) int {
	removed := 0
	for _, l := range []*list{&s.small, &s.main} {
		for i := l.head; i != none; {
			next := s.nodes[i].next
			if del(&s.nodes[i]) {
				s.unlink(l, i)
				s.release(i)
				removed++
			}
			i = next
		}
	}
	live := s.small.n + s.main.n
	s.ops, s.purgeAt = 0, max(minPurgeInterval, live)
	if cap(s.nodes) >= minCompact && live < cap(s.nodes)/4 {
		s.compact()
	}
	return removed
}

// compact copies the live nodes, in queue order, into a slab and map sized
// for them: Go maps and slices never give memory back on their own.
func (s *shard[V]) compact() {
	live := s.small.n + s.main.n
	nodes := make([]node[V], 0, live)
	index := make(map[uint64]int32, live)
	small, main := list{head: none, tail: none}, list{head: none, tail: none}
	for _, q := range []struct {
		from, to *list
		queue    uint8
	}{{&s.small, &small, inSmall}, {&s.main, &main, inMain}} {
		// Walk from the oldest, pushing each at the head, to keep order.
		for i := q.from.tail; i != none; i = s.nodes[i].prev {
			n := s.nodes[i]
			j := int32(len(nodes))
			n.prev, n.next = none, q.to.head
			n.queue = q.queue
			n.same = none
			if k, ok := index[n.hash]; ok {
				n.same = k
			}
			index[n.hash] = j
			nodes = append(nodes, n)
			if q.to.head != none {
				nodes[q.to.head].prev = j
			} else {
				q.to.tail = j
			}
			q.to.head = j
			q.to.n++
		}
	}
	s.nodes, s.index, s.small, s.main, s.free = nodes, index, small, main, none
}

// find returns the node holding key, whose hash is h, or none.
func (s *shard[V]) find(key string, h uint64) int32 {
	i, ok := s.index[h]
	if !ok {
		return none
	}
	for i != none && s.nodes[i].key != key {
		i = s.nodes[i].same
	}
	return i
}

// fingerprint is the part of a key's hash the ghost queue keeps: the upper
// half, as the lower bits pick the shard.
func fingerprint(h uint64) uint32 { return uint32(h >> 32) }

// ghost remembers the hashes of the last keys evicted from the small
// queue, as many as a shard's share of the entries.
type ghost struct {
	ring []uint32
	next int // oldest, once ring is full
	max  int
	seen map[uint32]int32 // how many times each hash is in ring
}

func (g *ghost) add(fp uint32) {
	if len(g.ring) < g.max {
		g.ring = append(g.ring, fp)
	} else {
		old := g.ring[g.next]
		if g.seen[old]--; g.seen[old] <= 0 {
			delete(g.seen, old)
		}
		g.ring[g.next] = fp
		g.next = (g.next + 1) % g.max
	}
	g.seen[fp]++
}

// expiryNanos is t in Unix nanoseconds, the zero time meaning never.
func expiryNanos(t time.Time) int64 {
	if t.IsZero() {
		return math.MaxInt64
	}
	return nowNanos(t)
}

// nowNanos is t in Unix nanoseconds, clamped to the years 1678 to 2262
// (below math.MaxInt64, which means never).
func nowNanos(t time.Time) int64 {
	switch s := t.Unix(); {
	case s >= math.MaxInt64/1_000_000_000:
		return math.MaxInt64 - 1
	case s <= math.MinInt64/1_000_000_000:
		return math.MinInt64
	}
	return t.UnixNano()
}

// shardOf is key's shard.
func (c *Cache[V]) shardOf(key string) *shard[V] {
	return &c.shards[c.hash(key)&c.mask]
}

// hash is key's seeded hash. maphash.Comparable hashes a string in one
// pass, as Go's maps do; maphash.String goes 128 bytes at a time and takes
// about three times as long for a JWT-sized key.
func (c *Cache[V]) hash(key string) uint64 { return maphash.Comparable(c.seed, key) }
