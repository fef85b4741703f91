// Package metricstest drives a real Guard through the scripted requests
// whose metrics both adapters' tests check, so that they check the same
// traffic.
package metricstest

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/ratelimit"
	"github.com/olympus/aegis/scopes"
)

// Run is what Drive sent.
type Run struct {
	// Issuer issued the tokens; its JWKSFetches tells how often the Guard
	// fetched keys.
	Issuer *jwkstest.Issuer
	// Tokens are every token sent, for checks that none is reported.
	Tokens []string
}

// Drive sends eight requests through a Guard reporting to m: no token, a
// valid M2M token, an expired one, one for another audience, a valid token
// without the scope a POST needs (Authenticate accepts, Require refuses),
// and three from a client limited to 2 (200, 200, 429). Each status is
// checked. The decisions to expect: accepted m2m 4; token_missing,
// token_expired, audience_mismatch 1 each (kind none); insufficient_scope
// and rate_limited 1 each (m2m); rate limit allowed 2 and denied 1 for
// "limited"; limit lookups found 3, default 2; one key-set fetch.
func Drive(t testing.TB, m core.Observer) Run {
	t.Helper()
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	guard, err := middleware.New(middleware.Config{
		Issuer: iss.URL, Audience: iss.Audience, Observer: m,
		Logger: slog.New(slog.DiscardHandler),
		// "limited" may make 2 requests at once; everyone else is unlimited.
		RateLimit: &middleware.RateLimitConfig{Limits: ratelimit.Static{"limited": 2}},
	})
	require.NoError(t, err)

	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
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
	return Run{Issuer: iss, Tokens: []string{valid, limited, expired, wrongAudience}}
}
