package middleware

import (
	"sync"
	"time"
)

// Defaults of VerifiedCacheConfig.
const (
	DefaultVerifiedCacheTTL        = 5 * time.Minute
	DefaultVerifiedCacheMaxEntries = 10000
)

// VerifiedCacheConfig configures the cache of verified JWTs. A backend
// worker presents the same token on every call until it expires; once a
// JWT has passed every check, the same token (byte for byte) maps to its
// Principal until the earlier of its exp (plus leeway) and TTL, so the
// signature is not verified again. Entries are dropped when their signing
// key leaves the issuer's key set. Tokens validated by introspection are
// not cached here (introspect has its own cache).
type VerifiedCacheConfig struct {
	// Disabled turns the cache off: every request verifies its token.
	Disabled bool
	// TTL bounds how long a verified token is served from the cache;
	// default DefaultVerifiedCacheTTL.
	TTL time.Duration
	// MaxEntries bounds the cache; default DefaultVerifiedCacheMaxEntries.
	// Each entry holds its token, so memory is at most MaxEntries times
	// Bearer.MaxLength.
	MaxEntries int
}

// keyPresence is implemented by key sets that can tell whether a key is
// still published (*jwks.Remote, *jwks.Set).
type keyPresence interface {
	HasKey(kid string) bool
}

const verifiedShards = 16

// verifiedCache maps verified tokens to their Principal. The token itself
// is the key: only an identical token hits.
type verifiedCache struct {
	ttl      time.Duration
	maxShard int
	shards   [verifiedShards]verifiedShard
}

type verifiedShard struct {
	mu sync.Mutex
	m  map[string]*verifiedEntry
}

type verifiedEntry struct {
	p       Principal
	expires time.Time
}

func newVerifiedCache(cfg VerifiedCacheConfig) *verifiedCache {
	if cfg.Disabled {
		return nil
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultVerifiedCacheTTL
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultVerifiedCacheMaxEntries
	}
	c := &verifiedCache{ttl: cfg.TTL, maxShard: max(1, cfg.MaxEntries/verifiedShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[string]*verifiedEntry)
	}
	return c
}

// shard picks a shard from the token's last byte: part of its signature,
// which is as good as random.
func (c *verifiedCache) shard(token string) *verifiedShard {
	return &c.shards[token[len(token)-1]%verifiedShards]
}

// get returns a copy of the Principal of a cached token that is still
// within its time and whose key is still published.
func (c *verifiedCache) get(token string, now time.Time) *Principal {
	if token == "" {
		return nil
	}
	sh := c.shard(token)
	sh.mu.Lock()
	e := sh.m[token]
	sh.mu.Unlock()
	if e == nil {
		return nil
	}
	if !now.Before(e.expires) || (e.p.keys != nil && !e.p.keys.HasKey(e.p.keyID)) {
		sh.mu.Lock()
		if sh.m[token] == e {
			delete(sh.m, token)
		}
		sh.mu.Unlock()
		return nil
	}
	p := e.p
	p.cached = true
	return &p
}

// put caches a copy of p until the earlier of expires and the TTL.
func (c *verifiedCache) put(token string, p *Principal, expires, now time.Time) {
	if limit := now.Add(c.ttl); limit.Before(expires) {
		expires = limit
	}
	if !now.Before(expires) {
		return
	}
	e := &verifiedEntry{p: *p, expires: expires}
	sh := c.shard(token)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[token]; !ok && len(sh.m) >= c.maxShard {
		sh.evict(now)
	}
	sh.m[token] = e
}

// evict makes room: expired entries first, else whichever comes first in
// the map's (random) order. It looks at a bounded number of entries.
func (sh *verifiedShard) evict(now time.Time) {
	const scan = 32
	var victim string
	n := 0
	for k, e := range sh.m {
		if !now.Before(e.expires) {
			delete(sh.m, k)
			return
		}
		if n == 0 {
			victim = k
		}
		if n++; n == scan {
			break
		}
	}
	delete(sh.m, victim)
}

func (c *verifiedCache) len() int {
	n := 0
	for i := range c.shards {
		c.shards[i].mu.Lock()
		n += len(c.shards[i].m)
		c.shards[i].mu.Unlock()
	}
	return n
}
