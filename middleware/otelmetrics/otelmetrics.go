// Package otelmetrics records what Aegis's core decides and calls with
// OpenTelemetry: a *Metrics (metric instruments) and a *Tracing (spans) are
// core.Observers, for middleware.Config.Observer or core.Config.Observer;
// core.Observers combines them. It is a nested module
// (go get github.com/olympus/aegis/middleware/otelmetrics), so programs that
// do not use it never compile OpenTelemetry.
//
//	m, err := otelmetrics.New(otelmetrics.Config{MeterProvider: otel.GetMeterProvider()})
//	guard, err := middleware.New(middleware.Config{Issuer: iss, Audience: aud, Observer: m})
//
// # Instruments
//
// The meter is named ScopeName. Durations are in seconds, with advisory
// bucket boundaries from 1 ms to 10 s (a View can replace them).
//
//	aegis.decisions                    counter    {decision}  aegis.outcome, aegis.reason, aegis.kind
//	aegis.jwks.fetches                 counter    {fetch}     aegis.issuer, aegis.result (success|failure)
//	aegis.jwks.keys                    gauge      {key}       aegis.issuer; usable keys at the last successful fetch
//	aegis.jwks.fetch.duration          histogram  s           aegis.issuer; failures included
//	aegis.introspection.cache.lookups  counter    {lookup}    aegis.issuer, aegis.result (hit|miss)
//	aegis.introspection.calls          counter    {call}      aegis.issuer, aegis.result (active|inactive|error)
//	aegis.introspection.call.duration  histogram  s           aegis.issuer; failures included
//	aegis.introspection.shared_cache   counter    {use}       aegis.issuer, aegis.op (get|set|drop), aegis.result (hit|miss|ok|error)
//	aegis.ratelimit.decisions          counter    {decision}  aegis.client_id, aegis.result (allowed|denied|error)
//	aegis.limit.lookups                counter    {lookup}    aegis.result (found|default|error)
//	aegis.limit.lookup.duration        histogram  s           none
//
// aegis.outcome is accepted or refused; aegis.reason is
// aegis.ReasonAccepted or a refusal's reason code (token_missing,
// token_expired, audience_mismatch, insufficient_scope, rate_limited,
// keys_unavailable…); aegis.kind is m2m, user (or whatever a custom
// Classifier returns), or none when no token was validated. A request
// refused by a later middleware after an earlier one admitted it (Require
// for scope, RequireIntrospection for an inactive token) counts twice:
// accepted, then refused. Measurements carry the caller's
// context, so an SDK can attach exemplars from its span.
//
// # Cardinality
//
// No attribute carries a token or anything derived from one. Outcome,
// reason, kind and result take a small fixed set of values; aegis.issuer
// one per configured issuer; aegis.client_id one per client charged to a
// rate limit (set Config.OmitClientID to drop it). issuer and client_id
// values are clipped to 128 bytes and made valid UTF-8.
//
// # Allocations
//
// Attribute sets are built once per combination of values and then
// reused, so recording allocates nothing in this package. At most 4096
// combinations are kept per instrument family; past that (many client
// IDs), each measurement builds its set and allocates. What the SDK
// allocates is its own affair (the Go SDK allocates nothing for a series
// it already has).
package otelmetrics

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/middleware/internal/metricvalue"
)

// ScopeName is the instrumentation scope (meter name) of the instruments.
const ScopeName = "github.com/olympus/aegis/middleware/otelmetrics"

// MaxAttributeLength is the longest aegis.issuer or aegis.client_id value,
// in bytes; longer values are clipped.
const MaxAttributeLength = 128

// Attribute keys of the instruments.
const (
	// KeyOutcome is accepted or refused.
	KeyOutcome = attribute.Key("aegis.outcome")
	// KeyReason is a decision's reason code.
	KeyReason = attribute.Key("aegis.reason")
	// KeyKind is the caller's kind, or none.
	KeyKind = attribute.Key("aegis.kind")
	// KeyIssuer is the issuer concerned.
	KeyIssuer = attribute.Key("aegis.issuer")
	// KeyClientID is the OAuth2 client charged to a rate limit.
	KeyClientID = attribute.Key("aegis.client_id")
	// KeyResult is how an operation ended (success, hit, allowed…).
	KeyResult = attribute.Key("aegis.result")
	// KeyOp is what was done with the shared introspection cache.
	KeyOp = attribute.Key("aegis.op")
)

// durationBounds are the advisory histogram boundaries, in seconds.
var durationBounds = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// maxCached bounds each cache of attribute sets.
const maxCached = 4096

// Config configures Metrics.
type Config struct {
	// MeterProvider creates the meter; required. Pass
	// otel.GetMeterProvider() for the global one.
	MeterProvider metric.MeterProvider
	// OmitClientID drops the aegis.client_id attribute of
	// aegis.ratelimit.decisions, leaving one series per result.
	OmitClientID bool
}

// Metrics records a Guard's measurements with OpenTelemetry instruments.
// It implements core.Observer and is safe for concurrent use.
type Metrics struct {
	core.NopObserver

	decisions      metric.Int64Counter
	jwksFetches    metric.Int64Counter
	jwksKeys       metric.Int64Gauge
	jwksDuration   metric.Float64Histogram
	cacheLookups   metric.Int64Counter
	calls          metric.Int64Counter
	callDuration   metric.Float64Histogram
	shared         metric.Int64Counter
	rateLimit      metric.Int64Counter
	lookups        metric.Int64Counter
	lookupDuration metric.Float64Histogram

	omitClientID bool

	byDecision  cache[decisionAttrs, []metric.AddOption]
	byIssuer    cache[string, *issuerOptions]
	byRateLimit cache[rateLimitAttrs, []metric.AddOption]
	// limit lookups by result: found, default, error
	lookupFound, lookupDefault, lookupError []metric.AddOption
}

var _ core.Observer = (*Metrics)(nil)

// New creates the instruments on cfg.MeterProvider's meter ScopeName.
func New(cfg Config) (*Metrics, error) {
	if cfg.MeterProvider == nil {
		return nil, errors.New("otelmetrics: Config.MeterProvider is required")
	}
	meter := cfg.MeterProvider.Meter(ScopeName)
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	histogram := func(name, desc string) metric.Float64Histogram {
		h, err := meter.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(durationBounds...))
		errs = append(errs, err)
		return h
	}
	m := &Metrics{
		decisions: counter("aegis.decisions", "{decision}",
			"Verdicts on requests by outcome (accepted, refused), reason code and caller kind (none: no token validated)."),
		jwksFetches:  counter("aegis.jwks.fetches", "{fetch}", "Key-set fetches by issuer and result (success, failure)."),
		jwksDuration: histogram("aegis.jwks.fetch.duration", "Time taken by key-set fetches, failed ones included."),
		cacheLookups: counter("aegis.introspection.cache.lookups", "{lookup}",
			"Introspection cache lookups by issuer and result (hit, miss)."),
		calls: counter("aegis.introspection.calls", "{call}",
			"Introspection calls by issuer and result (active, inactive, error)."),
		callDuration: histogram("aegis.introspection.call.duration", "Time taken by introspection calls, failed ones included."),
		shared: counter("aegis.introspection.shared_cache", "{use}",
			"Uses of the introspection cache shared among replicas by issuer, op (get, set, drop) and result (hit, miss, ok, error)."),
		rateLimit: counter("aegis.ratelimit.decisions", "{decision}",
			"Rate-limit charges by client and result (allowed, denied, error)."),
		lookups:        counter("aegis.limit.lookups", "{lookup}", "Lookups of a client's rate limit by result (found, default, error)."),
		lookupDuration: histogram("aegis.limit.lookup.duration", "Time taken by lookups of a client's rate limit."),
		omitClientID:   cfg.OmitClientID,
		lookupFound:    addOptions(KeyResult.String("found")),
		lookupDefault:  addOptions(KeyResult.String("default")),
		lookupError:    addOptions(KeyResult.String("error")),
	}
	var err error
	m.jwksKeys, err = meter.Int64Gauge("aegis.jwks.keys", metric.WithUnit("{key}"),
		metric.WithDescription("Usable keys in the issuer's key set at its last successful fetch."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("otelmetrics: creating the instruments: %w", err)
	}
	return m, nil
}

// Decision counts a verdict in aegis.decisions.
func (m *Metrics) Decision(ctx context.Context, d core.Decision) {
	key := decisionAttrs{string(d.Outcome), clip(string(d.Reason)), clip(metricvalue.Kind(d.Kind))}
	opts, ok := m.byDecision.load(key)
	if !ok {
		opts = addOptions(KeyOutcome.String(key.outcome), KeyReason.String(key.reason), KeyKind.String(key.kind))
		m.byDecision.store(key, opts)
	}
	m.decisions.Add(ctx, 1, opts...)
}

// KeySetFetch counts a key-set fetch, records its duration and, on
// success, records aegis.jwks.keys.
func (m *Metrics) KeySetFetch(ctx context.Context, f core.KeySetFetch) {
	o := m.issuer(f.Issuer)
	if f.Err != nil {
		m.jwksFetches.Add(ctx, 1, o.fetchFailure...)
	} else {
		m.jwksFetches.Add(ctx, 1, o.fetchSuccess...)
		m.jwksKeys.Record(ctx, int64(f.Keys), o.record...)
	}
	m.jwksDuration.Record(ctx, f.Duration.Seconds(), o.record...)
}

// IntrospectionCache counts an introspection cache hit or miss.
func (m *Metrics) IntrospectionCache(ctx context.Context, c core.IntrospectionCacheLookup) {
	o := m.issuer(c.Issuer)
	if c.Hit {
		m.cacheLookups.Add(ctx, 1, o.hit...)
	} else {
		m.cacheLookups.Add(ctx, 1, o.miss...)
	}
}

// IntrospectionCall counts an introspection call and records its
// duration.
func (m *Metrics) IntrospectionCall(ctx context.Context, c core.IntrospectionCall) {
	o := m.issuer(c.Issuer)
	switch {
	case c.Err != nil:
		m.calls.Add(ctx, 1, o.callError...)
	case c.Active:
		m.calls.Add(ctx, 1, o.active...)
	default:
		m.calls.Add(ctx, 1, o.inactive...)
	}
	m.callDuration.Record(ctx, c.Duration.Seconds(), o.record...)
}

// IntrospectionSharedCache counts a use of the shared introspection cache
// (on a local miss, so rarer than lookups: its options are not cached).
func (m *Metrics) IntrospectionSharedCache(ctx context.Context, s core.IntrospectionSharedCache) {
	m.shared.Add(ctx, 1, metric.WithAttributes(KeyIssuer.String(clip(s.Issuer)), KeyOp.String(string(s.Op)),
		KeyResult.String(metricvalue.SharedCacheResult(s))))
}

// RateLimit counts a rate-limit charge.
func (m *Metrics) RateLimit(ctx context.Context, d core.RateLimitDecision) {
	result := metricvalue.RateLimitResult(d)
	key := rateLimitAttrs{result: result}
	if !m.omitClientID {
		key.clientID = clip(d.ClientID)
	}
	opts, ok := m.byRateLimit.load(key)
	if !ok {
		if m.omitClientID {
			opts = addOptions(KeyResult.String(result))
		} else {
			opts = addOptions(KeyClientID.String(key.clientID), KeyResult.String(result))
		}
		m.byRateLimit.store(key, opts)
	}
	m.rateLimit.Add(ctx, 1, opts...)
}

// LimitLookup counts a lookup of a client's limit and records its
// duration. The client is not an attribute.
func (m *Metrics) LimitLookup(ctx context.Context, l core.LimitLookup) {
	switch {
	case l.Err != nil:
		m.lookups.Add(ctx, 1, m.lookupError...)
	case l.Found:
		m.lookups.Add(ctx, 1, m.lookupFound...)
	default:
		m.lookups.Add(ctx, 1, m.lookupDefault...)
	}
	m.lookupDuration.Record(ctx, l.Duration.Seconds())
}

// decisionAttrs are the attribute values of a decision.
type decisionAttrs struct{ outcome, reason, kind string }

// rateLimitAttrs are the attribute values of a rate-limit charge.
type rateLimitAttrs struct{ clientID, result string }

// issuerOptions are the measurement options of one issuer's events.
type issuerOptions struct {
	record                      []metric.RecordOption // aegis.issuer alone
	fetchSuccess, fetchFailure  []metric.AddOption
	hit, miss                   []metric.AddOption
	active, inactive, callError []metric.AddOption
}

// issuer returns the options for issuer's events.
func (m *Metrics) issuer(issuer string) *issuerOptions {
	o, ok := m.byIssuer.load(issuer)
	if ok {
		return o
	}
	iss := KeyIssuer.String(clip(issuer))
	result := func(r string) []metric.AddOption { return addOptions(iss, KeyResult.String(r)) }
	o = &issuerOptions{
		record:       []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(iss))},
		fetchSuccess: result("success"), fetchFailure: result("failure"),
		hit: result("hit"), miss: result("miss"),
		active: result("active"), inactive: result("inactive"), callError: result("error"),
	}
	m.byIssuer.store(issuer, o)
	return o
}

// addOptions is the option list that records attrs; passed as opts... it
// costs no allocation.
func addOptions(attrs ...attribute.KeyValue) []metric.AddOption {
	return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attrs...))}
}

// cache maps keys to prebuilt options, holding at most maxCached entries.
type cache[K comparable, V any] struct {
	m sync.Map
	n atomic.Int64
}

func (c *cache[K, V]) load(k K) (V, bool) {
	v, ok := c.m.Load(k)
	if !ok {
		var zero V
		return zero, false
	}
	return v.(V), true
}

func (c *cache[K, V]) store(k K, v V) {
	if c.n.Load() >= maxCached {
		return
	}
	if _, loaded := c.m.LoadOrStore(k, v); !loaded {
		c.n.Add(1)
	}
}

// clip makes s a safe attribute value: valid UTF-8 of at most
// MaxAttributeLength bytes, clipped on a rune boundary.
func clip(s string) string { return metricvalue.Clip(s, MaxAttributeLength) }
