package otelmetrics_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/middleware/core"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/olympus/aegis/middleware/otelmetrics"
)

const issuer = "https://athena.example.com"

func newMetrics(t testing.TB, cfg otelmetrics.Config, opts ...sdkmetric.Option) (*otelmetrics.Metrics, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(append(opts, sdkmetric.WithReader(reader))...)
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	cfg.MeterProvider = mp
	m, err := otelmetrics.New(cfg)
	require.NoError(t, err)
	return m, reader
}

// collect returns what the reader holds, by instrument name.
func collect(t testing.TB, r *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		require.Equal(t, otelmetrics.ScopeName, sm.Scope.Name)
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// values flattens collected data to name -> encoded attributes -> value:
// a sum's or gauge's value, a histogram's count.
func values(t testing.TB, r *sdkmetric.ManualReader) map[string]map[string]float64 {
	t.Helper()
	out := map[string]map[string]float64{}
	for name, m := range collect(t, r) {
		points := map[string]float64{}
		switch data := m.Data.(type) {
		case metricdata.Sum[int64]:
			require.True(t, data.IsMonotonic, name)
			require.Equal(t, metricdata.CumulativeTemporality, data.Temporality, name)
			for _, p := range data.DataPoints {
				points[encode(p.Attributes)] = float64(p.Value)
			}
		case metricdata.Gauge[int64]:
			for _, p := range data.DataPoints {
				points[encode(p.Attributes)] = float64(p.Value)
			}
		case metricdata.Histogram[float64]:
			for _, p := range data.DataPoints {
				points[encode(p.Attributes)] = float64(p.Count)
			}
		default:
			t.Fatalf("%s: unexpected data %T", name, m.Data)
		}
		out[name] = points
	}
	return out
}

func encode(s attribute.Set) string { return s.Encoded(attribute.DefaultEncoder()) }

func TestEvents(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")
	tests := []struct {
		name string
		cfg  otelmetrics.Config
		feed func(m *otelmetrics.Metrics)
		want map[string]map[string]float64
	}{
		{
			name: "decisions",
			feed: func(m *otelmetrics.Metrics) {
				m.Decision(ctx, core.Decision{Outcome: core.OutcomeAccepted, Reason: aegis.ReasonAccepted,
					Kind: core.KindM2M, Method: core.MethodJWT, ClientID: "sync"})
				m.Decision(ctx, core.Decision{Outcome: core.OutcomeAccepted, Reason: aegis.ReasonAccepted,
					Kind: core.KindM2M, Method: core.MethodJWT, ClientID: "other", Cached: true})
				m.Decision(ctx, core.Decision{Outcome: core.OutcomeAccepted, Reason: aegis.ReasonAccepted,
					Kind: core.KindUser, Method: core.MethodIntrospection, ClientID: "web"})
				m.Decision(ctx, core.Decision{Outcome: core.OutcomeRefused, Reason: "token_missing", Class: aegis.ClassInvalid})
				m.Decision(ctx, core.Decision{Outcome: core.OutcomeRefused, Reason: "token_missing", Class: aegis.ClassInvalid})
				m.Decision(ctx, core.Decision{Outcome: core.OutcomeRefused, Reason: "insufficient_scope", Class: aegis.ClassForbidden,
					Kind: core.KindM2M, ClientID: "sync"})
			},
			want: map[string]map[string]float64{
				"aegis.decisions": {
					"aegis.kind=m2m,aegis.outcome=accepted,aegis.reason=accepted":          2,
					"aegis.kind=user,aegis.outcome=accepted,aegis.reason=accepted":         1,
					"aegis.kind=none,aegis.outcome=refused,aegis.reason=token_missing":     2,
					"aegis.kind=m2m,aegis.outcome=refused,aegis.reason=insufficient_scope": 1,
				},
			},
		},
		{
			name: "key-set fetches",
			feed: func(m *otelmetrics.Metrics) {
				m.KeySetFetch(ctx, core.KeySetFetch{Issuer: issuer, Keys: 2, Duration: 5 * time.Millisecond})
				m.KeySetFetch(ctx, core.KeySetFetch{Issuer: issuer, Keys: 3, Duration: 50 * time.Millisecond})
				// A failure counts and is timed, but leaves the gauge alone.
				m.KeySetFetch(ctx, core.KeySetFetch{Issuer: issuer, Duration: 2 * time.Second, Err: boom})
			},
			want: map[string]map[string]float64{
				"aegis.jwks.fetches": {
					"aegis.issuer=" + issuer + ",aegis.result=success": 2,
					"aegis.issuer=" + issuer + ",aegis.result=failure": 1,
				},
				"aegis.jwks.keys":           {"aegis.issuer=" + issuer: 3},
				"aegis.jwks.fetch.duration": {"aegis.issuer=" + issuer: 3},
			},
		},
		{
			name: "introspection",
			feed: func(m *otelmetrics.Metrics) {
				m.IntrospectionCache(ctx, core.IntrospectionCacheLookup{Issuer: issuer, Hit: true})
				m.IntrospectionCache(ctx, core.IntrospectionCacheLookup{Issuer: issuer, Hit: true})
				m.IntrospectionCache(ctx, core.IntrospectionCacheLookup{Issuer: issuer})
				m.IntrospectionCall(ctx, core.IntrospectionCall{Issuer: issuer, Active: true, Duration: 20 * time.Millisecond})
				m.IntrospectionCall(ctx, core.IntrospectionCall{Issuer: issuer, Duration: 5 * time.Millisecond})
				m.IntrospectionCall(ctx, core.IntrospectionCall{Issuer: issuer, Duration: time.Second, Err: boom})
				m.IntrospectionSharedCache(ctx, core.IntrospectionSharedCache{Issuer: issuer, Op: aegis.SharedCacheGet, Hit: true})
				m.IntrospectionSharedCache(ctx, core.IntrospectionSharedCache{Issuer: issuer, Op: aegis.SharedCacheSet, Err: boom})
			},
			want: map[string]map[string]float64{
				"aegis.introspection.shared_cache": {
					"aegis.issuer=" + issuer + ",aegis.op=get,aegis.result=hit":   1,
					"aegis.issuer=" + issuer + ",aegis.op=set,aegis.result=error": 1,
				},
				"aegis.introspection.cache.lookups": {
					"aegis.issuer=" + issuer + ",aegis.result=hit":  2,
					"aegis.issuer=" + issuer + ",aegis.result=miss": 1,
				},
				"aegis.introspection.calls": {
					"aegis.issuer=" + issuer + ",aegis.result=active":   1,
					"aegis.issuer=" + issuer + ",aegis.result=inactive": 1,
					"aegis.issuer=" + issuer + ",aegis.result=error":    1,
				},
				"aegis.introspection.call.duration": {"aegis.issuer=" + issuer: 3},
			},
		},
		{
			name: "rate limits by client",
			feed: func(m *otelmetrics.Metrics) {
				m.RateLimit(ctx, core.RateLimitDecision{ClientID: "sync", Allowed: true})
				m.RateLimit(ctx, core.RateLimitDecision{ClientID: "sync", Allowed: true})
				m.RateLimit(ctx, core.RateLimitDecision{ClientID: "sync"})
				m.RateLimit(ctx, core.RateLimitDecision{ClientID: "web", Allowed: true, Err: boom})
			},
			want: map[string]map[string]float64{
				"aegis.ratelimit.decisions": {
					"aegis.client_id=sync,aegis.result=allowed": 2,
					"aegis.client_id=sync,aegis.result=denied":  1,
					"aegis.client_id=web,aegis.result=error":    1,
				},
			},
		},
		{
			name: "rate limits without client_id",
			cfg:  otelmetrics.Config{OmitClientID: true},
			feed: func(m *otelmetrics.Metrics) {
				m.RateLimit(ctx, core.RateLimitDecision{ClientID: "sync", Allowed: true})
				m.RateLimit(ctx, core.RateLimitDecision{ClientID: "web", Allowed: true})
				m.RateLimit(ctx, core.RateLimitDecision{ClientID: "web"})
			},
			want: map[string]map[string]float64{
				"aegis.ratelimit.decisions": {"aegis.result=allowed": 2, "aegis.result=denied": 1},
			},
		},
		{
			name: "limit lookups",
			feed: func(m *otelmetrics.Metrics) {
				m.LimitLookup(ctx, core.LimitLookup{ClientID: "sync", Found: true, Duration: time.Millisecond})
				m.LimitLookup(ctx, core.LimitLookup{ClientID: "web", Duration: 30 * time.Millisecond})
				m.LimitLookup(ctx, core.LimitLookup{ClientID: "web", Duration: 500 * time.Millisecond, Err: boom})
			},
			want: map[string]map[string]float64{
				"aegis.limit.lookups":         {"aegis.result=found": 1, "aegis.result=default": 1, "aegis.result=error": 1},
				"aegis.limit.lookup.duration": {"": 3},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, reader := newMetrics(t, tt.cfg)
			tt.feed(m)
			assert.Equal(t, tt.want, values(t, reader))
		})
	}
}

func TestInstruments(t *testing.T) {
	ctx := context.Background()
	m, reader := newMetrics(t, otelmetrics.Config{})
	m.Decision(ctx, core.Decision{Outcome: core.OutcomeRefused, Reason: "token_missing", Class: aegis.ClassInvalid})
	m.KeySetFetch(ctx, core.KeySetFetch{Issuer: issuer, Keys: 1, Duration: 5 * time.Millisecond})
	m.KeySetFetch(ctx, core.KeySetFetch{Issuer: issuer, Duration: 2 * time.Second, Err: errors.New("boom")})
	m.IntrospectionSharedCache(ctx, core.IntrospectionSharedCache{Issuer: issuer, Op: aegis.SharedCacheDrop})
	m.IntrospectionCache(ctx, core.IntrospectionCacheLookup{Issuer: issuer})
	m.IntrospectionCall(ctx, core.IntrospectionCall{Issuer: issuer, Active: true})
	m.RateLimit(ctx, core.RateLimitDecision{ClientID: "sync", Allowed: true})
	m.LimitLookup(ctx, core.LimitLookup{ClientID: "sync"})

	units := map[string]string{}
	got := collect(t, reader)
	for name, m := range got {
		units[name] = m.Unit
		assert.NotEmpty(t, m.Description, name)
	}
	assert.Equal(t, map[string]string{
		"aegis.decisions":                   "{decision}",
		"aegis.jwks.fetches":                "{fetch}",
		"aegis.jwks.keys":                   "{key}",
		"aegis.jwks.fetch.duration":         "s",
		"aegis.introspection.cache.lookups": "{lookup}",
		"aegis.introspection.calls":         "{call}",
		"aegis.introspection.call.duration": "s",
		"aegis.introspection.shared_cache":  "{use}",
		"aegis.ratelimit.decisions":         "{decision}",
		"aegis.limit.lookups":               "{lookup}",
		"aegis.limit.lookup.duration":       "s",
	}, units)

	// Durations are in seconds, in buckets from 1 ms to 10 s.
	h := got["aegis.jwks.fetch.duration"].Data.(metricdata.Histogram[float64])
	require.Len(t, h.DataPoints, 1)
	p := h.DataPoints[0]
	assert.Equal(t, []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}, p.Bounds)
	assert.Equal(t, uint64(2), p.Count)
	assert.InDelta(t, 2.005, p.Sum, 1e-9)
	assert.Equal(t, []uint64{0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}, p.BucketCounts)
}

func TestAttributeValuesAreClippedAndValid(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name, value, want string
	}{
		{"short", "sync", "sync"},
		{"exactly the limit", strings.Repeat("a", 128), strings.Repeat("a", 128)},
		{"long", strings.Repeat("a", 500), strings.Repeat("a", 128)},
		// é is two bytes: after 127 a's it would end at byte 129.
		{"clipped on a rune boundary", strings.Repeat("a", 127) + "é", strings.Repeat("a", 127)},
		{"invalid UTF-8", "ab\xffcd", "ab\uFFFDcd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, reader := newMetrics(t, otelmetrics.Config{})
			m.RateLimit(ctx, core.RateLimitDecision{ClientID: tt.value, Allowed: true})
			m.KeySetFetch(ctx, core.KeySetFetch{Issuer: tt.value, Keys: 1})
			got := values(t, reader)
			assert.Equal(t, map[string]float64{"aegis.client_id=" + tt.want + ",aegis.result=allowed": 1},
				got["aegis.ratelimit.decisions"])
			assert.Equal(t, map[string]float64{"aegis.issuer=" + tt.want: 1}, got["aegis.jwks.keys"])
		})
	}
}

// Past the cache's bound, measurements are still right, only dearer.
func TestManyClients(t *testing.T) {
	ctx := context.Background()
	m, reader := newMetrics(t, otelmetrics.Config{}, sdkmetric.WithCardinalityLimit(20_000))
	const clients = 5000
	for round := range 2 {
		for i := range clients {
			m.RateLimit(ctx, core.RateLimitDecision{ClientID: fmt.Sprintf("client-%d", i), Allowed: round == 0})
		}
	}
	got := values(t, reader)["aegis.ratelimit.decisions"]
	require.Len(t, got, 2*clients)
	for i := range clients {
		assert.Equal(t, 1.0, got[fmt.Sprintf("aegis.client_id=client-%d,aegis.result=allowed", i)])
		assert.Equal(t, 1.0, got[fmt.Sprintf("aegis.client_id=client-%d,aegis.result=denied", i)])
	}
}

func TestNew(t *testing.T) {
	m, err := otelmetrics.New(otelmetrics.Config{})
	require.Error(t, err)
	assert.Nil(t, m)
}

// Once a combination has been seen, recording allocates nothing, SDK
// included.
func TestNoAllocations(t *testing.T) {
	ctx := context.Background()
	m, _ := newMetrics(t, otelmetrics.Config{})
	d := core.Decision{Outcome: core.OutcomeAccepted, Reason: aegis.ReasonAccepted,
		Kind: core.KindM2M, Method: core.MethodJWT, ClientID: "sync"}
	rl := core.RateLimitDecision{ClientID: "sync", Allowed: true}
	f := core.KeySetFetch{Issuer: issuer, Keys: 1, Duration: time.Millisecond}
	l := core.LimitLookup{ClientID: "sync", Found: true, Duration: time.Millisecond}
	for name, record := range map[string]func(){
		"Decision":    func() { m.Decision(ctx, d) },
		"RateLimit":   func() { m.RateLimit(ctx, rl) },
		"KeySetFetch": func() { m.KeySetFetch(ctx, f) },
		"LimitLookup": func() { m.LimitLookup(ctx, l) },
	} {
		record()
		assert.Zero(t, testing.AllocsPerRun(100, record), name)
	}
}
