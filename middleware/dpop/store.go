package dpop

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/olympus/aegis/internal/cache"
)

// ReplayStore remembers the proofs a Verifier accepted, to refuse their
// reuse (RFC 9449 §11.1).
type ReplayStore interface {
	// Seen records key until expires and reports whether key was already
	// recorded and not yet expired, in one atomic step: of two concurrent
	// calls with one key, exactly one reports false. An error means the
	// store cannot tell; the proof is then refused as unavailable.
	Seen(ctx context.Context, key string, expires time.Time) (bool, error)
}

// MemoryStoreConfig configures a MemoryStore.
type MemoryStoreConfig struct {
	// MaxEntries bounds the store; default DefaultMaxEntries.
	MaxEntries int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// MemoryStore is a bounded in-memory ReplayStore for one process. Keys
// live until their proof's iat leaves the window. When it is full, the
// oldest entries that were never looked up again make room first
// (internal/cache's S3-FIFO): a Verifier records a proof only after every
// other check passed, so filling the store takes valid tokens with proofs
// of their keys. Size MaxEntries above the proofs accepted per Window.
type MemoryStore struct {
	entries *cache.Cache[time.Time]
	now     func() time.Time
}

// NewMemoryStore checks cfg and returns an empty MemoryStore.
func NewMemoryStore(cfg MemoryStoreConfig) (*MemoryStore, error) {
	if cfg.MaxEntries < 0 {
		return nil, fmt.Errorf("dpop.MemoryStoreConfig.MaxEntries %d is negative", cfg.MaxEntries)
	}
	if cfg.MaxEntries == 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &MemoryStore{entries: cache.New[time.Time](cache.Config{MaxEntries: cfg.MaxEntries}), now: cfg.Now}, nil
}

// Seen implements ReplayStore.
func (m *MemoryStore) Seen(_ context.Context, key string, expires time.Time) (bool, error) {
	if key == "" {
		return false, errors.New("empty key")
	}
	var seen bool
	m.entries.Update(key, m.now(), func(old time.Time, found bool) (time.Time, time.Time, bool) {
		seen = found
		if found && old.After(expires) {
			return old, old, true
		}
		return expires, expires, true
	})
	return seen, nil
}

// Len returns the number of proofs remembered, expired ones included until
// they are purged.
func (m *MemoryStore) Len() int { return m.entries.Len() }
