package middleware

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/olympus/aegis/ratelimit"
)

// RateLimitConfig charges every authenticated request to its client's
// per-minute limit.
type RateLimitConfig struct {
	// Store decides; default a ratelimit.MemoryStore (one instance). Use a
	// ratelimit.RedisStore, usually behind a ratelimit.Failover, across
	// replicas.
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

type rateLimiter struct {
	cfg RateLimitConfig
	obs *observer
}

func newRateLimiter(cfg *RateLimitConfig, obs *observer) (*rateLimiter, error) {
	if cfg == nil {
		return nil, nil
	}
	c := *cfg
	if c.Default < 0 || c.Burst < 0 {
		return nil, errors.New("aegis: RateLimit.Default and Burst must not be negative")
	}
	if c.Store == nil {
		c.Store = ratelimit.NewMemoryStore(ratelimit.MemoryConfig{})
	}
	return &rateLimiter{cfg: c, obs: obs}, nil
}

var errRateLimited = &Error{Status: http.StatusTooManyRequests, Reason: "rate_limited",
	Description: "The client's rate limit is exhausted; retry later"}

// charge spends one request of p's client. It writes the rate-limit
// headers and returns a refusal when the request may not pass.
func (l *rateLimiter) charge(w http.ResponseWriter, r *http.Request, p *Principal) *Error {
	perMinute, ok, err := 0, false, error(nil)
	if l.cfg.Limits != nil {
		perMinute, ok, err = l.lookup(r.Context(), p)
	}
	if !ok || err != nil {
		perMinute = l.cfg.Default
	}
	if perMinute <= 0 {
		return nil // unlimited
	}
	limit := ratelimit.Limit{PerMinute: perMinute, Burst: l.cfg.Burst}
	d, err := l.cfg.Store.Allow(r.Context(), l.key(p), limit)
	if l.obs.metrics != nil {
		l.obs.metrics.RateLimit(r.Context(), RateLimitDecision{ClientID: p.ClientID, Allowed: err == nil && d.Allowed, Err: err})
	}
	if err != nil {
		retry := 5 * time.Second
		var u *ratelimit.UnavailableError
		if errors.As(err, &u) && u.RetryAfter > 0 {
			retry = u.RetryAfter
		}
		return &Error{Status: http.StatusServiceUnavailable, Reason: "rate_limit_unavailable",
			Description: "The rate limiter cannot decide now; try again later", RetryAfter: retry, Err: err}
	}
	setRateLimitHeaders(w.Header(), d)
	if !d.Allowed {
		e := errRateLimited.clone()
		e.RetryAfter = max(d.RetryAfter, time.Second)
		return e
	}
	return nil
}

// lookup asks the source for p's limit, in a span when tracing is on.
func (l *rateLimiter) lookup(ctx context.Context, p *Principal) (int, bool, error) {
	ctx, span := l.obs.start(ctx, "aegis.ratelimit.lookup")
	start := time.Now()
	perMinute, ok, err := l.cfg.Limits.Lookup(ctx, ratelimit.Client{ID: p.ClientID, Claim: p.Claim})
	elapsed := time.Since(start)
	end(span, err, attribute.Bool("aegis.limit_found", ok && err == nil))
	if l.obs.metrics != nil {
		l.obs.metrics.LimitLookup(ctx, LimitLookup{ClientID: p.ClientID, Found: ok && err == nil, Duration: elapsed, Err: err})
	}
	if err != nil && l.obs.log.Enabled(ctx, slog.LevelWarn) {
		// At most one warning a second: a source that is down fails on
		// every request.
		if ok, held := l.obs.warns.Allow("\x00limit_lookup", l.obs.now()); ok {
			l.obs.log.LogAttrs(ctx, slog.LevelWarn, "aegis: rate limit lookup failed, applying the default",
				slog.String("client_id", p.ClientID), slog.String("error", err.Error()), slog.Int("held_back", held))
		}
	}
	return perMinute, ok, err
}

func (l *rateLimiter) key(p *Principal) string {
	id := p.ClientID
	if id == "" {
		id = "sub:" + p.Subject
	}
	if l.cfg.PerSubject && p.Kind == KindUser && p.ClientID != "" {
		return id + "\x00" + p.Subject
	}
	return id
}

// setRateLimitHeaders writes the IETF httpapi draft's structured fields
// (RateLimit-Policy, RateLimit) and the customary X-RateLimit-* headers.
// Reset times are delta seconds, rounded up.
func setRateLimitHeaders(h http.Header, d ratelimit.Decision) {
	q := strconv.Itoa(d.Limit.PerMinute)
	remaining := strconv.Itoa(d.Remaining)
	reset := strconv.FormatInt(ceilSeconds(d.Reset), 10)
	h.Set("RateLimit-Policy", `"client";q=`+q+`;w=60`)
	h.Set("RateLimit", `"client";r=`+remaining+`;t=`+reset)
	h.Set("X-RateLimit-Limit", q)
	h.Set("X-RateLimit-Remaining", remaining)
	h.Set("X-RateLimit-Reset", reset)
}

func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}
