// Package introspect validates opaque access tokens by OAuth 2.0 Token
// Introspection (RFC 7662), with a cache that never outlives a token.
//
// A Client asks the authorization server whether a token is active,
// checks the answer strictly (active must be the JSON value true; exp, nbf,
// iss and aud are checked again locally; token_use must be access_token)
// and caches it under the token's SHA-256, never the token itself. Positive
// answers live at most Cache.TTL and never past the token's exp; inactive
// answers are cached for Cache.NegativeTTL; concurrent requests for the same
// uncached token share one call; the number of calls under way is bounded.
// Any failure to get a trustworthy answer is ErrUnavailable, never a pass.
// Every refusal is an *aegis.Refusal whose cause matches one of the Err
// values; core.NewIntrospection (package
// github.com/olympus/aegis/middleware/core) makes a Client a validator.
package introspect

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/olympus/aegis"

	"github.com/olympus/aegis/internal/audience"
	"github.com/olympus/aegis/internal/b64token"
	"github.com/olympus/aegis/internal/flight"
	"github.com/olympus/aegis/internal/issuerhttp"
	"github.com/olympus/aegis/internal/logthrottle"
	"github.com/olympus/aegis/internal/refusal"
)

// AuthMethod is how the Client authenticates to the introspection endpoint.
type AuthMethod string

// Client authentication methods (RFC 7591 names).
const (
	// AuthBasic sends client_id and client_secret in HTTP Basic auth.
	AuthBasic AuthMethod = "client_secret_basic"
	// AuthPost sends them in the form body.
	AuthPost AuthMethod = "client_secret_post"
	// AuthNone sends no credentials (Ory Hydra's admin port).
	AuthNone AuthMethod = "none"
)

// Defaults for Config's zero values.
const (
	DefaultTimeout          = 5 * time.Second
	DefaultMaxResponseBytes = 64 << 10
	DefaultMaxConcurrent    = 32
	DefaultCacheTTL         = 30 * time.Second
	DefaultNegativeTTL      = 10 * time.Second
	DefaultMaxEntries       = 10000
	// DefaultRetryAfter is the retry hint of an unavailable refusal.
	DefaultRetryAfter = 5 * time.Second
)

// CacheConfig bounds the answer cache.
type CacheConfig struct {
	// TTL is the longest a positive answer is served; default
	// DefaultCacheTTL; negative disables caching of positive answers. A
	// revoked token is refused at the latest TTL after its revocation.
	TTL time.Duration
	// NegativeTTL is how long an inactive answer is served; default
	// DefaultNegativeTTL; negative disables negative caching.
	NegativeTTL time.Duration
	// MaxEntries bounds each of the two caches (active and refused
	// answers); answers used once go first (S3-FIFO). Default
	// DefaultMaxEntries.
	MaxEntries int
	// Grace lets a positive answer be served up to this long after it went
	// stale, while the server is unreachable, never past the token's exp
	// and never after the server has refused the token (any refusal drops
	// the token's positive answer). Zero (the default) disables it.
	Grace time.Duration
}

// Config configures a Client.
type Config struct {
	// Endpoint is the introspection endpoint. When empty it is discovered
	// from Issuer's metadata (introspection_endpoint); Ory Hydra publishes
	// none, so set it for Hydra ({admin}/admin/oauth2/introspect).
	Endpoint string
	// Issuer is the authorization server. An answer naming another iss is
	// refused.
	Issuer string
	// Audience must be among the answer's aud values, unless AnyAudience.
	Audience string
	// AnyAudience skips the audience check.
	AnyAudience bool
	// CanonicalAudience compares URL audiences in canonical form (see
	// jwks.ValidatorConfig.CanonicalAudience); off by default.
	CanonicalAudience bool
	// Auth is the client authentication method; default AuthBasic when
	// ClientID is set, else AuthNone.
	Auth AuthMethod
	// ClientID and ClientSecret authenticate Aegis to the endpoint.
	ClientID, ClientSecret string
	// Authenticate, when set, prepares each request instead of Auth
	// (a bearer header, private_key_jwt, mTLS headers…).
	Authenticate func(req *http.Request) error
	// HTTPClient makes the calls. Whatever its own policy, redirects are
	// followed only within the same origin.
	HTTPClient *http.Client
	// AllowInsecureHTTP permits http:// beyond loopback.
	AllowInsecureHTTP bool
	// Timeout bounds each call, including the wait for a free slot.
	Timeout time.Duration
	// MaxResponseBytes caps each answer's body.
	MaxResponseBytes int64
	// MaxConcurrent bounds the calls under way at once.
	MaxConcurrent int
	// MaxTokenLength bounds tokens; longer ones are refused with no call.
	MaxTokenLength int
	// Leeway is the clock skew tolerated on exp and nbf; zero means
	// aegis.DefaultLeeway, negative none, at most aegis.MaxLeeway.
	Leeway time.Duration
	// Cache bounds the answer cache.
	Cache CacheConfig
	// Logger receives failures; default slog.Default(). Tokens are never
	// logged.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Observer, when set, receives the cache lookups and the calls, for
	// metrics and tracing.
	Observer Observer
	// Shared, when set, is a cache of answers shared with the other
	// replicas of the API (see SharedCache); the local cache stays in
	// front of it, with the same TTL rules.
	Shared SharedCache
}

// Observer receives what a Client does: a core.Observer (package
// github.com/olympus/aegis/middleware/core) is one. Its methods must be
// safe for concurrent use and return quickly.
type Observer interface {
	// IntrospectionCache is called for every token that passes the syntax
	// check, hit or miss.
	IntrospectionCache(ctx context.Context, l aegis.IntrospectionCacheLookup)
	// IntrospectionCallStart is called before each call to the endpoint,
	// with the context of the request that caused it; the context it
	// returns carries the call, so a span started there is its parent.
	IntrospectionCallStart(ctx context.Context, issuer string) context.Context
	// IntrospectionCall is called when the call ends, with the context
	// IntrospectionCallStart returned.
	IntrospectionCall(ctx context.Context, c aegis.IntrospectionCall)
	// IntrospectionSharedCache is called for each use of Config.Shared.
	IntrospectionSharedCache(ctx context.Context, s aegis.IntrospectionSharedCache)
}

// Client validates tokens by introspection. It is safe for concurrent use.
type Client struct {
	cfg       Config
	client    *http.Client
	log       *slog.Logger
	leeway    time.Duration
	cache     *cache // active answers
	denied    *cache // refusals, apart so that random tokens cannot flush active answers
	flights   flight.Group[*Result]
	discovery flight.Group[string]
	slots     chan struct{}
	calls     atomic.Int64
	// logs lets one record a minute through for failures that would
	// otherwise be logged on every call.
	logs logthrottle.Limiter
	// dropGen counts drops: a call begun before one caches nothing.
	dropGen atomic.Uint64
	// sharedDown is set while Config.Shared fails.
	sharedDown atomic.Bool

	mu             sync.Mutex
	endpoint       string
	discoveryAfter time.Time
	discoveryErr   error
}

// New checks cfg and returns a Client. It makes no request.
func New(cfg Config) (*Client, error) {
	if cfg.Endpoint == "" && cfg.Issuer == "" {
		return nil, errors.New("introspect: Config needs Endpoint or Issuer")
	}
	if cfg.Audience == "" && !cfg.AnyAudience {
		return nil, errors.New("introspect: Config.Audience is required (or set AnyAudience)")
	}
	if cfg.Endpoint != "" {
		if err := issuerhttp.CheckURL(cfg.Endpoint, cfg.AllowInsecureHTTP); err != nil {
			return nil, fmt.Errorf("introspect: %w", err)
		}
	}
	if cfg.Auth == "" {
		cfg.Auth = AuthNone
		if cfg.ClientID != "" {
			cfg.Auth = AuthBasic
		}
	}
	switch cfg.Auth {
	case AuthNone:
	case AuthBasic, AuthPost:
		if cfg.ClientID == "" {
			return nil, fmt.Errorf("introspect: auth %s needs ClientID", cfg.Auth)
		}
	default:
		return nil, fmt.Errorf("introspect: unknown auth method %q", cfg.Auth)
	}
	positive(&cfg.Timeout, DefaultTimeout)
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.MaxTokenLength <= 0 {
		cfg.MaxTokenLength = aegis.DefaultMaxTokenLength
	}
	if cfg.Cache.TTL == 0 {
		cfg.Cache.TTL = DefaultCacheTTL
	}
	if cfg.Cache.NegativeTTL == 0 {
		cfg.Cache.NegativeTTL = DefaultNegativeTTL
	}
	if cfg.Cache.MaxEntries <= 0 {
		cfg.Cache.MaxEntries = DefaultMaxEntries
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Client{
		cfg:      cfg,
		client:   issuerhttp.Harden(cfg.HTTPClient),
		log:      cfg.Logger,
		cache:    newCache(cfg.Cache.MaxEntries),
		denied:   newCache(cfg.Cache.MaxEntries),
		slots:    make(chan struct{}, cfg.MaxConcurrent),
		endpoint: cfg.Endpoint,
		logs:     logthrottle.Limiter{Interval: time.Minute},
	}
	switch {
	case cfg.Leeway == 0:
		c.leeway = aegis.DefaultLeeway
	case cfg.Leeway > aegis.MaxLeeway:
		return nil, fmt.Errorf("introspect: leeway %v is over the maximum %v", cfg.Leeway, aegis.MaxLeeway)
	case cfg.Leeway > 0:
		c.leeway = cfg.Leeway
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if cfg.Shared != nil {
		// The Client watches for as long as the shared cache lives.
		cfg.Shared.Watch(c.dropLocal)
	}
	return c, nil
}

func positive(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// Introspect returns the server's description of an active token, from the
// cache when it can. Refusals wrap ErrInactive, ErrExpired and the other
// reasons of this package; ErrUnavailable means no trustworthy answer could
// be had. A token that fails the syntax check never causes a call.
func (c *Client) Introspect(ctx context.Context, token string) (*Result, error) {
	if len(token) > c.cfg.MaxTokenLength || !b64token.Valid(token) {
		return nil, refuse(ErrMalformed, "not a bearer token")
	}
	key := cacheKey(sha256.Sum256([]byte(token)))
	now := c.cfg.Now()
	if e, ok := c.cache.get(key, now); ok && now.Before(e.fresh) {
		c.cacheLookup(ctx, true)
		if err := c.check(e.res, now); err != nil {
			return nil, err
		}
		return e.res, nil
	}
	if e, ok := c.denied.get(key, now); ok {
		c.cacheLookup(ctx, true)
		return nil, e.err
	}
	c.cacheLookup(ctx, false)
	res, err := c.flights.Do(ctx, string(key[:]), func(ctx context.Context) (*Result, error) {
		// A call that ended between the lookup above and this flight may
		// have answered already: concurrent requests share one call.
		now := c.cfg.Now()
		if e, ok := c.cache.get(key, now); ok && now.Before(e.fresh) {
			if err := c.check(e.res, now); err != nil {
				return nil, err
			}
			return e.res, nil
		}
		if e, ok := c.denied.get(key, now); ok {
			return nil, e.err
		}
		return c.introspect(ctx, token, key)
	})
	if errors.Is(err, flight.ErrPanicked) {
		return nil, unavailable(fmt.Errorf("introspection %w", err))
	}
	return res, err
}

func (c *Client) cacheLookup(ctx context.Context, hit bool) {
	if c.cfg.Observer != nil {
		c.cfg.Observer.IntrospectionCache(ctx, aegis.IntrospectionCacheLookup{Issuer: c.cfg.Issuer, Hit: hit})
	}
}

// observedCall is call, observed.
func (c *Client) observedCall(ctx context.Context, token string) (*Result, []byte, error) {
	if c.cfg.Observer == nil {
		return c.call(ctx, token)
	}
	ctx = c.cfg.Observer.IntrospectionCallStart(ctx, c.cfg.Issuer)
	start := time.Now()
	res, body, err := c.call(ctx, token)
	call := aegis.IntrospectionCall{Issuer: c.cfg.Issuer, Duration: time.Since(start), Active: err == nil}
	if err != nil && !errors.Is(err, ErrInactive) {
		call.Err = err
	}
	c.cfg.Observer.IntrospectionCall(ctx, call)
	return res, body, err
}

// introspect asks the shared cache, if any, then the server, and caches
// what it learns.
func (c *Client) introspect(ctx context.Context, token string, key cacheKey) (*Result, error) {
	gen := c.dropGen.Load()
	shared := SharedEntry{}
	sharedOK := false
	if c.cfg.Shared != nil {
		if shared, sharedOK = c.sharedGet(ctx, key); sharedOK && shared.Answer != nil {
			if res, ok, err := c.fromShared(key, shared, gen); ok {
				return res, err
			}
		}
	}
	res, body, err := c.observedCall(ctx, token)
	now := c.cfg.Now()
	switch {
	case errors.Is(err, ErrUnavailable):
		if e, ok := c.cache.get(key, now); ok && e.res != nil && now.Before(e.graceUntil) {
			if c.check(e.res, now) == nil {
				if ok, held := c.logs.Allow("grace", now); ok {
					c.log.LogAttrs(ctx, slog.LevelWarn, "introspect: server unavailable, serving cached answers within their grace window",
						slog.String("client_id", e.res.ClientID), slog.String("error", err.Error()), slog.Int("held_back", held))
				}
				return e.res, nil
			}
		}
		return nil, err
	case err == nil:
		err = c.check(res, now)
	}
	if err != nil {
		c.refusedFor(key, err, now, c.cfg.Cache.NegativeTTL, gen)
		if sharedOK && c.cfg.Cache.NegativeTTL > 0 {
			c.sharedSet(ctx, key, body, res, c.cfg.Cache.NegativeTTL, shared.Gen)
		}
		return nil, err
	}
	fresh := c.rememberActive(key, res, now, c.cfg.Cache.TTL, gen)
	if sharedOK && c.cfg.Cache.TTL > 0 {
		c.sharedSet(ctx, key, body, res, fresh.Sub(now), shared.Gen)
	}
	return res, nil
}

// rememberActive caches an active answer for ttl, never past the token's
// exp, unless a drop has happened since gen; it returns when the answer
// stops being fresh.
func (c *Client) rememberActive(key cacheKey, res *Result, now time.Time, ttl time.Duration, gen uint64) time.Time {
	fresh := now.Add(ttl)
	grace := fresh.Add(c.cfg.Cache.Grace)
	if !res.Expiry.IsZero() {
		fresh = minTime(fresh, res.Expiry)
		grace = minTime(grace, res.Expiry)
	}
	if c.dropGen.Load() == gen {
		c.remember(entry{key: key, res: res, fresh: fresh, graceUntil: grace})
		if c.dropGen.Load() != gen {
			// A drop ran between the check and the store.
			c.cache.remove(key)
		}
	}
	return fresh
}

// refusedFor records that the server refused the token (or gave an answer
// the local checks refuse), for ttl unless a drop has happened since gen:
// the positive answer cached for it, fresh or stale, is dropped either
// way, so that no later outage serves it from grace.
func (c *Client) refusedFor(key cacheKey, err error, now time.Time, ttl time.Duration, gen uint64) {
	c.cache.remove(key)
	if c.dropGen.Load() == gen {
		c.remember(entry{key: key, err: err, fresh: now.Add(ttl)})
		if c.dropGen.Load() != gen {
			c.denied.remove(key)
		}
	}
}

func (c *Client) remember(e entry) {
	switch {
	case e.res != nil && c.cfg.Cache.TTL >= 0:
		c.cache.put(e)
	case e.err != nil && c.cfg.Cache.NegativeTTL >= 0:
		c.denied.put(e)
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// check applies the local checks to an active answer (RFC 7662 §4).
func (c *Client) check(r *Result, now time.Time) error {
	if r.TokenUse != "" && r.TokenUse != "access_token" {
		return refuse(ErrTokenUse, "token_use is not access_token")
	}
	if r.Issuer != "" && c.cfg.Issuer != "" && r.Issuer != c.cfg.Issuer {
		return refuse(ErrIssuer, refusal.Mismatch("iss", []string{r.Issuer}, c.cfg.Issuer))
	}
	if !r.Expiry.IsZero() && !now.Before(r.Expiry.Add(c.leeway)) {
		return refuse(ErrExpired, "exp is not in the future")
	}
	if !r.NotBefore.IsZero() && now.Add(c.leeway).Before(r.NotBefore) {
		return refuse(ErrNotYetValid, "nbf is in the future")
	}
	if !c.cfg.AnyAudience && !audience.Contains(r.Audience, c.cfg.Audience, c.cfg.CanonicalAudience) {
		return refuse(ErrAudience, refusal.Mismatch("aud", r.Audience, c.cfg.Audience))
	}
	if r.Subject == "" {
		return refuse(ErrClaims, "sub is missing")
	}
	return nil
}

// call sends one introspection request. It returns the answer's body
// whenever the server gave an answer (active or not, or refused by the
// claims), so that it can be shared.
func (c *Client) call(ctx context.Context, token string) (*Result, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	endpoint, err := c.endpointURL(ctx)
	if err != nil {
		return nil, nil, unavailable(err)
	}
	select {
	case c.slots <- struct{}{}:
		defer func() { <-c.slots }()
	case <-ctx.Done():
		return nil, nil, unavailable(fmt.Errorf("too many introspection calls under way: %w", ctx.Err()))
	}
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	if c.cfg.Authenticate == nil && c.cfg.Auth == AuthPost {
		form.Set("client_id", c.cfg.ClientID)
		form.Set("client_secret", c.cfg.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, nil, unavailable(issuerhttp.RedactError(err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	switch {
	case c.cfg.Authenticate != nil:
		if err := c.cfg.Authenticate(req); err != nil {
			return nil, nil, unavailable(fmt.Errorf("authenticating the request: %w", err))
		}
	case c.cfg.Auth == AuthBasic:
		// RFC 6749 §2.3.1: both are form-encoded before Basic encoding.
		req.SetBasicAuth(url.QueryEscape(c.cfg.ClientID), url.QueryEscape(c.cfg.ClientSecret))
	}
	c.calls.Add(1)
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, nil, unavailable(fmt.Errorf("POST %s: %w", issuerhttp.Redact(endpoint), scrub(issuerhttp.RedactError(err), token)))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		if ok, held := c.logs.Allow("credentials", c.cfg.Now()); ok {
			c.log.LogAttrs(ctx, slog.LevelError, "introspect: the server refused Aegis's client credentials",
				slog.String("endpoint", issuerhttp.Redact(endpoint)), slog.Int("status", resp.StatusCode), slog.String("client_id", c.cfg.ClientID),
				slog.Int("held_back", held))
		}
		return nil, nil, unavailable(ErrCredentials)
	case resp.StatusCode != http.StatusOK:
		return nil, nil, unavailable(fmt.Errorf("POST %s: status %d", issuerhttp.Redact(endpoint), resp.StatusCode))
	}
	body, err := issuerhttp.ReadCapped(resp.Body, c.cfg.MaxResponseBytes)
	if err != nil {
		return nil, nil, unavailable(fmt.Errorf("POST %s: %w", issuerhttp.Redact(endpoint), err))
	}
	res, err := interpret(body)
	if errors.Is(err, ErrUnavailable) {
		return nil, nil, err
	}
	return res, body, err
}

// interpret reads an answer: an active token's description, or the
// refusal the answer means; ErrUnavailable when it cannot be trusted to
// mean anything.
func interpret(body []byte) (*Result, error) {
	res, err := parseAnswer(body)
	switch {
	case errors.Is(err, ErrInactive):
		return nil, refuse(ErrInactive, "the server says the token is not active")
	case errors.Is(err, ErrClaims):
		// A NumericDate no real token has: the token's claims are invalid.
		var claims *aegis.Refusal
		if errors.As(err, &claims) {
			return nil, claims
		}
		return nil, err
	case err != nil:
		return nil, unavailable(err)
	}
	return res, nil
}

// scrub removes the token from an error text, should a transport ever
// include the request body in one.
func scrub(err error, token string) error {
	if strings.Contains(err.Error(), token) {
		return errors.New(strings.ReplaceAll(err.Error(), token, "[token]"))
	}
	return err
}

// discoveryCooldown spaces out failed discoveries.
const discoveryCooldown = 10 * time.Second

// endpointURL returns the endpoint, discovering it at most once at a time
// and at most once per cooldown after a failure.
func (c *Client) endpointURL(ctx context.Context) (string, error) {
	c.mu.Lock()
	endpoint := c.endpoint
	c.mu.Unlock()
	if endpoint != "" {
		return endpoint, nil
	}
	v, err := c.discovery.Do(ctx, "discovery", c.discover)
	if errors.Is(err, flight.ErrPanicked) {
		return "", unavailable(fmt.Errorf("introspection discovery %w", err))
	}
	return v, err
}

func (c *Client) discover(ctx context.Context) (string, error) {
	c.mu.Lock()
	endpoint, after, last := c.endpoint, c.discoveryAfter, c.discoveryErr
	c.mu.Unlock()
	if endpoint != "" {
		return endpoint, nil
	}
	if c.cfg.Now().Before(after) {
		return "", last
	}
	meta, err := issuerhttp.Discover(ctx, c.client, c.cfg.Issuer, c.cfg.Timeout, c.cfg.MaxResponseBytes)
	if err == nil && meta.IntrospectionEndpoint == "" {
		err = fmt.Errorf("the metadata of %s names no introspection_endpoint: configure it", issuerhttp.Redact(c.cfg.Issuer))
	}
	if err == nil {
		err = issuerhttp.CheckURL(meta.IntrospectionEndpoint, c.cfg.AllowInsecureHTTP)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.discoveryAfter, c.discoveryErr = c.cfg.Now().Add(discoveryCooldown), err
		c.log.LogAttrs(ctx, slog.LevelError, "introspect: discovery failed", slog.String("issuer", issuerhttp.Redact(c.cfg.Issuer)), slog.String("error", err.Error()))
		return "", err
	}
	c.endpoint = meta.IntrospectionEndpoint
	return c.endpoint, nil
}
