package otelmetrics_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/otelmetrics"
	"github.com/olympus/aegis/ratelimit"
	"github.com/olympus/aegis/scopes"
)

// TestGuard drives a real Guard with scripted requests and checks what a
// reader collects.
func TestGuard(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	m, reader := newMetrics(t, otelmetrics.Config{})
	guard, err := middleware.New(middleware.Config{
		Issuer: iss.URL, Audience: iss.Audience, HTTPClient: iss.Client(), Metrics: m,
		Logger: slog.New(slog.DiscardHandler),
		// "limited" may make 2 requests at once; everyone else is unlimited.
		RateLimit: &middleware.RateLimitConfig{Limits: ratelimit.Static{"limited": 2}},
	})
	require.NoError(t, err)

	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux := http.NewServeMux()
	mux.Handle("GET /data", guard.Authenticate(ok))
	mux.Handle("POST /data", guard.Authenticate(guard.Require(scopes.All("data:write"))(ok)))

	valid := iss.M2M("nightly-data-sync", "data:read")
	limited := iss.M2M("limited", "data:read")
	expired := iss.Expired("nightly-data-sync", "data:read")
	wrongAudience := iss.WrongAudience("nightly-data-sync", "data:read")
	script := []struct {
		method, token string
		status        int
	}{
		{"GET", "", 401},
		{"GET", valid, 200},
		{"GET", expired, 401},
		{"GET", wrongAudience, 401},
		{"POST", valid, 403}, // Authenticate accepts, Require refuses
		{"GET", limited, 200},
		{"GET", limited, 200},
		{"GET", limited, 429},
	}
	for i, step := range script {
		req := httptest.NewRequest(step.method, "/data", nil)
		if step.token != "" {
			req.Header.Set("Authorization", "Bearer "+step.token)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		require.Equal(t, step.status, rec.Code, "step %d: %s", i, rec.Body)
	}

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
	for _, token := range []string{valid, limited, expired, wrongAudience} {
		for _, part := range strings.Split(token, ".") {
			assert.NotContains(t, dump, part)
		}
	}
}
