package prommetrics_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/middleware/internal/metricstest"
	"github.com/olympus/aegis/middleware/prommetrics"
)

// TestGuard drives a real Guard with scripted requests and checks what
// Prometheus would scrape.
func TestGuard(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := prommetrics.New(prommetrics.Config{Registerer: reg})
	require.NoError(t, err)
	run := metricstest.Drive(t, m)
	iss := run.Issuer

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP aegis_decisions_total Verdicts on requests by outcome (accepted, refused), reason code and caller kind (none: no token validated).
# TYPE aegis_decisions_total counter
aegis_decisions_total{kind="m2m",outcome="accepted",reason="accepted"} 4
aegis_decisions_total{kind="none",outcome="refused",reason="token_missing"} 1
aegis_decisions_total{kind="none",outcome="refused",reason="token_expired"} 1
aegis_decisions_total{kind="none",outcome="refused",reason="audience_mismatch"} 1
aegis_decisions_total{kind="m2m",outcome="refused",reason="insufficient_scope"} 1
aegis_decisions_total{kind="m2m",outcome="refused",reason="rate_limited"} 1
# HELP aegis_ratelimit_decisions_total Rate-limit charges by client and result (allowed, denied, error).
# TYPE aegis_ratelimit_decisions_total counter
aegis_ratelimit_decisions_total{client_id="limited",result="allowed"} 2
aegis_ratelimit_decisions_total{client_id="limited",result="denied"} 1
# HELP aegis_limit_lookups_total Lookups of a client's rate limit by result (found, default, error).
# TYPE aegis_limit_lookups_total counter
aegis_limit_lookups_total{result="default"} 2
aegis_limit_lookups_total{result="found"} 3
`), "aegis_decisions_total", "aegis_ratelimit_decisions_total", "aegis_limit_lookups_total"))

	// One key-set fetch, counted as the issuer saw it, with its one key.
	require.EqualValues(t, 1, iss.JWKSFetches())
	issuer := prometheus.Labels{"issuer": iss.URL}
	assert.Equal(t, 1.0, gathered(t, reg, "aegis_jwks_fetches_total", prometheus.Labels{"issuer": iss.URL, "result": "success"}))
	assert.Equal(t, 1.0, gathered(t, reg, "aegis_jwks_keys", issuer))
	assert.Equal(t, 1.0, gathered(t, reg, "aegis_jwks_fetch_duration_seconds", issuer))
	assert.Equal(t, 5.0, gathered(t, reg, "aegis_limit_lookup_duration_seconds", nil))
	assert.Equal(t, 1, testutil.CollectAndCount(reg, "aegis_jwks_fetches_total"), "no failed fetch")

	// The scrape names no token, nor any part of one.
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	require.Equal(t, 200, rec.Code)
	scrape := rec.Body.String()
	require.Contains(t, scrape, "aegis_decisions_total")
	for _, token := range run.Tokens {
		for _, part := range strings.Split(token, ".") {
			assert.NotContains(t, scrape, part)
		}
	}
}

// gathered is the value of the series of name with exactly labels: a
// counter's or gauge's value, a histogram's sample count.
func gathered(t *testing.T, g prometheus.Gatherer, name string, labels prometheus.Labels) float64 {
	t.Helper()
	families, err := g.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; !ok || v != l.GetValue() {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}
