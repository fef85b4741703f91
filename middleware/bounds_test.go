package middleware_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
)

// boundsWriter is a ResponseWriter that keeps only what the test asserts,
// so that AllocsPerRun counts the Guard's allocations and not a recorder's
// body buffer.
type boundsWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *boundsWriter) Header() http.Header         { return w.h }
func (w *boundsWriter) WriteHeader(status int)      { w.status = status }
func (w *boundsWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
func (w *boundsWriter) reset()                      { clear(w.h); w.status, w.n = 0, 0 }

// TestHugeBearerTokenIsRefusedCheaply sends a 1 MiB token: it must be
// refused as too long before any decoding, hashing into caches or network
// call, with a bounded number of allocations whatever the token's size.
func TestHugeBearerTokenIsRefusedCheaply(t *testing.T) {
	const wantChallenge = `Bearer realm="api", error="invalid_token", error_description="The access token is too long"`
	huge := strings.Repeat("a", 1<<20)

	for _, mode := range []struct {
		name string
		mode mode
	}{
		{"jwt", modeJWT},
		{"hybrid", modeHybrid},
		{"introspect", modeIntrospect},
	} {
		t.Run(mode.name, func(t *testing.T) {
			iss := jwkstest.NewIssuer(t, jwkstest.Config{})
			cfg := setup{Config: middleware.Config{Issuer: iss.URL, Audience: iss.Audience}, Mode: mode.mode}
			if mode.mode != modeJWT {
				cfg.Introspection.Endpoint = iss.IntrospectionURL()
			}
			guard := mustGuard(t, cfg)
			var reached atomic.Int64
			h := guard.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))

			t.Run("Protect", func(t *testing.T) {
				req := httptest.NewRequest(http.MethodGet, "/data", nil)
				req.Header.Set("Authorization", "Bearer "+huge)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				assert.Equal(t, http.StatusUnauthorized, rec.Code)
				assert.Equal(t, wantChallenge, rec.Header().Get("WWW-Authenticate"))
				assert.Contains(t, rec.Body.String(), `"error":"invalid_token"`)
				assert.Less(t, rec.Body.Len(), 1024, "the token must not be echoed")

				w := &boundsWriter{h: http.Header{}}
				allocs := testing.AllocsPerRun(20, func() {
					w.reset()
					h.ServeHTTP(w, req)
				})
				assert.Equal(t, http.StatusUnauthorized, w.status)
				assert.LessOrEqual(t, allocs, 20.0, "allocations per refusal of a 1 MiB token")
				t.Logf("Protect: %.0f allocations per refusal", allocs)
			})

			t.Run("Validate", func(t *testing.T) {
				p, err := guard.Validate(context.Background(), huge)
				require.Error(t, err)
				assert.Nil(t, p)
				var r *aegis.Refusal
				require.True(t, errors.As(err, &r))
				e := middleware.ErrorFor(r)
				assert.Equal(t, http.StatusUnauthorized, e.Status)
				assert.Equal(t, middleware.CodeInvalidToken, e.Code)
				assert.Equal(t, "The access token is too long", e.Description)
				assert.NotContains(t, err.Error(), "aaaa")

				allocs := testing.AllocsPerRun(20, func() {
					_, _ = guard.Validate(context.Background(), huge)
				})
				assert.LessOrEqual(t, allocs, 20.0, "allocations per refusal of a 1 MiB token")
				t.Logf("Validate: %.0f allocations per refusal", allocs)
			})

			assert.Zero(t, reached.Load(), "the handler must never run")
			assert.Zero(t, iss.JWKSFetches(), "no key set fetch for a token refused by length")
			assert.Zero(t, iss.IntrospectionCalls(), "no introspection call for a token refused by length")
		})
	}
}
