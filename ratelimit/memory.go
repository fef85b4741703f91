package ratelimit

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// MemoryConfig configures a MemoryStore.
type MemoryConfig struct {
	// Shards is the number of independently locked shards, rounded up to
	// a power of two; default 64.
	Shards int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// MemoryStore applies limits in this process's memory. Each client with
// debt costs one map entry; entries whose bucket is full again are the
// only ones ever dropped (so no client's debt is forgotten), swept as the
// store is used, and a shard's map is rebuilt smaller when most of it has
// gone. It is safe for concurrent use.
type MemoryStore struct {
	shards []memoryShard
	mask   uint64
	seed   maphash.Seed
	now    func() time.Time
	epoch  time.Time
}

type memoryShard struct {
	mu sync.Mutex
	// tat holds each client's theoretical arrival time, since epoch.
	tat map[string]time.Duration
	// ops counts decisions since the last sweep, which comes after
	// sweepAfter of them; peak is the largest size since the map was last
	// rebuilt.
	ops, sweepAfter, peak int
	_                     [32]byte // keep shards on separate cache lines
}

// minSweepInterval is the least number of decisions between two sweeps of
// a shard; after a sweep, the next comes after as many decisions as the
// shard kept entries (at least this many), so sweeping costs O(1) per
// decision.
const minSweepInterval = 1024

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore(cfg MemoryConfig) *MemoryStore {
	n := 64
	if cfg.Shards > 0 {
		n = 1
		for n < cfg.Shards {
			n <<= 1
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &MemoryStore{shards: make([]memoryShard, n), mask: uint64(n - 1), seed: maphash.MakeSeed(), now: cfg.Now, epoch: cfg.Now()}
	for i := range s.shards {
		s.shards[i].tat = make(map[string]time.Duration)
	}
	return s
}

// Allow implements Store. It never fails but for an invalid limit.
func (s *MemoryStore) Allow(_ context.Context, key string, limit Limit) (Decision, error) {
	if err := limit.Validate(); err != nil {
		return Decision{}, err
	}
	now := s.now().Sub(s.epoch)
	sh := &s.shards[maphash.String(s.seed, key)&s.mask]
	sh.mu.Lock()
	d, next := gcra(now, sh.tat[key], limit)
	if d.Allowed {
		sh.tat[key] = next
	}
	sh.ops++
	if sh.ops >= max(minSweepInterval, sh.sweepAfter) {
		sh.sweep(now)
	}
	sh.mu.Unlock()
	return d, nil
}

// Len returns the number of clients with state (debt, or not yet swept).
func (s *MemoryStore) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.tat)
		sh.mu.Unlock()
	}
	return n
}

// Sweep drops now every entry whose bucket is full again; the store also
// does this on its own as it is used.
func (s *MemoryStore) Sweep() {
	now := s.now().Sub(s.epoch)
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.sweep(now)
		sh.mu.Unlock()
	}
}

// sweep deletes full buckets and, when the map has shrunk to a quarter of
// its peak, copies it into a smaller one: Go maps never give memory back.
func (sh *memoryShard) sweep(now time.Duration) {
	sh.ops = 0
	sh.peak = max(sh.peak, len(sh.tat))
	for k, tat := range sh.tat {
		if tat <= now {
			delete(sh.tat, k)
		}
	}
	if sh.peak >= minSweepInterval && len(sh.tat) < sh.peak/4 {
		smaller := make(map[string]time.Duration, len(sh.tat))
		for k, v := range sh.tat {
			smaller[k] = v
		}
		sh.tat, sh.peak = smaller, len(smaller)
	}
	sh.sweepAfter = len(sh.tat)
}
