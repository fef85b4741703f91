package ratelimit

import (
	"context"
	"time"

	"github.com/olympus/aegis/internal/cache"
)

// DefaultMemoryMaxEntries bounds a MemoryStore's clients with debt when
// MemoryConfig.MaxEntries is zero.
const DefaultMemoryMaxEntries = 1 << 20

// MemoryConfig configures a MemoryStore.
type MemoryConfig struct {
	// Shards is the number of independently locked shards, rounded up to
	// a power of two; default 64 (fewer for a small MaxEntries).
	Shards int
	// MaxEntries bounds the clients with debt the store remembers; zero
	// means DefaultMemoryMaxEntries. Once it is full, a new client's debt
	// takes the place of another's, which is forgotten (that client's
	// bucket is full again): clients seen once go before those making
	// requests again and again.
	MaxEntries int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// MemoryStore applies limits in this process's memory. Each client with
// debt costs one entry, up to MaxEntries; entries whose bucket is full
// again are dropped (so no client's debt is forgotten but to keep within
// MaxEntries), swept as the store is used, and the memory is given back
// when most of them have gone. It is safe for concurrent use.
type MemoryStore struct {
	// tat holds each client's theoretical arrival time, since epoch; an
	// entry expires when its bucket is full again.
	tat   *cache.Cache[time.Duration]
	now   func() time.Time
	epoch time.Time
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore(cfg MemoryConfig) *MemoryStore {
	if cfg.Shards <= 0 {
		cfg.Shards = 64
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMemoryMaxEntries
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &MemoryStore{
		tat:   cache.New[time.Duration](cache.Config{MaxEntries: cfg.MaxEntries, Shards: cfg.Shards}),
		now:   cfg.Now,
		epoch: cfg.Now(),
	}
}

// at is a time since epoch as the cache's time: both it and the entries'
// expiry are measured from epoch (by the monotonic clock when Now has one),
// so a step of the wall clock changes neither.
func at(sinceEpoch time.Duration) time.Time { return time.Unix(0, int64(sinceEpoch)) }

// Allow implements Store. It never fails but for an invalid limit.
func (s *MemoryStore) Allow(_ context.Context, key string, limit Limit) (Decision, error) {
	if err := limit.Validate(); err != nil {
		return Decision{}, err
	}
	now := s.now().Sub(s.epoch)
	var d Decision
	s.tat.Update(key, at(now), func(tat time.Duration, found bool) (time.Duration, time.Time, bool) {
		var next time.Duration
		d, next = gcra(now, tat, limit)
		if !d.Allowed {
			return tat, at(tat), found
		}
		return next, at(next), true
	})
	return d, nil
}

// Len returns the number of clients with state (debt, or not yet swept).
func (s *MemoryStore) Len() int { return s.tat.Len() }

// Sweep drops now every entry whose bucket is full again; the store also
// does this on its own as it is used.
func (s *MemoryStore) Sweep() {
	s.tat.DeleteExpired(at(s.now().Sub(s.epoch)))
}
