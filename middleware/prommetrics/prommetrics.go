// Package prommetrics records what Aegis's core decides and calls as
// Prometheus metrics: a *Metrics is a core.Observer, for
// middleware.Config.Observer or core.Config.Observer. It is a nested module
// (go get github.com/olympus/aegis/middleware/prommetrics), so programs
// that do not use it never compile Prometheus.
//
//	reg := prometheus.NewRegistry()
//	m, err := prommetrics.New(prommetrics.Config{Registerer: reg})
//	guard, err := middleware.New(middleware.Config{Issuer: iss, Audience: aud, Observer: m})
//
// # Metrics
//
// Names below use the default namespace "aegis"; Config.Namespace replaces
// that prefix. Durations are in seconds.
//
//	aegis_decisions_total{outcome,reason,kind}                 counter    verdicts on requests (core.Decision)
//	aegis_jwks_fetches_total{issuer,result}                    counter    key-set fetches; result success|failure
//	aegis_jwks_keys{issuer}                                    gauge      usable keys in the last successful fetch
//	aegis_jwks_fetch_duration_seconds{issuer}                  histogram  key-set fetch time, failures included
//	aegis_introspection_cache_lookups_total{issuer,result}     counter    introspection cache; result hit|miss
//	aegis_introspection_calls_total{issuer,result}             counter    introspection calls; result active|inactive|error
//	aegis_introspection_call_duration_seconds{issuer}          histogram  introspection call time, errors included
//	aegis_introspection_shared_cache_total{issuer,op,result}   counter    shared introspection cache; op get|set|drop, result hit|miss|ok|error
//	aegis_ratelimit_decisions_total{client_id,result}          counter    rate-limit charges; result allowed|denied|error
//	aegis_limit_lookups_total{result}                          counter    limit lookups; result found|default|error
//	aegis_limit_lookup_duration_seconds                        histogram  limit lookup time
//
// outcome is accepted or refused; reason is aegis.ReasonAccepted or a
// refusal's reason code (token_missing, token_expired, audience_mismatch,
// insufficient_scope, rate_limited, keys_unavailable…); kind is m2m, user
// (or whatever a custom Classifier returns), or none when no token was
// validated. A request refused by a later middleware after an earlier one
// admitted it (Require for scope, RequireIntrospection for an inactive
// token) counts twice: accepted, then refused.
//
// # Cardinality
//
// No label carries a token or anything derived from one. outcome, reason,
// kind and result take a small fixed set of values (reason and kind may
// grow with a custom Validator or Classifier). issuer takes one value per
// configured issuer. client_id takes one value per client that passed
// authentication and was charged to a rate limit: its series grow with the
// number of OAuth2 clients, not with requests or tokens. Set
// Config.OmitClientID to drop that label when clients are numerous or
// short-lived. issuer and client_id values are clipped to 128 bytes and
// made valid UTF-8.
package prommetrics

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/middleware/internal/metricvalue"
)

// DefaultNamespace prefixes every metric name unless Config.Namespace is
// set.
const DefaultNamespace = "aegis"

// MaxLabelLength is the longest issuer or client_id label value, in bytes;
// longer values are clipped.
const MaxLabelLength = 128

// DefaultDurationBuckets are the histogram buckets, in seconds, unless
// Config.DurationBuckets is set: 1 ms to 10 s.
func DefaultDurationBuckets() []float64 {
	return []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
}

// Config configures Metrics.
type Config struct {
	// Registerer receives the collectors; required. Pass
	// prometheus.DefaultRegisterer for the global registry.
	Registerer prometheus.Registerer
	// Namespace prefixes every metric name; default DefaultNamespace. It
	// must match [a-zA-Z_][a-zA-Z0-9_]*.
	Namespace string
	// DurationBuckets are the upper bounds, in seconds, of the duration
	// histograms; default DefaultDurationBuckets().
	DurationBuckets []float64
	// OmitClientID drops the client_id label of
	// aegis_ratelimit_decisions_total, leaving one series per result.
	// By default each rate-limited client has its own series.
	OmitClientID bool
}

// Metrics records a Guard's measurements in Prometheus collectors. It
// implements core.Observer and is safe for concurrent use.
type Metrics struct {
	core.NopObserver

	decisions *prometheus.CounterVec
	// byDecision caches decisions' counters by labels (decisionLabels),
	// sparing the vector's hashing and lock; it holds no more entries
	// than the vector has series.
	byDecision sync.Map

	jwksFetches  *prometheus.CounterVec
	jwksKeys     *prometheus.GaugeVec
	jwksDuration *prometheus.HistogramVec

	cacheLookups *prometheus.CounterVec
	calls        *prometheus.CounterVec
	callDuration *prometheus.HistogramVec
	shared       *prometheus.CounterVec

	rateLimit    *prometheus.CounterVec
	byRateLimit  sync.Map // rateLimitLabels -> prometheus.Counter, like byDecision
	omitClientID bool

	lookups        *prometheus.CounterVec
	lookupDuration prometheus.Histogram
}

var _ core.Observer = (*Metrics)(nil)

// New creates the collectors and registers them with cfg.Registerer. A
// registration error is returned wrapped (errors.As finds a
// prometheus.AlreadyRegisteredError), and the collectors registered before
// it are unregistered again.
func New(cfg Config) (*Metrics, error) {
	if cfg.Registerer == nil {
		return nil, errors.New("prommetrics: Config.Registerer is required")
	}
	ns := cfg.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	if !validNamespace(ns) {
		return nil, fmt.Errorf("prommetrics: Config.Namespace %q is not [a-zA-Z_][a-zA-Z0-9_]*", ns)
	}
	buckets := cfg.DurationBuckets
	if buckets == nil {
		buckets = DefaultDurationBuckets()
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help}, labels)
	}
	histogram := func(name, help string, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: name, Help: help, Buckets: buckets}, labels)
	}
	rateLabels := []string{"client_id", "result"}
	if cfg.OmitClientID {
		rateLabels = rateLabels[1:]
	}
	m := &Metrics{
		decisions: counter("decisions_total",
			"Verdicts on requests by outcome (accepted, refused), reason code and caller kind (none: no token validated).",
			"outcome", "reason", "kind"),
		jwksFetches: counter("jwks_fetches_total", "Key-set fetches by issuer and result (success, failure).",
			"issuer", "result"),
		jwksKeys: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "jwks_keys",
			Help: "Usable keys in the issuer's key set at its last successful fetch."}, []string{"issuer"}),
		jwksDuration: histogram("jwks_fetch_duration_seconds", "Time taken by key-set fetches, failed ones included.",
			"issuer"),
		cacheLookups: counter("introspection_cache_lookups_total", "Introspection cache lookups by issuer and result (hit, miss).",
			"issuer", "result"),
		calls: counter("introspection_calls_total", "Introspection calls by issuer and result (active, inactive, error).",
			"issuer", "result"),
		callDuration: histogram("introspection_call_duration_seconds", "Time taken by introspection calls, failed ones included.",
			"issuer"),
		shared: counter("introspection_shared_cache_total",
			"Uses of the introspection cache shared among replicas by issuer, op (get, set, drop) and result (hit, miss, ok, error).",
			"issuer", "op", "result"),
		rateLimit: counter("ratelimit_decisions_total", "Rate-limit charges by client and result (allowed, denied, error).",
			rateLabels...),
		omitClientID: cfg.OmitClientID,
		lookups: counter("limit_lookups_total", "Lookups of a client's rate limit by result (found, default, error).",
			"result"),
		lookupDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "limit_lookup_duration_seconds",
			Help: "Time taken by lookups of a client's rate limit.", Buckets: buckets}),
	}
	collectors := []prometheus.Collector{m.decisions, m.jwksFetches, m.jwksKeys, m.jwksDuration,
		m.cacheLookups, m.calls, m.callDuration, m.shared, m.rateLimit, m.lookups, m.lookupDuration}
	for i, c := range collectors {
		if err := cfg.Registerer.Register(c); err != nil {
			for _, done := range collectors[:i] {
				cfg.Registerer.Unregister(done)
			}
			return nil, fmt.Errorf("prommetrics: registering the collectors: %w", err)
		}
	}
	return m, nil
}

// Decision counts a verdict in aegis_decisions_total.
func (m *Metrics) Decision(_ context.Context, d core.Decision) {
	key := decisionLabels{string(d.Outcome), label(string(d.Reason)), label(metricvalue.Kind(d.Kind))}
	if c, ok := m.byDecision.Load(key); ok {
		c.(prometheus.Counter).Inc()
		return
	}
	c := m.decisions.WithLabelValues(key.outcome, key.reason, key.kind)
	m.byDecision.Store(key, c)
	c.Inc()
}

// decisionLabels are the labels of a decision's series.
type decisionLabels struct{ outcome, reason, kind string }

// rateLimitLabels are the labels of a rate-limit charge's series.
type rateLimitLabels struct{ clientID, result string }

// KeySetFetch counts a key-set fetch, records its duration and, on
// success, sets aegis_jwks_keys.
func (m *Metrics) KeySetFetch(_ context.Context, f core.KeySetFetch) {
	issuer := label(f.Issuer)
	result := "success"
	if f.Err != nil {
		result = "failure"
	} else {
		m.jwksKeys.WithLabelValues(issuer).Set(float64(f.Keys))
	}
	m.jwksFetches.WithLabelValues(issuer, result).Inc()
	m.jwksDuration.WithLabelValues(issuer).Observe(f.Duration.Seconds())
}

// IntrospectionCache counts an introspection cache hit or miss.
func (m *Metrics) IntrospectionCache(_ context.Context, c core.IntrospectionCacheLookup) {
	result := "miss"
	if c.Hit {
		result = "hit"
	}
	m.cacheLookups.WithLabelValues(label(c.Issuer), result).Inc()
}

// IntrospectionCall counts an introspection call and records its duration.
func (m *Metrics) IntrospectionCall(_ context.Context, c core.IntrospectionCall) {
	issuer := label(c.Issuer)
	m.calls.WithLabelValues(issuer, metricvalue.CallResult(c)).Inc()
	m.callDuration.WithLabelValues(issuer).Observe(c.Duration.Seconds())
}

// IntrospectionSharedCache counts a use of the shared introspection
// cache.
func (m *Metrics) IntrospectionSharedCache(_ context.Context, s core.IntrospectionSharedCache) {
	m.shared.WithLabelValues(label(s.Issuer), string(s.Op), metricvalue.SharedCacheResult(s)).Inc()
}

// RateLimit counts a rate-limit charge.
func (m *Metrics) RateLimit(_ context.Context, d core.RateLimitDecision) {
	result := metricvalue.RateLimitResult(d)
	key := rateLimitLabels{result: result}
	if !m.omitClientID {
		key.clientID = label(d.ClientID)
	}
	if c, ok := m.byRateLimit.Load(key); ok {
		c.(prometheus.Counter).Inc()
		return
	}
	var c prometheus.Counter
	if m.omitClientID {
		c = m.rateLimit.WithLabelValues(result)
	} else {
		c = m.rateLimit.WithLabelValues(key.clientID, result)
	}
	m.byRateLimit.Store(key, c)
	c.Inc()
}

// LimitLookup counts a lookup of a client's limit and records its
// duration. The client is not a label.
func (m *Metrics) LimitLookup(_ context.Context, l core.LimitLookup) {
	m.lookups.WithLabelValues(metricvalue.LookupResult(l)).Inc()
	m.lookupDuration.Observe(l.Duration.Seconds())
}

// label makes s a safe label value: valid UTF-8 (Prometheus refuses
// anything else) of at most MaxLabelLength bytes, clipped on a rune
// boundary.
func label(s string) string { return metricvalue.Clip(s, MaxLabelLength) }

// validNamespace reports whether ns makes classic metric names, valid in
// every exposition format.
func validNamespace(ns string) bool {
	for i, c := range ns {
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return ns != ""
}
