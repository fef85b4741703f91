package core

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/ratelimit"
)

// RateLimitConfig charges every admitted request to its client's
// per-minute limit.
type RateLimitConfig struct {
	// Store decides; default a ratelimit.MemoryStore (one instance). Use a
	// shared store (the nested module ratelimit/redisstore), usually behind
	// a ratelimit.Failover, across replicas.
	Store ratelimit.Store
	// Limits looks up each client's limit (ratelimit.HydraSource reads
	// Hydra's client metadata); nil means Default for everyone.
	Limits ratelimit.Source
	// Default is the limit per minute of clients the source has no value
	// for; zero means unlimited.
	Default int
	// Burst is how many requests may pass at once; zero means each
	// client's per-minute limit.
	Burst int
	// PerSubject charges user tokens to their client and subject together,
	// so one person cannot spend an application's whole quota. M2M tokens
	// are always charged to their client.
	PerSubject bool
}

type limiter struct{ cfg RateLimitConfig }

func newLimiter(cfg *RateLimitConfig) (*limiter, error) {
	if cfg == nil {
		return nil, nil
	}
	c := *cfg
	var errs []error
	if c.Default < 0 {
		errs = append(errs, errors.New("Config.RateLimit.Default must not be negative"))
	}
	if c.Burst < 0 {
		errs = append(errs, errors.New("Config.RateLimit.Burst must not be negative"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if c.Store == nil {
		c.Store = ratelimit.NewMemoryStore(ratelimit.MemoryConfig{})
	}
	return &limiter{cfg: c}, nil
}

// charge spends one request of p's client, after authentication, so a
// forged token never spends a victim's quota.
func (c *Checker) charge(ctx context.Context, cred Credential, p *Principal) Verdict {
	v := Verdict{Principal: p}
	l := c.limiter
	if l == nil {
		return v
	}
	perMinute, ok, err := 0, false, error(nil)
	if l.cfg.Limits != nil {
		perMinute, ok, err = c.lookup(ctx, p)
	}
	if !ok || err != nil {
		perMinute = l.cfg.Default
	}
	if perMinute <= 0 {
		return v // unlimited
	}
	limit := ratelimit.Limit{PerMinute: perMinute, Burst: l.cfg.Burst}
	d, err := l.cfg.Store.Allow(ctx, l.key(p), limit)
	c.obs.RateLimit(ctx, RateLimitDecision{ClientID: p.ClientID, Allowed: err == nil && d.Allowed, Err: err})
	if err != nil {
		retry := 5 * time.Second
		var r *aegis.Refusal
		if errors.As(err, &r) && r.RetryAfter > 0 {
			retry = r.RetryAfter
		}
		return Verdict{Refusal: aegis.Unavailable(aegis.ReasonRateLimitUnavailable, retry, err)}
	}
	v.RateLimit = &d
	if !d.Allowed {
		r := aegis.Refuse(aegis.ReasonRateLimited, nil)
		r.RetryAfter = max(d.RetryAfter, time.Second)
		return Verdict{Refusal: r, RateLimit: &d}
	}
	return v
}

// lookup asks the source for p's limit, observed.
func (c *Checker) lookup(ctx context.Context, p *Principal) (int, bool, error) {
	ctx = c.obs.LimitLookupStart(ctx, p.ClientID)
	start := time.Now()
	perMinute, ok, err := c.limiter.cfg.Limits.Lookup(ctx, ratelimit.Client{ID: p.ClientID, Claim: p.Claim})
	c.obs.LimitLookup(ctx, LimitLookup{ClientID: p.ClientID, Found: ok && err == nil, Duration: time.Since(start), Err: err})
	if err != nil && c.log.Enabled(ctx, slog.LevelWarn) {
		// At most one warning a second: a source that is down fails on
		// every request.
		if ok, held := c.warns.Allow("\x00limit_lookup", c.now()); ok {
			c.log.LogAttrs(ctx, slog.LevelWarn, "aegis: rate limit lookup failed, applying the default",
				slog.String("client_id", p.ClientID), slog.String("error", err.Error()), slog.Int("held_back", held))
		}
	}
	return perMinute, ok, err
}

// key is the store key p is charged to. Keys never collide: a client
// charged alone is keyed by its ID, unless the ID starts with keyMark; every
// other key starts with keyMark, a tag and its fields each prefixed by its
// length in bytes ("~s:5:alice", "~u:7:web-app:5:alice"), so no client ID,
// subject or pair of them spells another's key. Keys are printable when the
// IDs are (Redis keeps them under a prefix).
func (l *limiter) key(p *Principal) string {
	switch {
	case p.ClientID == "":
		// An introspection answer without client_id: its subject pays.
		return structuredKey("s", p.Subject)
	case l.cfg.PerSubject && p.Kind == KindUser:
		return structuredKey("u", p.ClientID, p.Subject)
	case strings.HasPrefix(p.ClientID, keyMark):
		return structuredKey("c", p.ClientID)
	}
	return p.ClientID
}

// keyMark starts every structured rate-limit key.
const keyMark = "~"

func structuredKey(tag string, fields ...string) string {
	n := len(keyMark) + len(tag)
	for _, f := range fields {
		n += len(f) + 22
	}
	b := make([]byte, 0, n)
	b = append(b, keyMark...)
	b = append(b, tag...)
	for _, f := range fields {
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(len(f)), 10)
		b = append(b, ':')
		b = append(b, f...)
	}
	return string(b)
}
