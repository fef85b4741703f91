package otelmetrics_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/olympus/aegis/middleware/internal/metricstest"
	"github.com/olympus/aegis/middleware/otelmetrics"
)

// TestGuard drives a real Guard with scripted requests and checks what a
// reader collects.
func TestGuard(t *testing.T) {
	m, reader := newMetrics(t, otelmetrics.Config{})
	run := metricstest.Drive(t, m)
	iss := run.Issuer

	require.EqualValues(t, 1, iss.JWKSFetches())
	issuer := "aegis.issuer=" + iss.URL
	assert.Equal(t, map[string]map[string]float64{
		"aegis.decisions": {
			"aegis.kind=m2m,aegis.outcome=accepted,aegis.reason=accepted":          4,
			"aegis.kind=none,aegis.outcome=refused,aegis.reason=token_missing":     1,
			"aegis.kind=none,aegis.outcome=refused,aegis.reason=token_expired":     1,
			"aegis.kind=none,aegis.outcome=refused,aegis.reason=audience_mismatch": 1,
			"aegis.kind=m2m,aegis.outcome=refused,aegis.reason=insufficient_scope": 1,
			"aegis.kind=m2m,aegis.outcome=refused,aegis.reason=rate_limited":       1,
		},
		"aegis.jwks.fetches":          {issuer + ",aegis.result=success": 1},
		"aegis.jwks.keys":             {issuer: 1},
		"aegis.jwks.fetch.duration":   {issuer: 1},
		"aegis.ratelimit.decisions":   {"aegis.client_id=limited,aegis.result=allowed": 2, "aegis.client_id=limited,aegis.result=denied": 1},
		"aegis.limit.lookups":         {"aegis.result=default": 2, "aegis.result=found": 3},
		"aegis.limit.lookup.duration": {"": 5},
	}, values(t, reader))

	// Nothing collected names a token, nor any part of one.
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	dump := fmt.Sprintf("%+v", rm)
	require.Contains(t, dump, "aegis.decisions")
	for _, token := range run.Tokens {
		for _, part := range strings.Split(token, ".") {
			assert.NotContains(t, dump, part)
		}
	}
}
