package core

import (
	"context"
	"time"

	"github.com/olympus/aegis/internal/cache"

	"github.com/olympus/aegis/jwks"
)

// Defaults of CacheConfig.
const (
	DefaultCacheTTL        = 5 * time.Minute
	DefaultCacheMaxEntries = 10000
)

// CacheConfig configures Cached.
type CacheConfig struct {
	// TTL bounds how long a verified token is served from the cache;
	// default DefaultCacheTTL.
	TTL time.Duration
	// MaxEntries bounds the cache; default DefaultCacheMaxEntries. Each
	// entry holds its token, so memory is at most MaxEntries times the
	// longest token accepted.
	MaxEntries int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Cached wraps v with a cache of verified JWTs. A backend worker presents
// the same token on every call until it expires; once a JWT has passed
// every check, the same token (byte for byte) maps to its Principal until
// the earlier of its exp (plus the validator's leeway) and TTL, so its signature is not verified again.
// An entry is dropped as soon as the very key that verified it (its
// material, not only its kid) leaves the issuer's key set; a hit lets a
// remote key set due for refresh refresh itself in the background, so a
// removal is noticed within the refresh interval even when every request
// is a hit.
//
// Only Principals whose signature a JWT validator of this package checked
// are kept: introspection has its own cache (introspect.CacheConfig), and a
// custom validator's Principals pass through uncached.
func Cached(v Validator, cfg CacheConfig) Validator {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultCacheTTL
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultCacheMaxEntries
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &cached{next: v, ttl: cfg.TTL, now: cfg.Now, entries: cache.New[*Principal](cache.Config{MaxEntries: cfg.MaxEntries})}
}

// cached maps verified tokens to their Principal. The token itself is the
// key: only an identical token hits.
type cached struct {
	next    Validator
	ttl     time.Duration
	now     func() time.Time
	entries *cache.Cache[*Principal]
}

// cachedOf serves token from a verified-token cache inside v (Cached, or
// a combinator holding one on its JWT side), so that a combinator answers a
// cache hit before it parses the token; nil when there is none.
func cachedOf(v Validator, token string) *Principal {
	switch v := v.(type) {
	case *cached:
		return v.get(token)
	case *hybrid:
		return cachedOf(v.jwt, token)
	case *byIssuer:
		return v.cached(token)
	}
	return nil
}

// Validate and validateParsed read the clock once: a miss's entry is
// bounded by the TTL from the lookup's time, microseconds earlier.
func (c *cached) Validate(ctx context.Context, token string) (*Principal, error) {
	now := c.now()
	if p := c.getAt(token, now); p != nil {
		return p, nil
	}
	p, err := validateRaw(ctx, c.next, token)
	if err == nil {
		c.putAt(token, p, now)
	}
	return p, err
}

func (c *cached) validateParsed(ctx context.Context, t *jwks.Token, token string) (*Principal, error) {
	now := c.now()
	if p := c.getAt(token, now); p != nil {
		return p, nil
	}
	var p *Principal
	var err error
	if b, ok := c.next.(builtIn); ok {
		p, err = b.validateParsed(ctx, t, token)
	} else {
		p, err = validateRaw(ctx, c.next, token)
	}
	if err == nil {
		c.putAt(token, p, now)
	}
	return p, err
}

func (c *cached) attach(o *observers) { attachAll(o, c.next) }

func (c *cached) problems(path string) []error {
	return problemsOf(c.next, path+": Cached's validator")
}

func (c *cached) introspection(iss string) *Introspection { return introspectionOf(c.next, iss) }

// get returns a copy of the Principal of a cached token that is still
// within its time and whose key is still published.
func (c *cached) get(token string) *Principal {
	if token == "" {
		return nil
	}
	return c.getAt(token, c.now())
}

// getAt is get at the time now.
func (c *cached) getAt(token string, now time.Time) *Principal {
	if token == "" {
		return nil
	}
	e, ok := c.entries.Get(token, now)
	if !ok {
		return nil
	}
	if !e.jwt.keys.Holds(e.claims.(*jwks.Claims).Key, now) {
		c.entries.Delete(token)
		return nil
	}
	p := allocPrincipal(*e)
	p.cached = true
	return p
}

// putAt caches a copy of p until the earlier of its validity and the TTL
// from now.
func (c *cached) putAt(token string, p *Principal, now time.Time) {
	if p == nil || p.jwt == nil || p.jwt.keys == nil || p.Expiry.IsZero() {
		return
	}
	if _, ok := p.claims.(*jwks.Claims); !ok {
		return
	}
	expires := p.Expiry.Add(p.jwt.leeway) // when the validator would refuse it
	if limit := now.Add(c.ttl); limit.Before(expires) {
		expires = limit
	}
	if !now.Before(expires) {
		return
	}
	e := *p
	e.slot = nil // the entry is never put in a context; nor does it keep a request's
	c.entries.Set(token, &e, expires)
}
