package middleware_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/scopes"
)

// TestResourceMetadataInChallenges: with Config.Resource, every challenge
// carries resource_metadata (RFC 9728 §5.1) after the RFC 6750 §3
// parameters, and the audience is the resource identifier (RFC 8707 §2):
// a token for another resource is refused.
func TestResourceMetadataInChallenges(t *testing.T) {
	const resourceID = "https://api.example.com/v1"
	const meta = `resource_metadata="https://api.example.com/.well-known/oauth-protected-resource/v1"`
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Audience: resourceID})
	g, err := middleware.New(middleware.Config{Issuer: iss.URL, Resource: resourceID, Logger: quiet()})
	require.NoError(t, err)
	h := g.Protect(http.HandlerFunc(ok), scopes.All("data:write"))
	other := jwkstest.NewIssuer(t, jwkstest.Config{Audience: "https://other.example.com"})
	tests := []struct {
		name      string
		header    string
		status    int
		challenge string
	}{
		{"no token", "", 401, `Bearer realm="api", ` + meta},
		{"malformed header", "Bearer a b", 400, `Bearer realm="api", error="invalid_request", error_description="The Authorization header is malformed", ` + meta},
		{"expired token", "Bearer " + iss.Expired("worker", "data:write"), 401, `Bearer realm="api", error="invalid_token", error_description="The access token expired", ` + meta},
		{"missing scope", "Bearer " + iss.M2M("worker", "data:read"), 403, `Bearer realm="api", error="insufficient_scope", error_description="The access token does not grant the scope this resource needs", scope="data:write", ` + meta},
		{"token for another resource (RFC 8707)", "Bearer " + iss.SignWith(iss.CurrentKey(), nil, withAudience(iss.Claims("worker", "worker", "data:write"), "https://other.example.com")), 401, ""},
		{"another issuer's token", "Bearer " + other.M2M("worker", "data:write"), 401, ""},
		{"the resource's own token", "Bearer " + iss.M2M("worker", "data:write"), 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/data", nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(t, tt.status, rec.Code, rec.Body.String())
			got := rec.Header().Get("WWW-Authenticate")
			if tt.status == 200 {
				assert.Empty(t, got)
				return
			}
			assert.Contains(t, got, meta)
			if tt.challenge != "" {
				assert.Equal(t, tt.challenge, got)
			}
		})
	}
	_, err = middleware.New(middleware.Config{Issuer: iss.URL, Resource: "http://api.example.com"})
	assert.ErrorContains(t, err, "Config.Resource", "RFC 9728 §1.2: an https identifier")
}

func withAudience(c map[string]any, aud string) map[string]any {
	c["aud"] = []string{aud}
	return c
}
