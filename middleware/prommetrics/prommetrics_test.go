package prommetrics_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/middleware/core"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/middleware/prommetrics"
)

const issuer = "https://athena.example.com"

func newMetrics(t *testing.T, cfg prommetrics.Config) (*prommetrics.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	if cfg.DurationBuckets == nil {
		cfg.DurationBuckets = []float64{0.01, 0.1}
	}
	m, err := prommetrics.New(cfg)
	require.NoError(t, err)
	return m, reg
}

func TestEvents(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")
	tests := []struct {
		name   string
		cfg    prommetrics.Config
		feed   func(m *prommetrics.Metrics)
		metric []string
		want   string
	}{
		{
			name: "decisions",
			feed: func(m *prommetrics.Metrics) {
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
			metric: []string{"aegis_decisions_total"},
			want: `
# HELP aegis_decisions_total Verdicts on requests by outcome (accepted, refused), reason code and caller kind (none: no token validated).
# TYPE aegis_decisions_total counter
aegis_decisions_total{kind="m2m",outcome="accepted",reason="accepted"} 2
aegis_decisions_total{kind="user",outcome="accepted",reason="accepted"} 1
aegis_decisions_total{kind="none",outcome="refused",reason="token_missing"} 2
aegis_decisions_total{kind="m2m",outcome="refused",reason="insufficient_scope"} 1
`,
		},
		{
			name: "key-set fetches",
			feed: func(m *prommetrics.Metrics) {
				m.KeySetFetch(ctx, core.KeySetFetch{Issuer: issuer, Keys: 2, Duration: 5 * time.Millisecond})
				m.KeySetFetch(ctx, core.KeySetFetch{Issuer: issuer, Keys: 3, Duration: 50 * time.Millisecond})
				// A failure counts and is timed, but leaves the gauge alone.
				m.KeySetFetch(ctx, core.KeySetFetch{Issuer: issuer, Duration: 2 * time.Second, Err: boom})
			},
			metric: []string{"aegis_jwks_fetches_total", "aegis_jwks_keys", "aegis_jwks_fetch_duration_seconds"},
			want: `
# HELP aegis_jwks_fetches_total Key-set fetches by issuer and result (success, failure).
# TYPE aegis_jwks_fetches_total counter
aegis_jwks_fetches_total{issuer="https://athena.example.com",result="failure"} 1
aegis_jwks_fetches_total{issuer="https://athena.example.com",result="success"} 2
# HELP aegis_jwks_keys Usable keys in the issuer's key set at its last successful fetch.
# TYPE aegis_jwks_keys gauge
aegis_jwks_keys{issuer="https://athena.example.com"} 3
# HELP aegis_jwks_fetch_duration_seconds Time taken by key-set fetches, failed ones included.
# TYPE aegis_jwks_fetch_duration_seconds histogram
aegis_jwks_fetch_duration_seconds_bucket{issuer="https://athena.example.com",le="0.01"} 1
aegis_jwks_fetch_duration_seconds_bucket{issuer="https://athena.example.com",le="0.1"} 2
aegis_jwks_fetch_duration_seconds_bucket{issuer="https://athena.example.com",le="+Inf"} 3
aegis_jwks_fetch_duration_seconds_sum{issuer="https://athena.example.com"} 2.055
aegis_jwks_fetch_duration_seconds_count{issuer="https://athena.example.com"} 3
`,
		},
		{
			name: "introspection",
			feed: func(m *prommetrics.Metrics) {
				m.IntrospectionCache(ctx, core.IntrospectionCacheLookup{Issuer: issuer, Hit: true})
				m.IntrospectionCache(ctx, core.IntrospectionCacheLookup{Issuer: issuer, Hit: true})
				m.IntrospectionCache(ctx, core.IntrospectionCacheLookup{Issuer: issuer})
				m.IntrospectionCall(ctx, core.IntrospectionCall{Issuer: issuer, Active: true, Duration: 20 * time.Millisecond})
				m.IntrospectionCall(ctx, core.IntrospectionCall{Issuer: issuer, Duration: 5 * time.Millisecond})
				m.IntrospectionCall(ctx, core.IntrospectionCall{Issuer: issuer, Duration: time.Second, Err: boom})
				m.IntrospectionSharedCache(ctx, core.IntrospectionSharedCache{Issuer: issuer, Op: aegis.SharedCacheGet, Hit: true})
				m.IntrospectionSharedCache(ctx, core.IntrospectionSharedCache{Issuer: issuer, Op: aegis.SharedCacheSet, Err: boom})
			},
			metric: []string{"aegis_introspection_cache_lookups_total", "aegis_introspection_calls_total",
				"aegis_introspection_call_duration_seconds", "aegis_introspection_shared_cache_total"},
			want: `
# HELP aegis_introspection_cache_lookups_total Introspection cache lookups by issuer and result (hit, miss).
# TYPE aegis_introspection_cache_lookups_total counter
aegis_introspection_cache_lookups_total{issuer="https://athena.example.com",result="hit"} 2
aegis_introspection_cache_lookups_total{issuer="https://athena.example.com",result="miss"} 1
# HELP aegis_introspection_calls_total Introspection calls by issuer and result (active, inactive, error).
# TYPE aegis_introspection_calls_total counter
aegis_introspection_calls_total{issuer="https://athena.example.com",result="active"} 1
aegis_introspection_calls_total{issuer="https://athena.example.com",result="error"} 1
aegis_introspection_calls_total{issuer="https://athena.example.com",result="inactive"} 1
# HELP aegis_introspection_call_duration_seconds Time taken by introspection calls, failed ones included.
# TYPE aegis_introspection_call_duration_seconds histogram
aegis_introspection_call_duration_seconds_bucket{issuer="https://athena.example.com",le="0.01"} 1
aegis_introspection_call_duration_seconds_bucket{issuer="https://athena.example.com",le="0.1"} 2
aegis_introspection_call_duration_seconds_bucket{issuer="https://athena.example.com",le="+Inf"} 3
aegis_introspection_call_duration_seconds_sum{issuer="https://athena.example.com"} 1.025
aegis_introspection_call_duration_seconds_count{issuer="https://athena.example.com"} 3
# HELP aegis_introspection_shared_cache_total Uses of the introspection cache shared among replicas by issuer, op (get, set, drop) and result (hit, miss, ok, error).
# TYPE aegis_introspection_shared_cache_total counter
aegis_introspection_shared_cache_total{issuer="https://athena.example.com",op="get",result="hit"} 1
aegis_introspection_shared_cache_total{issuer="https://athena.example.com",op="set",result="error"} 1
`,
		},
		{
			name: "rate limits by client",
			feed: func(m *prommetrics.Metrics) {
				m.RateLimit(ctx, core.RateLimitDecision{ClientID: "sync", Allowed: true})
				m.RateLimit(ctx, core.RateLimitDecision{ClientID: "sync", Allowed: true})
				m.RateLimit(ctx, core.RateLimitDecision{ClientID: "sync"})
				m.RateLimit(ctx, core.RateLimitDecision{ClientID: "web", Allowed: true, Err: boom})
			},
			metric: []string{"aegis_ratelimit_decisions_total"},
			want: `
# HELP aegis_ratelimit_decisions_total Rate-limit charges by client and result (allowed, denied, error).
# TYPE aegis_ratelimit_decisions_total counter
aegis_ratelimit_decisions_total{client_id="sync",result="allowed"} 2
aegis_ratelimit_decisions_total{client_id="sync",result="denied"} 1
aegis_ratelimit_decisions_total{client_id="web",result="error"} 1
`,
		},
		{
			name: "rate limits without client_id",
			cfg:  prommetrics.Config{OmitClientID: true},
			feed: func(m *prommetrics.Metrics) {
				m.RateLimit(ctx, core.RateLimitDecision{ClientID: "sync", Allowed: true})
				m.RateLimit(ctx, core.RateLimitDecision{ClientID: "web", Allowed: true})
				m.RateLimit(ctx, core.RateLimitDecision{ClientID: "web"})
			},
			metric: []string{"aegis_ratelimit_decisions_total"},
			want: `
# HELP aegis_ratelimit_decisions_total Rate-limit charges by client and result (allowed, denied, error).
# TYPE aegis_ratelimit_decisions_total counter
aegis_ratelimit_decisions_total{result="allowed"} 2
aegis_ratelimit_decisions_total{result="denied"} 1
`,
		},
		{
			name: "limit lookups",
			feed: func(m *prommetrics.Metrics) {
				m.LimitLookup(ctx, core.LimitLookup{ClientID: "sync", Found: true, Duration: time.Millisecond})
				m.LimitLookup(ctx, core.LimitLookup{ClientID: "web", Duration: 30 * time.Millisecond})
				m.LimitLookup(ctx, core.LimitLookup{ClientID: "web", Duration: 500 * time.Millisecond, Err: boom})
			},
			metric: []string{"aegis_limit_lookups_total", "aegis_limit_lookup_duration_seconds"},
			want: `
# HELP aegis_limit_lookups_total Lookups of a client's rate limit by result (found, default, error).
# TYPE aegis_limit_lookups_total counter
aegis_limit_lookups_total{result="default"} 1
aegis_limit_lookups_total{result="error"} 1
aegis_limit_lookups_total{result="found"} 1
# HELP aegis_limit_lookup_duration_seconds Time taken by lookups of a client's rate limit.
# TYPE aegis_limit_lookup_duration_seconds histogram
aegis_limit_lookup_duration_seconds_bucket{le="0.01"} 1
aegis_limit_lookup_duration_seconds_bucket{le="0.1"} 2
aegis_limit_lookup_duration_seconds_bucket{le="+Inf"} 3
aegis_limit_lookup_duration_seconds_sum 0.531
aegis_limit_lookup_duration_seconds_count 3
`,
		},
		{
			name: "namespace",
			cfg:  prommetrics.Config{Namespace: "gateway"},
			feed: func(m *prommetrics.Metrics) {
				m.Decision(ctx, core.Decision{Outcome: core.OutcomeRefused, Reason: "token_expired", Class: aegis.ClassInvalid})
			},
			metric: []string{"gateway_decisions_total"},
			want: `
# HELP gateway_decisions_total Verdicts on requests by outcome (accepted, refused), reason code and caller kind (none: no token validated).
# TYPE gateway_decisions_total counter
gateway_decisions_total{kind="none",outcome="refused",reason="token_expired"} 1
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, reg := newMetrics(t, tt.cfg)
			tt.feed(m)
			require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(tt.want), tt.metric...))
		})
	}
}

func TestLabelValuesAreClippedAndValid(t *testing.T) {
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
			require.True(t, utf8.ValidString(tt.want))
			require.LessOrEqual(t, len(tt.want), prommetrics.MaxLabelLength)
			m, reg := newMetrics(t, prommetrics.Config{})
			require.NotPanics(t, func() {
				m.RateLimit(ctx, core.RateLimitDecision{ClientID: tt.value, Allowed: true})
				m.KeySetFetch(ctx, core.KeySetFetch{Issuer: tt.value, Keys: 1})
			})
			want := fmt.Sprintf(`
# HELP aegis_ratelimit_decisions_total Rate-limit charges by client and result (allowed, denied, error).
# TYPE aegis_ratelimit_decisions_total counter
aegis_ratelimit_decisions_total{client_id=%[1]q,result="allowed"} 1
# HELP aegis_jwks_keys Usable keys in the issuer's key set at its last successful fetch.
# TYPE aegis_jwks_keys gauge
aegis_jwks_keys{issuer=%[1]q} 1
`, tt.want)
			require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want),
				"aegis_ratelimit_decisions_total", "aegis_jwks_keys"))
		})
	}
}

func TestNew(t *testing.T) {
	t.Run("a Registerer is required", func(t *testing.T) {
		m, err := prommetrics.New(prommetrics.Config{})
		require.Error(t, err)
		assert.Nil(t, m)
	})
	t.Run("registering twice", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		_, err := prommetrics.New(prommetrics.Config{Registerer: reg})
		require.NoError(t, err)
		_, err = prommetrics.New(prommetrics.Config{Registerer: reg})
		var already prometheus.AlreadyRegisteredError
		require.ErrorAs(t, err, &already)
		assert.NotNil(t, already.ExistingCollector)
	})
	t.Run("a failed New leaves nothing registered", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		// Take one of the last names so that the collectors before it
		// register first and have to be undone.
		taken := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aegis_limit_lookups_total",
			Help: "Lookups of a client's rate limit by result (found, default, error)."}, []string{"result"})
		require.NoError(t, reg.Register(taken))
		_, err := prommetrics.New(prommetrics.Config{Registerer: reg})
		require.ErrorAs(t, err, new(prometheus.AlreadyRegisteredError))
		require.True(t, reg.Unregister(taken))
		_, err = prommetrics.New(prommetrics.Config{Registerer: reg})
		require.NoError(t, err, "the first attempt left collectors behind")
	})
	for _, ns := range []string{"not a name", "1st", "a-b", "a:b"} {
		t.Run("invalid namespace "+ns, func(t *testing.T) {
			_, err := prommetrics.New(prommetrics.Config{Registerer: prometheus.NewRegistry(), Namespace: ns})
			require.Error(t, err)
		})
	}
}
