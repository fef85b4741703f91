package middleware_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/introspect"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/scopes"
)

// TestStepUp_RFC9470: a route needing acr "mfa" within the last 300 s.
// Tokens that fall short get 401 with error="insufficient_user_authentication"
// and the requirements in the challenge (RFC 9470 §3), and the problem
// body says the same; acr and auth_time are read from the top level or from
// Hydra's ext, for JWTs and introspection answers alike (§4); an M2M token
// never meets the requirement.
func TestStepUp_RFC9470(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	const resourceID = "https://api.example.com"
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Now: clock, Audience: resourceID})
	stepUp := core.StepUp{ACRValues: []string{"mfa"}, MaxAge: 300 * time.Second}
	const (
		acrChallenge = `Bearer realm="api", error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="mfa", max_age="300", resource_metadata="https://api.example.com/.well-known/oauth-protected-resource"`
		ageChallenge = `Bearer realm="api", error="insufficient_user_authentication", error_description="More recent authentication is required", acr_values="mfa", max_age="300", resource_metadata="https://api.example.com/.well-known/oauth-protected-resource"`
		m2mChallenge = `Bearer realm="api", error="insufficient_user_authentication", error_description="The user's authentication does not meet this resource's requirements", acr_values="mfa", max_age="300", resource_metadata="https://api.example.com/.well-known/oauth-protected-resource"`
	)
	fresh, stale := now.Add(-time.Minute).Unix(), now.Add(-10*time.Minute).Unix()
	user := func(set map[string]any) map[string]any {
		c := iss.Claims("user-42", "web-app", "data:read")
		ext := map[string]any{"email": "alice@example.com"}
		for k, v := range set {
			if name, ok := cutExt(k); ok {
				ext[name] = v
				continue
			}
			c[k] = v
		}
		c["ext"] = ext
		return c
	}
	tests := []struct {
		name      string
		claims    map[string]any
		status    int
		challenge string
	}{
		{"acr and auth_time at the top level", user(map[string]any{"acr": "mfa", "auth_time": fresh}), 200, ""},
		{"acr and auth_time in Hydra's ext", user(map[string]any{"ext.acr": "mfa", "ext.auth_time": fresh}), 200, ""},
		{"null at the top level counts as absent", user(map[string]any{"acr": nil, "ext.acr": "mfa", "auth_time": "", "ext.auth_time": fresh}), 200, ""},
		{"no acr", user(map[string]any{"auth_time": fresh}), 401, acrChallenge},
		{"another acr", user(map[string]any{"acr": "pwd", "auth_time": fresh}), 401, acrChallenge},
		{"acr of the wrong type", user(map[string]any{"acr": 2, "auth_time": fresh}), 401, m2mChallenge},
		{"authenticated 10 minutes ago", user(map[string]any{"acr": "mfa", "auth_time": stale}), 401, ageChallenge},
		{"no auth_time", user(map[string]any{"acr": "mfa"}), 401, ageChallenge},
		{"auth_time an hour in the future", user(map[string]any{"acr": "mfa", "auth_time": now.Add(time.Hour).Unix()}), 401, ageChallenge},
		{"an M2M token, even claiming mfa", func() map[string]any {
			c := iss.Claims("worker", "worker", "data:read")
			c["acr"], c["auth_time"] = "mfa", fresh
			return c
		}(), 401, m2mChallenge},
	}
	for _, mode := range []string{"jwt", "introspection"} {
		var v core.Validator
		if mode == "jwt" {
			jwt, err := core.NewJWT(core.JWTConfig{Issuer: iss.URL, Audience: resourceID, Now: clock})
			require.NoError(t, err)
			v = jwt
		} else {
			intro, err := core.NewIntrospection(introspect.Config{Issuer: iss.URL, Audience: resourceID, Endpoint: iss.IntrospectionURL(), Now: clock})
			require.NoError(t, err)
			v = intro
		}
		g, err := middleware.New(middleware.Config{Validator: v, Resource: resourceID, Now: clock, Logger: quiet()})
		require.NoError(t, err)
		h := g.Require(scopes.All("data:read"))(g.RequireUserAuthentication(stepUp)(http.HandlerFunc(ok)))
		for _, tt := range tests {
			t.Run(mode+"/"+tt.name, func(t *testing.T) {
				token := iss.Sign(tt.claims)
				if mode == "introspection" {
					token = iss.Opaque(tt.claims)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, get("/admin", "Bearer "+token))
				require.Equal(t, tt.status, rec.Code, rec.Body.String())
				if tt.status == 200 {
					return
				}
				assert.Equal(t, tt.challenge, rec.Header().Get("WWW-Authenticate"))
				var p middleware.Problem
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
				assert.Equal(t, "insufficient_user_authentication", p.Error)
				assert.Equal(t, "mfa", p.ACRValues)
				assert.Equal(t, int64(300), p.MaxAge)
				assert.Equal(t, "https://api.example.com/.well-known/oauth-protected-resource", p.ResourceMetadata)
			})
		}
	}

	t.Run("alone, it authenticates the request itself", func(t *testing.T) {
		g, err := middleware.New(middleware.Config{Issuer: iss.URL, Resource: resourceID, Now: clock, Logger: quiet()})
		require.NoError(t, err)
		h := g.RequireUserAuthentication(core.StepUp{MaxAge: time.Hour})(http.HandlerFunc(ok))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, get("/admin", ""))
		assert.Equal(t, 401, rec.Code)
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, get("/admin", "Bearer "+iss.Sign(user(map[string]any{"auth_time": stale}))))
		assert.Equal(t, 200, rec.Code, "10 minutes is within the hour; no acr needed")
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, get("/admin", "Bearer "+iss.Sign(user(nil))))
		assert.Equal(t, `Bearer realm="api", error="insufficient_user_authentication", error_description="More recent authentication is required", max_age="3600", resource_metadata="https://api.example.com/.well-known/oauth-protected-resource"`,
			rec.Header().Get("WWW-Authenticate"))
	})
}

// cutExt splits "ext.name" into name.
func cutExt(k string) (string, bool) {
	const p = "ext."
	if len(k) > len(p) && k[:len(p)] == p {
		return k[len(p):], true
	}
	return "", false
}
