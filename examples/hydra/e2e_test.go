package hydra

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/scopes"
)

// TestHydra checks the harness and the Hydra facts that Aegis relies on,
// with no Aegis code involved.
func TestHydra(t *testing.T) {
	h := needHydra(t)

	t.Run("discovery", func(t *testing.T) {
		resp, err := h.hc.Get(h.public + "/.well-known/openid-configuration")
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var d struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&d))
		assert.Equal(t, h.public, d.Issuer)
		assert.Equal(t, h.public+"/.well-known/jwks.json", d.JWKSURI)
	})

	t.Run("m2m token shape", func(t *testing.T) {
		spec := m2mClientSpec("shape-m2m", []string{"data:read", "data:write"}, apiAudience)
		spec["metadata"] = map[string]any{"rate_limit_per_minute": 600}
		c := h.createClient(t, spec)

		var got struct {
			Metadata map[string]any `json:"metadata"`
		}
		h.adminJSON(t, http.MethodGet, "/admin/clients/"+c.ID, nil, http.StatusOK, &got)
		assert.Equal(t, map[string]any{"rate_limit_per_minute": float64(600)}, got.Metadata)

		tok := h.clientCredentials(t, c, []string{"data:read", "data:write"}, apiAudience)
		header, claims := jwtParts(t, tok)
		assert.Equal(t, "RS256", header["alg"])
		assert.Equal(t, "JWT", header["typ"])
		assert.NotEmpty(t, header["kid"])
		assert.Equal(t, h.public, claims["iss"])
		assert.Equal(t, c.ID, claims["sub"])
		assert.Equal(t, c.ID, claims["client_id"])
		assert.Equal(t, []any{apiAudience}, claims["aud"])
		assert.Equal(t, []any{"data:read", "data:write"}, claims["scp"])
		assert.Equal(t, []string{"data:read", "data:write"}, scpWithAegis(t, tok))
		assert.Equal(t, map[string]any{}, claims["ext"])
	})

	t.Run("user token shape", func(t *testing.T) {
		app := h.createClient(t, userClientSpec(h))
		tok := h.userToken(t, app, h.uiBase+"/cb", "user-42", []string{"openid", "data:read"}, apiAudience,
			map[string]any{"email": "alice@example.com"})
		_, claims := jwtParts(t, tok)
		assert.Equal(t, "user-42", claims["sub"])
		assert.Equal(t, app.ID, claims["client_id"])
		assert.Equal(t, []any{apiAudience}, claims["aud"])
		assert.Equal(t, []any{"openid", "data:read"}, claims["scp"])
		assert.Equal(t, []string{"openid", "data:read"}, scpWithAegis(t, tok))
		assert.Equal(t, map[string]any{"email": "alice@example.com"}, claims["ext"])
	})

	t.Run("per-client lifespan", func(t *testing.T) {
		c := h.createClient(t, m2mClientSpec("shape-short", []string{"data:read"}, apiAudience))
		h.adminJSON(t, http.MethodPut, "/admin/clients/"+c.ID+"/lifespans",
			map[string]string{"client_credentials_grant_access_token_lifespan": "3s"}, http.StatusOK, nil)
		tr := h.token(t, c, map[string][]string{"grant_type": {"client_credentials"}, "scope": {"data:read"}, "audience": {apiAudience}})
		// Hydra's exp and expires_in can fall a second or two short of the
		// lifespan (seen: lifespan 4s, exp-iat 3, expires_in 2).
		assert.GreaterOrEqual(t, tr.ExpiresIn, 1)
		assert.LessOrEqual(t, tr.ExpiresIn, 3)
		_, claims := jwtParts(t, tr.AccessToken)
		assert.InDelta(t, 3, claims["exp"].(float64)-claims["iat"].(float64), 1)
	})

	t.Run("key rotation", func(t *testing.T) {
		c := h.createClient(t, m2mClientSpec("shape-rotate", []string{"data:read"}, apiAudience))
		before := kidOf(t, h.clientCredentials(t, c, []string{"data:read"}, apiAudience))
		kid := h.rotateKey(t)
		assert.NotEqual(t, before, kid)
		assert.Equal(t, kid, kidOf(t, h.clientCredentials(t, c, []string{"data:read"}, apiAudience)))
		assert.Subset(t, h.publishedKids(t), []string{before, kid}, "old and new keys are both published")
	})
}

// scpWithAegis parses a Hydra token's scp claim with Aegis's own parser.
func scpWithAegis(t *testing.T, token string) []string {
	t.Helper()
	parts := strings.Split(token, ".")
	require.Len(t, parts, 3)
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var claims map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(payload, &claims))
	set, err := scopes.FromClaim(claims["scp"])
	require.NoError(t, err)
	return set.Strings()
}

func userClientSpec(h *hydraProc) map[string]any {
	return map[string]any{
		"client_name":           "e2e-web-app",
		"grant_types":           []string{"authorization_code"},
		"response_types":        []string{"code"},
		"scope":                 "openid data:read",
		"redirect_uris":         []string{h.uiBase + "/cb"},
		"audience":              []string{apiAudience},
		"access_token_strategy": "jwt",
	}
}

// whoami is the body of examples/server's GET /whoami.
type whoami struct {
	Kind     string   `json:"kind"`
	Subject  string   `json:"subject"`
	ClientID string   `json:"client_id"`
	Scopes   []string `json:"scopes"`
	Email    string   `json:"email"`
}

// requireWhoami asserts a 200 /whoami answer and returns its body.
func requireWhoami(t *testing.T, r response) whoami {
	t.Helper()
	require.Equal(t, http.StatusOK, r.status, "GET /whoami: %s", r)
	assertMediaType(t, r, "application/json")
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(r.body, &raw), "body: %s", r.body)
	for _, k := range []string{"kind", "subject", "client_id", "scopes", "email"} {
		assert.Contains(t, raw, k, "whoami body %s", r.body)
	}
	assert.NotEqual(t, "null", string(raw["scopes"]), "scopes must never be null")
	var w whoami
	require.NoError(t, json.Unmarshal(r.body, &w))
	return w
}

func assertMediaType(t *testing.T, r response, want string) {
	t.Helper()
	mt, _, err := mime.ParseMediaType(r.header.Get("Content-Type"))
	if assert.NoError(t, err, "Content-Type %q", r.header.Get("Content-Type")) {
		assert.Equal(t, want, mt)
	}
}

// assertChallenge asserts an error answer: its status, a problem+json body,
// and a Bearer challenge whose error parameter is wantErr ("" for none: then
// the challenge must carry a realm).
// It returns the challenge's parameters.
func assertChallenge(t *testing.T, r response, status int, wantErr string) map[string]string {
	t.Helper()
	require.Equal(t, status, r.status, "%s", r)
	assertMediaType(t, r, "application/problem+json")
	assert.True(t, json.Valid(r.body), "body is not JSON: %s", r.body)
	values := r.header.Values("WWW-Authenticate")
	// The Bearer challenge first; the server also accepts DPoP (-dpop
	// allow, the default), so a bare DPoP challenge follows it (RFC 9449
	// §7.1).
	require.Len(t, values, 2, "a Bearer and a DPoP challenge")
	assert.True(t, strings.HasPrefix(values[1], "DPoP "), "%s", values[1])
	scheme, params, err := parseChallenge(values[0])
	require.NoError(t, err)
	assert.Equal(t, "bearer", strings.ToLower(scheme), "%s", values[0])
	if wantErr == "" {
		assert.Contains(t, params, "realm", "%s", values[0])
		assert.NotContains(t, params, "error", "%s", values[0])
		assert.NotContains(t, values[0], "error=")
	} else {
		assert.Equal(t, wantErr, params["error"], "%s", values[0])
	}
	return params
}

// TestE2E runs examples/server against Hydra.
func TestE2E(t *testing.T) {
	h, _ := needServer(t)
	t0 := time.Now()
	srv := startServer(t, "server", "-issuer", h.public, "-audience", apiAudience)
	t.Logf("server up in %s", time.Since(t0).Round(time.Millisecond))

	m2mSpec := m2mClientSpec("nightly-data-sync", []string{"data:read", "data:write"}, apiAudience)
	m2mSpec["metadata"] = map[string]any{"rate_limit_per_minute": 600}
	m2m := h.createClient(t, m2mSpec)
	m2mToken := h.clientCredentials(t, m2m, []string{"data:read", "data:write"}, apiAudience)

	// One server per introspecting mode, shared by the opaque-token
	// scenarios (9 to 14).
	introspectionURL := h.admin + "/admin/oauth2/introspect"
	intro := startServer(t, "server-introspect", introspectionFlags(h, "introspect", introspectionURL)...)
	hybrid := startServer(t, "server-hybrid", introspectionFlags(h, "hybrid", introspectionURL)...)
	introServers := []struct {
		mode string
		srv  *server
	}{{"introspect", intro}, {"hybrid", hybrid}}

	opaqueSpec := m2mClientSpec("opaque-data-sync", []string{"data:read", "data:write"}, apiAudience)
	opaqueSpec["access_token_strategy"] = "opaque"
	opaque := h.createClient(t, opaqueSpec)
	opaqueToken := func(t *testing.T) string {
		t.Helper()
		tok := h.clientCredentials(t, opaque, []string{"data:read", "data:write"}, apiAudience)
		require.True(t, strings.HasPrefix(tok, "ory_at_"), "not an opaque Hydra token: %q", tok)
		return tok
	}

	t.Run("0 logs listening line", func(t *testing.T) {
		var line string
		for _, l := range strings.Split(srv.proc.out.String(), "\n") {
			if strings.Contains(l, "msg=listening") {
				line = l
				break
			}
		}
		require.NotEmpty(t, line, "no msg=listening line in the server's log")
		assert.Contains(t, strings.Fields(line), "addr="+srv.addr)
	})

	t.Run("1 m2m client credentials", func(t *testing.T) {
		r := srv.call(t, http.MethodGet, "/data", m2mToken)
		require.Equal(t, http.StatusOK, r.status, "GET /data: %s", r)
		assertMediaType(t, r, "application/json")
		assert.True(t, json.Valid(r.body))

		r = srv.call(t, http.MethodPost, "/data", m2mToken)
		require.Equal(t, http.StatusOK, r.status, "POST /data: %s", r)
		assert.True(t, json.Valid(r.body))

		w := requireWhoami(t, srv.call(t, http.MethodGet, "/whoami", m2mToken))
		assert.Equal(t, "m2m", w.Kind)
		assert.Equal(t, m2m.ID, w.Subject)
		assert.Equal(t, m2m.ID, w.ClientID)
		assert.Subset(t, w.Scopes, []string{"data:read", "data:write"})
		assert.Equal(t, "", w.Email)
	})

	t.Run("2 user via login and consent", func(t *testing.T) {
		app := h.createClient(t, userClientSpec(h))
		tok := h.userToken(t, app, h.uiBase+"/cb", "user-42", []string{"openid", "data:read"}, apiAudience,
			map[string]any{"email": "alice@example.com"})

		w := requireWhoami(t, srv.call(t, http.MethodGet, "/whoami", tok))
		assert.Equal(t, "user", w.Kind)
		assert.Equal(t, "user-42", w.Subject)
		assert.Equal(t, app.ID, w.ClientID)
		assert.ElementsMatch(t, []string{"openid", "data:read"}, w.Scopes)
		assert.Equal(t, "alice@example.com", w.Email)

		r := srv.call(t, http.MethodGet, "/data", tok)
		assert.Equal(t, http.StatusOK, r.status, "GET /data: %s", r)
		params := assertChallenge(t, srv.call(t, http.MethodPost, "/data", tok), http.StatusForbidden, "insufficient_scope")
		assert.Equal(t, "data:write", params["scope"])
	})

	// RFC 9470 §3, §4 on a real Hydra: the consent app puts acr and
	// auth_time in session.access_token, which Hydra carries in ext.
	t.Run("2b step-up on GET /admin", func(t *testing.T) {
		app := h.createClient(t, userClientSpec(h))
		now := time.Now()
		for _, tc := range []struct {
			name    string
			session map[string]any
			status  int
			detail  string
		}{
			{"acr mfa, just authenticated", map[string]any{"acr": "mfa", "auth_time": now.Unix()}, http.StatusOK, ""},
			{"no acr", map[string]any{"auth_time": now.Unix()}, http.StatusUnauthorized, "A different authentication level is required"},
			{"acr mfa, authenticated 10 minutes earlier", map[string]any{"acr": "mfa", "auth_time": now.Add(-10 * time.Minute).Unix()}, http.StatusUnauthorized, "More recent authentication is required"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tc.session["email"] = "alice@example.com"
				tok := h.userToken(t, app, h.uiBase+"/cb", "user-42", []string{"openid", "data:read"}, apiAudience, tc.session)
				r := srv.call(t, http.MethodGet, "/admin", tok)
				if tc.status == http.StatusOK {
					w := requireWhoami(t, r)
					assert.Equal(t, "user-42", w.Subject)
					return
				}
				params := assertChallenge(t, r, tc.status, "insufficient_user_authentication")
				assert.Equal(t, tc.detail, params["error_description"])
				assert.Equal(t, "mfa", params["acr_values"])
				assert.Equal(t, "300", params["max_age"])
			})
		}
	})

	t.Run("3 insufficient scope", func(t *testing.T) {
		readOnly := h.clientCredentials(t, m2m, []string{"data:read"}, apiAudience)

		params := assertChallenge(t, srv.call(t, http.MethodPost, "/data", readOnly), http.StatusForbidden, "insufficient_scope")
		assert.Equal(t, "data:write", params["scope"])

		r := srv.call(t, http.MethodGet, "/data", readOnly)
		assert.Equal(t, http.StatusOK, r.status, "GET /data: %s", r)

		w := requireWhoami(t, srv.call(t, http.MethodGet, "/whoami", readOnly))
		assert.Equal(t, []string{"data:read"}, w.Scopes)
	})

	t.Run("4 missing and invalid tokens", func(t *testing.T) {
		parts := strings.Split(m2mToken, ".")
		require.Len(t, parts, 3)
		flipped := []byte(parts[1])
		i := len(flipped) / 2
		if flipped[i] == 'A' {
			flipped[i] = 'B'
		} else {
			flipped[i] = 'A'
		}
		_, claims := jwtParts(t, m2mToken)
		claims["scp"] = []string{"data:read", "data:write", "admin"}
		forgedClaims, err := json.Marshal(claims)
		require.NoError(t, err)
		enc := base64.RawURLEncoding.EncodeToString

		for _, tc := range []struct {
			name, token, wantErr string
		}{
			{"no token", "", ""},
			{"garbage", "garbage", "invalid_token"},
			{"payload character flipped", parts[0] + "." + string(flipped) + "." + parts[2], "invalid_token"},
			{"claims rewritten", parts[0] + "." + enc(forgedClaims) + "." + parts[2], "invalid_token"},
			{"signature stripped", parts[0] + "." + parts[1] + ".", "invalid_token"},
			{"alg none", enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + ".", "invalid_token"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for _, path := range []string{"/whoami", "/data"} {
					assertChallenge(t, srv.call(t, http.MethodGet, path, tc.token), http.StatusUnauthorized, tc.wantErr)
				}
			})
		}
		// The original token is still good: the failures above are the edits.
		requireWhoami(t, srv.call(t, http.MethodGet, "/whoami", m2mToken))
	})

	t.Run("5 key rotation", func(t *testing.T) {
		c := h.createClient(t, m2mClientSpec("rotation", []string{"data:read"}, apiAudience))
		oldToken := h.clientCredentials(t, c, []string{"data:read"}, apiAudience)
		requireWhoami(t, srv.call(t, http.MethodGet, "/whoami", oldToken)) // the server now caches the current key

		// A second server reads Hydra's JWKS through a counting proxy, so
		// the refetch the new kid causes can be counted.
		var fetches atomic.Int64
		jwksURL := h.public + "/.well-known/jwks.json"
		proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fetches.Add(1)
			resp, err := http.Get(jwksURL)
			if err != nil {
				w.WriteHeader(http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			w.Header().Set("Cache-Control", resp.Header.Get("Cache-Control"))
			w.WriteHeader(resp.StatusCode)
			_, _ = io.Copy(w, resp.Body)
		}))
		defer proxy.Close()
		counted := startServer(t, "server-counted-jwks", "-issuer", h.public, "-audience", apiAudience, "-jwks-url", proxy.URL)
		requireWhoami(t, counted.call(t, http.MethodGet, "/whoami", oldToken))
		require.Equal(t, int64(1), fetches.Load(), "the first request fetches the key set once")

		newKid := h.rotateKey(t)
		newToken := h.clientCredentials(t, c, []string{"data:read"}, apiAudience)
		require.Equal(t, newKid, kidOf(t, newToken))
		require.NotEqual(t, kidOf(t, oldToken), newKid)

		// The unknown kid must make the server refetch the JWKS. The refetch
		// is rate-limited, so allow a bounded wait, but report it.
		t1 := time.Now()
		r := srv.call(t, http.MethodGet, "/whoami", newToken)
		if r.status != http.StatusOK {
			t.Logf("new kid not accepted at once: %s", r)
			deadline := time.Now().Add(90 * time.Second)
			for r.status != http.StatusOK && time.Now().Before(deadline) {
				time.Sleep(500 * time.Millisecond) // polling interval, not synchronisation
				r = srv.call(t, http.MethodGet, "/whoami", newToken)
			}
			t.Logf("new kid accepted after %s", time.Since(t1).Round(time.Millisecond))
		}
		w := requireWhoami(t, r)
		assert.Equal(t, c.ID, w.Subject)

		w = requireWhoami(t, srv.call(t, http.MethodGet, "/whoami", oldToken))
		assert.Equal(t, c.ID, w.Subject, "a token signed by the previous, still published key stays valid")
		requireWhoami(t, srv.call(t, http.MethodGet, "/whoami", m2mToken))

		// Through the counting proxy: the new kid is accepted at once,
		// after exactly one refetch; the old kid needs none.
		w = requireWhoami(t, counted.call(t, http.MethodGet, "/whoami", newToken))
		assert.Equal(t, c.ID, w.Subject)
		assert.Equal(t, int64(2), fetches.Load(), "exactly one refetch for the new kid")
		requireWhoami(t, counted.call(t, http.MethodGet, "/whoami", oldToken))
		requireWhoami(t, counted.call(t, http.MethodGet, "/whoami", newToken))
		assert.Equal(t, int64(2), fetches.Load(), "known kids cause no fetch")
	})

	t.Run("6 expiry", func(t *testing.T) {
		c := h.createClient(t, m2mClientSpec("short-lived", []string{"data:read"}, apiAudience))
		h.adminJSON(t, http.MethodPut, "/admin/clients/"+c.ID+"/lifespans",
			map[string]string{"client_credentials_grant_access_token_lifespan": "3s"}, http.StatusOK, nil)
		tok := h.clientCredentials(t, c, []string{"data:read"}, apiAudience)
		_, claims := jwtParts(t, tok)
		exp := time.Unix(int64(claims["exp"].(float64)), 0)
		require.WithinDuration(t, time.Now().Add(3*time.Second), exp, 2*time.Second)

		requireWhoami(t, srv.call(t, http.MethodGet, "/whoami", tok))

		// Poll until the server rejects the token: after exp plus its clock
		// leeway (30s by default).
		deadline := time.Now().Add(2 * time.Minute)
		var r response
		for {
			r = srv.call(t, http.MethodGet, "/whoami", tok)
			if r.status != http.StatusOK || time.Now().After(deadline) {
				break
			}
			time.Sleep(250 * time.Millisecond) // polling interval, not synchronisation
		}
		rejected := time.Now()
		assertChallenge(t, r, http.StatusUnauthorized, "invalid_token")
		assert.False(t, rejected.Before(exp), "rejected at %s, before exp %s", rejected, exp)
		t.Logf("rejected %s after exp (server leeway)", rejected.Sub(exp).Round(time.Millisecond))
	})

	t.Run("7 audience mismatch", func(t *testing.T) {
		other := startServer(t, "server-other-audience", "-issuer", h.public, "-audience", otherAudience)
		assertChallenge(t, other.call(t, http.MethodGet, "/whoami", m2mToken), http.StatusUnauthorized, "invalid_token")
		assertChallenge(t, other.call(t, http.MethodGet, "/data", m2mToken), http.StatusUnauthorized, "invalid_token")

		// Control: a token for the other audience passes there and only there.
		c := h.createClient(t, m2mClientSpec("other-audience", []string{"data:read"}, otherAudience))
		tok := h.clientCredentials(t, c, []string{"data:read"}, otherAudience)
		w := requireWhoami(t, other.call(t, http.MethodGet, "/whoami", tok))
		assert.Equal(t, c.ID, w.Subject)
		assertChallenge(t, srv.call(t, http.MethodGet, "/whoami", tok), http.StatusUnauthorized, "invalid_token")
	})

	t.Run("8 keys unobtainable", func(t *testing.T) {
		port, err := freePort() // nothing listens there
		require.NoError(t, err)
		dark := startServer(t, "server-no-jwks", "-issuer", h.public, "-audience", apiAudience,
			"-jwks-url", fmt.Sprintf("http://127.0.0.1:%d/.well-known/jwks.json", port))
		r := dark.call(t, http.MethodGet, "/whoami", m2mToken)
		require.Equal(t, http.StatusServiceUnavailable, r.status, "%s", r)
		assertMediaType(t, r, "application/problem+json")
		assert.NotEmpty(t, r.header.Get("Retry-After"), "503 without Retry-After")
	})

	t.Run("9 opaque token by introspection", func(t *testing.T) {
		tok := opaqueToken(t)
		assert.Equal(t, 1, strings.Count(tok, "."), "Hydra's opaque tokens are ory_at_X.Y: %q", tok)
		// A JWT of the M2M client, minted now: a token signed by a key
		// rotated out since (scenario 5) is inactive for Hydra's
		// introspection (scenario 14).
		jwt := h.clientCredentials(t, m2m, []string{"data:read", "data:write"}, apiAudience)

		for _, s := range introServers {
			t.Run(s.mode, func(t *testing.T) {
				r := s.srv.call(t, http.MethodGet, "/data", tok)
				require.Equal(t, http.StatusOK, r.status, "GET /data: %s", r)
				assertMediaType(t, r, "application/json")
				r = s.srv.call(t, http.MethodPost, "/data", tok)
				require.Equal(t, http.StatusOK, r.status, "POST /data: %s", r)

				w := requireWhoami(t, s.srv.call(t, http.MethodGet, "/whoami", tok))
				assert.Equal(t, "m2m", w.Kind)
				assert.Equal(t, opaque.ID, w.Subject)
				assert.Equal(t, opaque.ID, w.ClientID)
				assert.ElementsMatch(t, []string{"data:read", "data:write"}, w.Scopes)
				assert.Equal(t, "", w.Email)

				r = s.srv.call(t, http.MethodGet, "/data", jwt)
				require.Equal(t, http.StatusOK, r.status, "GET /data with a JWT: %s", r)
				w = requireWhoami(t, s.srv.call(t, http.MethodGet, "/whoami", jwt))
				assert.Equal(t, "m2m", w.Kind)
				assert.Equal(t, m2m.ID, w.Subject)
				assert.Equal(t, m2m.ID, w.ClientID)
				assert.ElementsMatch(t, []string{"data:read", "data:write"}, w.Scopes)
			})
		}
	})

	t.Run("10 revocation", func(t *testing.T) {
		t.Run("after use", func(t *testing.T) {
			tok := opaqueToken(t)
			for _, s := range introServers {
				r := s.srv.call(t, http.MethodGet, "/data", tok) // now cached as active
				require.Equal(t, http.StatusOK, r.status, "%s: GET /data before revocation: %s", s.mode, r)
			}
			h.revoke(t, opaque, tok)
			revoked := time.Now()
			require.False(t, h.introspectActive(t, tok), "Hydra still calls the revoked token active")

			// A cached active answer may be served until it is cacheTTL
			// old; after that the server must ask again and refuse.
			deadline := revoked.Add(introspectionCacheTTL + 8*time.Second)
			for _, s := range introServers {
				r := s.srv.pollStatus(t, http.MethodGet, "/data", tok, http.StatusUnauthorized, deadline, 100*time.Millisecond)
				took := time.Since(revoked)
				params := assertChallenge(t, r, http.StatusUnauthorized, "invalid_token")
				assert.Equal(t, inactiveDescription, params["error_description"])
				t.Logf("%s: refused %s after revocation (cache TTL %s)", s.mode, took.Round(time.Millisecond), introspectionCacheTTL)
				assertChallenge(t, s.srv.call(t, http.MethodGet, "/whoami", tok), http.StatusUnauthorized, "invalid_token")
			}
		})

		t.Run("before first use", func(t *testing.T) {
			tok := opaqueToken(t)
			h.revoke(t, opaque, tok)
			for _, s := range introServers {
				for _, path := range []string{"/data", "/whoami"} {
					params := assertChallenge(t, s.srv.call(t, http.MethodGet, path, tok), http.StatusUnauthorized, "invalid_token")
					assert.Equal(t, inactiveDescription, params["error_description"], "%s GET %s", s.mode, path)
				}
			}
		})
	})

	t.Run("11 opaque token in jwt mode", func(t *testing.T) {
		tok := opaqueToken(t)
		for _, path := range []string{"/data", "/whoami"} {
			r := srv.call(t, http.MethodGet, path, tok)
			assertChallenge(t, r, http.StatusUnauthorized, "invalid_token")
			t.Logf("GET %s: %s", path, r.header.Get("WWW-Authenticate"))
		}
		// Control: the same token is good where introspection is on.
		requireWhoami(t, hybrid.call(t, http.MethodGet, "/whoami", tok))
	})

	t.Run("12 introspection unreachable", func(t *testing.T) {
		port, err := freePort() // nothing listens there
		require.NoError(t, err)
		darkURL := fmt.Sprintf("http://127.0.0.1:%d/admin/oauth2/introspect", port)
		tok := opaqueToken(t)
		jwt := h.clientCredentials(t, m2m, []string{"data:read"}, apiAudience)
		for _, mode := range []string{"introspect", "hybrid"} {
			t.Run(mode, func(t *testing.T) {
				dark := startServer(t, "server-"+mode+"-no-introspection", introspectionFlags(h, mode, darkURL)...)
				assertUnavailable := func(r response) {
					t.Helper()
					require.Equal(t, http.StatusServiceUnavailable, r.status, "%s", r)
					assertMediaType(t, r, "application/problem+json")
					assert.Equal(t, "5", r.header.Get("Retry-After"), "%s", r)
				}
				assertUnavailable(dark.call(t, http.MethodGet, "/data", tok))
				assertUnavailable(dark.call(t, http.MethodGet, "/whoami", tok))
				if mode == "hybrid" {
					// JWTs are checked locally: the dead endpoint does not matter.
					w := requireWhoami(t, dark.call(t, http.MethodGet, "/whoami", jwt))
					assert.Equal(t, m2m.ID, w.Subject)
				} else {
					assertUnavailable(dark.call(t, http.MethodGet, "/whoami", jwt))
				}
			})
		}
	})

	t.Run("13 worker", func(t *testing.T) {
		needWorker(t)
		args := []string{"-token-url", h.public + "/oauth2/token", "-client-id", m2m.ID,
			"-api", srv.base, "-calls", "3"}
		run := runWorker(t, []string{"AEGIS_CLIENT_SECRET=" + m2m.Secret}, append(args, "-audience", apiAudience)...)
		require.NoError(t, run.err, "%s", run)
		assert.NotContains(t, run.stdout+run.stderr, m2m.Secret, "the worker printed the client secret")

		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(run.stdout), "\n") {
			if strings.Contains(l, "-> 200") {
				lines = append(lines, l)
			}
		}
		require.Len(t, lines, 6, "%s", run)
		for i, l := range lines {
			round, path := i/2+1, []string{"/data", "/whoami"}[i%2]
			prefix := fmt.Sprintf("call %d: GET %s -> 200 ", round, path)
			require.True(t, strings.HasPrefix(l, prefix), "line %d: want prefix %q, got %q", i+1, prefix, l)
			body := strings.TrimPrefix(l, prefix)
			require.True(t, json.Valid([]byte(body)), "line %d: body is not JSON: %q", i+1, l)
			if path == "/whoami" {
				var w whoami
				require.NoError(t, json.Unmarshal([]byte(body), &w))
				assert.Equal(t, "m2m", w.Kind, "%s", l)
				assert.Equal(t, m2m.ID, w.Subject, "%s", l)
				assert.ElementsMatch(t, []string{"data:read", "data:write"}, w.Scopes, "%s", l)
			}
		}

		// Without -audience Hydra issues a token with an empty aud, which
		// the server refuses: the worker must fail.
		run = runWorker(t, []string{"AEGIS_CLIENT_SECRET=" + m2m.Secret}, args...)
		require.Error(t, run.err, "%s", run)
		assert.NotContains(t, run.stdout, "-> 200", "%s", run)
		assert.Contains(t, run.stderr, "401", "%s", run)
		assert.Contains(t, run.stderr, "invalid_token", "%s", run)
	})

	t.Run("14 rotated-out key under introspection", func(t *testing.T) {
		// Last, because rotating makes the JWT-mode servers refetch keys.
		jwt := h.clientCredentials(t, m2m, []string{"data:read"}, apiAudience)
		require.True(t, h.introspectActive(t, jwt))
		h.rotateKey(t)
		// Hydra's quirk: its introspection calls a JWT signed by the
		// previous (still published) key inactive.
		assert.False(t, h.introspectActive(t, jwt), "Hydra now introspects JWTs of rotated-out keys as active")

		params := assertChallenge(t, intro.call(t, http.MethodGet, "/whoami", jwt), http.StatusUnauthorized, "invalid_token")
		assert.Equal(t, inactiveDescription, params["error_description"])
		w := requireWhoami(t, hybrid.call(t, http.MethodGet, "/whoami", jwt))
		assert.Equal(t, m2m.ID, w.Subject, "hybrid checks JWTs locally against the published keys")
		requireWhoami(t, srv.call(t, http.MethodGet, "/whoami", jwt))
	})

	t.Run("15 metrics after real traffic", func(t *testing.T) {
		port, err := freePort()
		require.NoError(t, err)
		metricsAddr := fmt.Sprintf("127.0.0.1:%d", port)
		observed := startServer(t, "server-metrics", append(introspectionFlags(h, "hybrid", introspectionURL), "-metrics-addr", metricsAddr)...)
		jwt := h.clientCredentials(t, m2m, []string{"data:read"}, apiAudience)
		opaque := opaqueToken(t)
		tampered := jwt[:strings.LastIndexByte(jwt, '.')+1] + strings.Repeat("A", 20)
		steps := []struct {
			token  string
			status int
		}{{jwt, http.StatusOK}, {jwt, http.StatusOK}, {opaque, http.StatusOK}, {tampered, http.StatusUnauthorized}, {"", http.StatusUnauthorized}}
		for i, st := range steps {
			r := observed.call(t, http.MethodGet, "/data", st.token)
			require.Equal(t, st.status, r.status, "step %d: %s", i, r)
		}
		r := (&server{base: "http://" + metricsAddr}).call(t, http.MethodGet, "/metrics", "")
		require.Equal(t, http.StatusOK, r.status, "GET /metrics: %s", r)
		scrape := string(r.body)
		for _, want := range []string{
			`aegis_decisions_total{kind="m2m",outcome="accepted",reason="accepted"} 3`,
			`aegis_decisions_total{kind="none",outcome="refused",reason="signature_invalid"} 1`,
			`aegis_decisions_total{kind="none",outcome="refused",reason="token_missing"} 1`,
			`aegis_jwks_fetches_total{issuer="` + h.public + `",result="success"} 1`,
			`aegis_introspection_calls_total{issuer="` + h.public + `",result="active"} 1`,
			`aegis_introspection_cache_lookups_total{issuer="` + h.public + `",result="miss"} 1`,
		} {
			assert.Contains(t, scrape, want)
		}
		for _, tok := range []string{jwt, opaque} {
			// The last 16 characters: the signature part, which may hold
			// "_" (base64url), so a split could leave a single letter.
			assert.NotContains(t, scrape, tok[len(tok)-16:], "a token in /metrics")
		}
	})
}

// introspectionCacheTTL is the -introspection-cache-ttl of the
// introspecting servers: short, so revocation takes effect within seconds.
const introspectionCacheTTL = 2 * time.Second

// inactiveDescription is the server's error_description for a token the
// introspection endpoint calls inactive (revoked, unknown, rotated out).
const inactiveDescription = "The access token is not active"

// introspectionFlags are examples/server's flags for mode (introspect or
// hybrid) with Hydra's admin introspection endpoint at url.
func introspectionFlags(h *hydraProc, mode, url string) []string {
	return []string{
		"-issuer", h.public, "-audience", apiAudience, "-mode", mode,
		"-introspection-url", url, "-introspection-auth", "none",
		"-introspection-cache-ttl", introspectionCacheTTL.String(),
	}
}
