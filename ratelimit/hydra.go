package ratelimit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/olympus/aegis/internal/cache"
	"github.com/olympus/aegis/internal/flight"
	"github.com/olympus/aegis/internal/issuerhttp"
	"github.com/olympus/aegis/internal/strictjson"
)

// Defaults of HydraConfig.
const (
	// DefaultHydraTTL is how long a looked-up value is served without a
	// new request.
	DefaultHydraTTL = 60 * time.Second
	// DefaultHydraErrorTTL is how long a failed request is remembered
	// before the next one for the same client (at most the TTL).
	DefaultHydraErrorTTL = 5 * time.Second
	// DefaultHydraTimeout bounds each request.
	DefaultHydraTimeout = 5 * time.Second
	// DefaultHydraMaxResponseBytes caps each answer's body.
	DefaultHydraMaxResponseBytes = 256 << 10
	// DefaultHydraField is the metadata member holding the limit.
	DefaultHydraField = "rate_limit_per_minute"
	// DefaultHydraMaxEntries bounds the cache.
	DefaultHydraMaxEntries = 100_000
)

// HydraConfig configures a HydraSource.
type HydraConfig struct {
	// AdminURL is Hydra's admin base URL, such as http://127.0.0.1:4445
	// (required). It must be https, or http on a loopback host unless
	// AllowInsecureHTTP is set. A path prefix is kept; a query is refused.
	AdminURL string
	// AllowInsecureHTTP permits http:// beyond loopback. Hydra's admin API
	// has no authentication of its own: keep it off public networks.
	AllowInsecureHTTP bool
	// HTTPClient makes the requests; default a new client. Whatever its own
	// policy, redirects are followed only within the same origin. Put any
	// authentication a proxy in front of Hydra needs in its Transport.
	HTTPClient *http.Client
	// TTL is how long a looked-up value is served without a new request;
	// zero means DefaultHydraTTL.
	TTL time.Duration
	// NegativeTTL is how long an unknown client (404) is remembered; zero
	// means TTL.
	NegativeTTL time.Duration
	// ErrorTTL is how long, after a failed request, a client's last known
	// value (or, without one, the error) is served before another request
	// is made; zero means DefaultHydraErrorTTL or TTL, whichever is less.
	// It keeps a failing admin API from being asked on every lookup.
	ErrorTTL time.Duration
	// Timeout bounds each request; zero means DefaultHydraTimeout.
	Timeout time.Duration
	// MaxResponseBytes caps each answer's body; zero means
	// DefaultHydraMaxResponseBytes. A longer answer is a failure.
	MaxResponseBytes int64
	// MaxEntries bounds the cache; zero means DefaultHydraMaxEntries. When
	// it is full a client is dropped, those looked up only once before
	// those in repeated use.
	MaxEntries int
	// Field is the member of the client's metadata that holds the limit;
	// empty means DefaultHydraField.
	Field string
	// Logger receives invalid values and outages; default slog.Default().
	// Tokens are never logged.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// HydraSource reads limits from the metadata of OAuth2 clients in Ory
// Hydra's admin API: GET {AdminURL}/admin/clients/{id}, member Field of the
// answer's metadata object, under the package's value rules.
//
// Answers are cached per client ID for TTL (unknown clients, 404, for
// NegativeTTL), in a cache bounded by MaxEntries; concurrent lookups of a
// client not in the cache share one request. When the admin API fails
// (network error, status other than 200 and 404, malformed answer), the
// client's last known answer, however old, keeps being served, logged at
// WARN once per outage of that client; a client with no known answer gets
// the error. Either way no new request is made for that client during
// ErrorTTL.
//
// A HydraSource is safe for concurrent use.
type HydraSource struct {
	cfg      HydraConfig
	endpoint string // {AdminURL}/admin/clients/
	client   *http.Client
	log      *slog.Logger
	group    flight.Group[hydraAnswer]
	lookups  atomic.Int64
	bad      badValues
	// entries never expire: a known answer, however old, is served while
	// the admin API fails.
	entries *cache.Cache[hydraEntry]
}

var _ Source = (*HydraSource)(nil)

// hydraEntry is what the cache knows about one client.
type hydraEntry struct {
	// known says perMinute and ok hold an answer of the admin API.
	known     bool
	perMinute int
	ok        bool
	// freshUntil is, for a known answer, when it stops being served
	// without a request.
	freshUntil time.Time
	// retryAt is, after a failure, when a request may be made again; err
	// is that failure, served meanwhile to a client with no known answer.
	retryAt time.Time
	err     error
	// outage says a failure was logged for this client and no request has
	// succeeded since.
	outage bool
}

// hydraAnswer is one Lookup answer.
type hydraAnswer struct {
	perMinute int
	ok        bool
	err       error
}

// NewHydraSource checks cfg and returns a HydraSource. It makes no request.
func NewHydraSource(cfg HydraConfig) (*HydraSource, error) {
	if cfg.AdminURL == "" {
		return nil, errors.New("ratelimit: HydraConfig.AdminURL is required")
	}
	if err := issuerhttp.CheckURL(cfg.AdminURL, cfg.AllowInsecureHTTP); err != nil {
		return nil, fmt.Errorf("ratelimit: HydraConfig.AdminURL: %w", err)
	}
	u, err := url.Parse(cfg.AdminURL)
	if err != nil {
		return nil, fmt.Errorf("ratelimit: HydraConfig.AdminURL: %w", issuerhttp.RedactError(err))
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("ratelimit: HydraConfig.AdminURL %q must have no query, fragment or user info", issuerhttp.Redact(cfg.AdminURL))
	}
	for name, d := range map[string]time.Duration{"TTL": cfg.TTL, "NegativeTTL": cfg.NegativeTTL, "ErrorTTL": cfg.ErrorTTL, "Timeout": cfg.Timeout} {
		if d < 0 {
			return nil, fmt.Errorf("ratelimit: HydraConfig.%s is negative (%v)", name, d)
		}
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultHydraTTL
	}
	if cfg.NegativeTTL == 0 {
		cfg.NegativeTTL = cfg.TTL
	}
	if cfg.ErrorTTL == 0 {
		cfg.ErrorTTL = min(DefaultHydraErrorTTL, cfg.TTL)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultHydraTimeout
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = DefaultHydraMaxResponseBytes
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultHydraMaxEntries
	}
	if cfg.Field == "" {
		cfg.Field = DefaultHydraField
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &HydraSource{
		cfg:      cfg,
		endpoint: strings.TrimRight(u.String(), "/") + "/admin/clients/",
		client:   issuerhttp.Harden(cfg.HTTPClient),
		log:      orDefault(cfg.Logger),
		entries:  cache.New[hydraEntry](cache.Config{MaxEntries: cfg.MaxEntries}),
	}, nil
}

// Lookup returns c's limit from Hydra, from the cache when it can. An empty
// client ID, or one that is "." or "..", has no value and causes no
// request. An error means the admin API could not be asked and nothing is
// known of the client (or ctx is done).
func (s *HydraSource) Lookup(ctx context.Context, c Client) (int, bool, error) {
	id := c.ID
	if id == "" || id == "." || id == ".." {
		return 0, false, nil
	}
	if a, hit := s.cached(id); hit {
		return a.perMinute, a.ok, a.err
	}
	a, err := s.group.Do(ctx, id, func(ctx context.Context) (hydraAnswer, error) {
		// A flight that ended just before this one may have filled the
		// cache.
		if a, hit := s.cached(id); hit {
			return a, nil
		}
		return s.refresh(ctx, id), nil
	})
	if err != nil {
		if errors.Is(err, flight.ErrPanicked) {
			err = fmt.Errorf("ratelimit: Hydra lookup %w", err)
		}
		return 0, false, err
	}
	return a.perMinute, a.ok, a.err
}

// cached answers from the cache when no request is due.
func (s *HydraSource) cached(id string) (hydraAnswer, bool) {
	now := s.cfg.Now()
	e, found := s.entries.Get(id, now)
	if !found {
		return hydraAnswer{}, false
	}
	switch {
	case e.known && (now.Before(e.freshUntil) || now.Before(e.retryAt)):
		return hydraAnswer{perMinute: e.perMinute, ok: e.ok}, true
	case !e.known && now.Before(e.retryAt):
		return hydraAnswer{err: e.err}, true
	}
	return hydraAnswer{}, false
}

// refresh asks the admin API about id and records the outcome.
func (s *HydraSource) refresh(ctx context.Context, id string) hydraAnswer {
	perMinute, ok, found, err := s.fetch(ctx, id)
	now := s.cfg.Now()
	var (
		a         hydraAnswer
		recovered bool // a success after a logged failure
		first     bool // the first failure since a known answer
	)
	s.entries.Update(id, now, func(e hydraEntry, _ bool) (hydraEntry, time.Time, bool) {
		recovered, first = false, false
		if err == nil {
			recovered = e.outage
			ttl := s.cfg.TTL
			if !found {
				ttl = s.cfg.NegativeTTL
			}
			a = hydraAnswer{perMinute: perMinute, ok: ok}
			return hydraEntry{known: true, perMinute: perMinute, ok: ok, freshUntil: now.Add(ttl)}, time.Time{}, true
		}
		e.retryAt = now.Add(s.cfg.ErrorTTL)
		if !e.known {
			e.err = err
			a = hydraAnswer{err: err}
			return e, time.Time{}, true
		}
		first = !e.outage
		e.outage = true
		a = hydraAnswer{perMinute: e.perMinute, ok: e.ok}
		return e, time.Time{}, true
	})
	switch {
	case recovered:
		s.log.LogAttrs(ctx, slog.LevelInfo, "ratelimit: Hydra admin API answering again",
			slog.String("client_id", id))
	case first:
		s.log.LogAttrs(ctx, slog.LevelWarn, "ratelimit: Hydra admin API failing, serving the last known limit",
			slog.String("client_id", id), slog.String("error", err.Error()))
	}
	return a
}

// fetch makes one request. found is false for an unknown client (404).
func (s *HydraSource) fetch(ctx context.Context, id string) (perMinute int, ok, found bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.endpoint+url.PathEscape(id), nil)
	if err != nil {
		return 0, false, false, fmt.Errorf("ratelimit: Hydra admin API: %w", issuerhttp.RedactError(err))
	}
	req.Header.Set("Accept", "application/json")
	s.lookups.Add(1)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, false, false, fmt.Errorf("ratelimit: Hydra admin API: %w", issuerhttp.RedactError(err))
	}
	defer func() {
		// Let the connection be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
	}()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return 0, false, false, nil
	default:
		return 0, false, false, fmt.Errorf("ratelimit: Hydra admin API: GET %s: status %d", issuerhttp.Redact(req.URL.String()), resp.StatusCode)
	}
	body, err := issuerhttp.ReadCapped(resp.Body, s.cfg.MaxResponseBytes)
	if err != nil {
		return 0, false, false, fmt.Errorf("ratelimit: Hydra admin API: GET %s: %w", issuerhttp.Redact(req.URL.String()), err)
	}
	metadata, err := clientMetadata(body, id)
	if err != nil {
		return 0, false, false, fmt.Errorf("ratelimit: Hydra admin API: GET %s: malformed answer: %w", issuerhttp.Redact(req.URL.String()), err)
	}
	if metadata == nil {
		return 0, false, true, nil
	}
	members, err := strictjson.Shallow(metadata, maxJSONDepth)
	if err != nil {
		s.bad.warn(ctx, s.log, "hydra", s.cfg.Field, id, metadata, "metadata is not a valid JSON object: "+err.Error())
		return 0, false, true, nil
	}
	perMinute, ok = limitFromJSON(ctx, s.log, &s.bad, "hydra", s.cfg.Field, id, memberValue(members, s.cfg.Field))
	return perMinute, ok, true, nil
}

// clientMetadata checks that body is Hydra's description of client id and
// returns its metadata object, nil if it has none (absent or null).
func clientMetadata(body []byte, id string) ([]byte, error) {
	members, err := strictjson.Shallow(body, maxJSONDepth)
	if err != nil {
		return nil, err
	}
	rawID := memberValue(members, "client_id")
	if rawID == nil {
		return nil, errors.New("no client_id")
	}
	if got, err := strictjson.String(rawID); err != nil || got != id {
		return nil, errors.New("client_id is not the client asked for")
	}
	metadata := bytes.TrimSpace(memberValue(members, "metadata"))
	switch {
	case len(metadata) == 0 || string(metadata) == "null":
		return nil, nil
	case metadata[0] != '{':
		return nil, errors.New("metadata is not a JSON object")
	}
	return metadata, nil
}
