package jwks

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/internal/flight"
	"github.com/olympus/aegis/internal/issuerhttp"
	"github.com/olympus/aegis/internal/logthrottle"
)

// Defaults for Config's zero values.
const (
	DefaultRefreshInterval    = 5 * time.Minute
	DefaultMinRefreshInterval = time.Minute
	DefaultMaxRefreshInterval = time.Hour
	DefaultRefetchCooldown    = 10 * time.Second
	DefaultFetchTimeout       = 10 * time.Second
	DefaultMaxResponseBytes   = 1 << 20
)

// Config configures a Remote key set. Either URL or Issuer is required.
type Config struct {
	// Issuer is the authorization server's issuer identifier. When URL is
	// empty the key set's address is discovered from the issuer's metadata:
	// {Issuer}/.well-known/openid-configuration, then RFC 8414's
	// /.well-known/oauth-authorization-server. The metadata's issuer must
	// equal Issuer exactly.
	Issuer string
	// URL is the jwks_uri. Setting it skips discovery.
	URL string
	// HTTPClient makes the requests. Whatever its own policy, redirects are
	// followed only within the same origin; every request is bounded by
	// FetchTimeout.
	HTTPClient *http.Client
	// RefreshInterval is how long keys are used before they are fetched
	// again in the background, when the answer names no max-age.
	RefreshInterval time.Duration
	// MinRefreshInterval and MaxRefreshInterval bound the interval taken
	// from Cache-Control. "no-store", "no-cache" and "max-age=0" (Ory Hydra
	// sends "no-store") mean the minimum.
	MinRefreshInterval time.Duration
	MaxRefreshInterval time.Duration
	// RefetchCooldown is the least time between two fetches caused by
	// tokens whose kid is unknown, unless several requests name the same
	// kid: that kid may cause one fetch a second (see LookupKeys). It is
	// also the wait after a failed fetch while no keys are cached.
	// Concurrent requests share one fetch.
	RefetchCooldown time.Duration
	// FetchTimeout bounds each request (discovery or key set).
	FetchTimeout time.Duration
	// MaxResponseBytes caps each answer's body.
	MaxResponseBytes int64
	// AllowInsecureHTTP permits http:// addresses on hosts other than
	// loopback. Without it only https:// and http://localhost or a loopback
	// IP are accepted.
	AllowInsecureHTTP bool
	// Logger receives fetch failures and rejected keys; default
	// slog.Default(). Tokens are never logged.
	Logger *slog.Logger
	// Now returns the current time; default time.Now.
	Now func() time.Time
	// Observer, when set, receives each fetch, for metrics and tracing.
	Observer Observer
}

// Observer receives each fetch of the key set (discovery included), in the
// goroutine that fetches: a core.Observer (package
// github.com/olympus/aegis/middleware/core) is one. Its methods must be
// safe for concurrent use and return quickly.
type Observer interface {
	// KeySetFetchStart is called as a fetch begins, with the context of
	// the request that caused it (a background context for a scheduled
	// refresh); the context it returns carries the fetch, so a span
	// started there is its parent.
	KeySetFetchStart(ctx context.Context, issuer string) context.Context
	// KeySetFetch is called when the fetch ends (the keys it brought are
	// then the ones held), with the context KeySetFetchStart returned.
	KeySetFetch(ctx context.Context, f aegis.KeySetFetch)
}

// Remote is the key set of one issuer, fetched over HTTP and kept fresh.
// It fetches nothing until first used; then keys are refreshed in the
// background when their interval has passed, a kid that is not known causes
// a shared refetch as LookupKeys describes, and a failed fetch keeps the
// last good keys. It is safe for concurrent use.
type Remote struct {
	cfg    Config
	client *http.Client
	log    *slog.Logger

	snap       atomic.Pointer[snapshot]
	fetches    flight.Group[*snapshot]
	refreshing atomic.Bool
	kidWaiters atomic.Int32

	mu          sync.Mutex
	jwksURL     string
	lastFailure time.Time
	lastErr     error
	// The unknown-kid policy's state (unknownkid.go).
	kids         kidSightings
	kidFetch     *kidFetch
	lastForced   time.Time // last kid fetch the cooldown allowed
	lastKidFetch time.Time // last kid fetch begun
	fetchesBegun uint64
	// rejected lets each rejected key be warned about once.
	rejected logthrottle.Limiter
}

type snapshot struct {
	set         *Set
	seq         uint64 // the fetch's number, in the order fetches began
	fetched     time.Time
	nextRefresh time.Time
}

// NewRemote checks cfg and returns a Remote. It makes no request.
func NewRemote(cfg Config) (*Remote, error) {
	if cfg.URL == "" && cfg.Issuer == "" {
		return nil, errors.New("jwks: Config needs URL or Issuer")
	}
	for _, u := range []string{cfg.URL, cfg.Issuer} {
		if u == "" {
			continue
		}
		if err := issuerhttp.CheckURL(u, cfg.AllowInsecureHTTP); err != nil {
			return nil, fmt.Errorf("jwks: %w", err)
		}
	}
	setDefault(&cfg.RefreshInterval, DefaultRefreshInterval)
	setDefault(&cfg.MinRefreshInterval, DefaultMinRefreshInterval)
	setDefault(&cfg.MaxRefreshInterval, DefaultMaxRefreshInterval)
	setDefault(&cfg.RefetchCooldown, DefaultRefetchCooldown)
	setDefault(&cfg.FetchTimeout, DefaultFetchTimeout)
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if cfg.MinRefreshInterval > cfg.MaxRefreshInterval {
		return nil, errors.New("jwks: MinRefreshInterval is over MaxRefreshInterval")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Remote{cfg: cfg, client: issuerhttp.Harden(cfg.HTTPClient), log: cfg.Logger, jwksURL: cfg.URL, rejected: logthrottle.Limiter{MaxKeys: 1000}}
	r.kids.seed = maphash.MakeSeed()
	if r.log == nil {
		r.log = slog.Default()
	}
	return r, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// LookupKeys implements KeySource. The first call fetches the keys. A kid
// not in the cached set causes a refetch unless one happened within
// RefetchCooldown; within it, a kid named by several requests causes at
// most one refetch a second, which they wait for, while a kid named once is
// refused at once, so that a flood of made-up kids neither costs the issuer
// more than a few fetches a minute nor delays a new key by more than a
// second. A kid still unknown while the last fetch failed gives the
// keys_unavailable *aegis.Refusal: it may be the issuer's new key.
func (r *Remote) LookupKeys(ctx context.Context, kid string) ([]Key, error) {
	s := r.snap.Load()
	if s == nil {
		var err error
		if s, err = r.first(ctx); err != nil {
			return nil, err
		}
	} else if !r.cfg.Now().Before(s.nextRefresh) {
		r.refreshInBackground()
	}
	if keys := s.set.Lookup(kid); len(keys) > 0 || kid == "" {
		return keys, nil
	}
	return r.lookupUnknown(ctx, kid)
}

// unavailable is the keys_unavailable refusal when the last fetch failed,
// else nil.
func (r *Remote) unavailable() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lastFailure.IsZero() {
		return nil
	}
	retry := r.lastFailure.Add(r.cfg.RefetchCooldown).Sub(r.cfg.Now())
	return unavailable(max(retry, time.Second), r.lastErr)
}

// Refresh fetches the key set now, sharing a fetch already under way. On
// failure the keys already held stay in use.
func (r *Remote) Refresh(ctx context.Context) error {
	_, err := r.fetchShared(ctx)
	return err
}

// Keys returns the keys currently held, without fetching.
func (r *Remote) Keys() []Key {
	if s := r.snap.Load(); s != nil {
		return s.set.Keys()
	}
	return nil
}

func (r *Remote) first(ctx context.Context) (*snapshot, error) {
	r.mu.Lock()
	if !r.lastFailure.IsZero() {
		if wait := r.lastFailure.Add(r.cfg.RefetchCooldown).Sub(r.cfg.Now()); wait > 0 {
			err := r.lastErr
			r.mu.Unlock()
			if s := r.snap.Load(); s != nil {
				return s, nil
			}
			return nil, unavailable(wait, err)
		}
	}
	r.mu.Unlock()
	s, err := r.fetchShared(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, unavailable(r.cfg.RefetchCooldown, err)
	}
	return s, nil
}

func (r *Remote) refreshInBackground() {
	if !r.refreshing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer r.refreshing.Store(false)
		_, _ = r.fetchShared(context.Background())
	}()
}

// fetchShared runs one fetch for all concurrent callers; each caller stops
// waiting when its own context ends, without cancelling the fetch.
func (r *Remote) fetchShared(ctx context.Context) (*snapshot, error) {
	s, err := r.fetches.Do(ctx, "fetch", r.fetch)
	if errors.Is(err, flight.ErrPanicked) {
		err = fmt.Errorf("jwks: fetch %w", err)
	}
	return s, err
}

func (r *Remote) fetch(ctx context.Context) (*snapshot, error) {
	if r.cfg.Observer != nil {
		ctx = r.cfg.Observer.KeySetFetchStart(ctx, r.cfg.Issuer)
	}
	r.mu.Lock()
	r.fetchesBegun++
	seq := r.fetchesBegun
	r.kids.fetchBegins()
	r.mu.Unlock()
	start := time.Now()
	s, err := r.fetchOnce(ctx)
	if r.cfg.Observer != nil {
		// Reported once the keys fetched are the ones held.
		f := aegis.KeySetFetch{Issuer: r.cfg.Issuer, URL: r.currentURL(), Duration: time.Since(start), Err: err}
		if s != nil {
			f.Keys = s.set.Len()
		}
		defer r.cfg.Observer.KeySetFetch(ctx, f)
	}
	now := r.cfg.Now()
	if err != nil {
		r.mu.Lock()
		r.lastFailure, r.lastErr = now, err
		r.kids.fetchEnds(false)
		r.mu.Unlock()
		if old := r.snap.Load(); old != nil {
			// Keep the last good keys; try again after the floor interval.
			r.snap.Store(&snapshot{set: old.set, seq: old.seq, fetched: old.fetched, nextRefresh: now.Add(r.cfg.MinRefreshInterval)})
			r.log.LogAttrs(ctx, slog.LevelWarn, "jwks: refresh failed, keeping the last good keys",
				slog.String("url", r.currentURL()), slog.Int("keys", old.set.Len()), slog.String("error", err.Error()))
		} else {
			r.log.LogAttrs(ctx, slog.LevelError, "jwks: fetch failed and no keys are cached",
				slog.String("url", r.currentURL()), slog.String("error", err.Error()))
		}
		return nil, err
	}
	s.seq = seq
	r.mu.Lock()
	r.lastFailure, r.lastErr = time.Time{}, nil
	r.snap.Store(s)
	r.kids.fetchEnds(true)
	r.mu.Unlock()
	return s, nil
}

// currentURL is the key set's address (the issuer's before discovery),
// redacted for logs and hooks (issuerhttp.Redact).
func (r *Remote) currentURL() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.jwksURL != "" {
		return issuerhttp.Redact(r.jwksURL)
	}
	return issuerhttp.Redact(r.cfg.Issuer)
}

func (r *Remote) fetchOnce(ctx context.Context) (*snapshot, error) {
	u, err := r.keySetURL(ctx)
	if err != nil {
		return nil, err
	}
	body, header, err := r.get(ctx, u)
	if err != nil {
		return nil, err
	}
	set, rejected, err := ParseSet(body)
	if err != nil {
		return nil, err
	}
	for _, rej := range rejected {
		r.warnOnce(ctx, rej)
	}
	if set.Len() == 0 {
		return nil, errors.New("jwks: key set has no usable key")
	}
	now := r.cfg.Now()
	return &snapshot{set: set, fetched: now, nextRefresh: now.Add(r.interval(header.Get("Cache-Control")))}, nil
}

func (r *Remote) warnOnce(ctx context.Context, rej Rejected) {
	level := slog.LevelDebug
	if first, _ := r.rejected.Allow(rej.ID+"\x00"+rej.Reason, r.cfg.Now()); first {
		level = slog.LevelWarn
	}
	r.log.LogAttrs(ctx, level, "jwks: key left out of the key set", slog.String("kid", clip(rej.ID)), slog.String("reason", rej.Reason))
}

// interval derives the refresh interval from a Cache-Control header.
func (r *Remote) interval(cacheControl string) time.Duration {
	d := r.cfg.RefreshInterval
	for _, directive := range strings.Split(cacheControl, ",") {
		directive = strings.ToLower(strings.TrimSpace(directive))
		switch {
		case directive == "no-store" || directive == "no-cache":
			return r.cfg.MinRefreshInterval
		case strings.HasPrefix(directive, "max-age="):
			if n, err := strconv.ParseInt(strings.TrimPrefix(directive, "max-age="), 10, 64); err == nil && n >= 0 {
				d = time.Duration(min(n, int64(r.cfg.MaxRefreshInterval/time.Second))) * time.Second
			}
		}
	}
	return min(max(d, r.cfg.MinRefreshInterval), r.cfg.MaxRefreshInterval)
}

func (r *Remote) keySetURL(ctx context.Context) (string, error) {
	r.mu.Lock()
	u := r.jwksURL
	r.mu.Unlock()
	if u != "" {
		return u, nil
	}
	u, err := r.discover(ctx)
	if err != nil {
		return "", err
	}
	r.mu.Lock()
	r.jwksURL = u
	r.mu.Unlock()
	return u, nil
}

func (r *Remote) discover(ctx context.Context) (string, error) {
	meta, err := issuerhttp.Discover(ctx, r.client, r.cfg.Issuer, r.cfg.FetchTimeout, r.cfg.MaxResponseBytes)
	if err != nil {
		return "", fmt.Errorf("jwks: %w", err)
	}
	if meta.JWKSURI == "" {
		return "", fmt.Errorf("jwks: metadata of %s has no jwks_uri", issuerhttp.Redact(r.cfg.Issuer))
	}
	if err := issuerhttp.CheckURL(meta.JWKSURI, r.cfg.AllowInsecureHTTP); err != nil {
		return "", fmt.Errorf("jwks: jwks_uri: %w", err)
	}
	return meta.JWKSURI, nil
}

func (r *Remote) get(ctx context.Context, u string) ([]byte, http.Header, error) {
	body, h, err := issuerhttp.Get(ctx, r.client, u, r.cfg.FetchTimeout, r.cfg.MaxResponseBytes, "application/jwk-set+json, application/json")
	if err != nil {
		return nil, nil, fmt.Errorf("jwks: %w", err)
	}
	return body, h, nil
}

// HasKey reports whether the keys currently held include one with this
// kid, without fetching. A cache of verified tokens uses it to drop tokens
// whose key has left the issuer's key set.
func (r *Remote) HasKey(kid string) bool {
	s := r.snap.Load()
	return s != nil && s.set.HasKey(kid)
}

// Holds reports whether the keys held now include k itself (see
// Set.Holds). Keys due for refresh at now are refreshed in the background,
// as a lookup would: a cache of verified tokens asking on every hit thus
// notices a key's removal within the refresh interval, though it never
// looks keys up.
func (r *Remote) Holds(k Key, now time.Time) bool {
	s := r.snap.Load()
	if s == nil {
		return false
	}
	if !now.Before(s.nextRefresh) {
		r.refreshInBackground()
	}
	return s.set.Holds(k, now)
}
