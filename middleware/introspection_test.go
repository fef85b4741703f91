package middleware_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/introspect"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/middleware/dpop"
	"github.com/olympus/aegis/ratelimit"
	"github.com/olympus/aegis/scopes"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestModes sends a JWT and an opaque token through each mode.
func TestModes(t *testing.T) {
	tests := []struct {
		mode         mode
		jwtStatus    int
		jwtMethod    middleware.Method
		opaqueStatus int
		calls        int64 // introspection calls for the two requests
	}{
		{mode: modeJWT, jwtStatus: 200, jwtMethod: middleware.MethodJWT, opaqueStatus: 401, calls: 0},
		{mode: modeHybrid, jwtStatus: 200, jwtMethod: middleware.MethodJWT, opaqueStatus: 200, calls: 1},
		{mode: modeIntrospect, jwtStatus: 200, jwtMethod: middleware.MethodIntrospection, opaqueStatus: 200, calls: 2},
	}
	for _, tc := range tests {
		t.Run(string(tc.mode), func(t *testing.T) {
			iss := jwkstest.NewIssuer(t, jwkstest.Config{Now: fixedClock})
			g := mustGuard(t, setup{Config: middleware.Config{Issuer: iss.URL, Audience: iss.Audience, Now: fixedClock, Logger: quiet()}, Mode: tc.mode})
			var got *middleware.Principal
			h := g.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got, _ = middleware.PrincipalFrom(r.Context()) }),
				scopes.All("data:read"))

			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, get("/", "Bearer "+iss.M2M("worker", "data:read")))
			require.Equal(t, tc.jwtStatus, rec.Code)
			assert.Equal(t, tc.jwtMethod, got.Method)

			got = nil
			rec = httptest.NewRecorder()
			h.ServeHTTP(rec, get("/", "Bearer "+iss.OpaqueUser("user-42", "web-app", "alice@example.com", "data:read", "openid")))
			require.Equal(t, tc.opaqueStatus, rec.Code)
			if tc.opaqueStatus == 200 {
				assert.Equal(t, middleware.MethodIntrospection, got.Method)
				assert.Equal(t, middleware.KindUser, got.Kind)
				assert.Equal(t, "alice@example.com", got.Email)
				assert.Equal(t, []string{"data:read", "openid"}, got.Scopes.Strings())
				assert.Equal(t, iss.URL, got.Issuer)
				assert.Equal(t, t0.Add(time.Hour), got.Expiry)
			} else {
				assert.Equal(t, `Bearer realm="api", error="invalid_token", error_description="The access token is malformed"`, rec.Header().Get("WWW-Authenticate"))
			}
			assert.Equal(t, tc.calls, iss.IntrospectionCalls())
		})
	}
}

func newIntrospectingEnv(t *testing.T, m mode, tweak func(*setup)) (*jwkstest.Issuer, http.Handler) {
	t.Helper()
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Now: fixedClock})
	cfg := setup{Config: middleware.Config{Issuer: iss.URL, Audience: iss.Audience, Now: fixedClock, Logger: quiet()}, Mode: m,
		Introspection: introspect.Config{Endpoint: iss.IntrospectionURL()}}
	if tweak != nil {
		tweak(&cfg)
	}
	g := mustGuard(t, cfg)
	return iss, g.Protect(http.HandlerFunc(whoami))
}

func TestOpaqueTokenRefusals(t *testing.T) {
	tests := []struct {
		name       string
		serve      http.HandlerFunc
		token      func(iss *jwkstest.Issuer) string
		status     int
		challenge  string
		retryAfter string
	}{
		{name: "M2M opaque token", token: func(iss *jwkstest.Issuer) string { return iss.OpaqueM2M("worker") }, status: 200},
		{name: "revoked", token: func(iss *jwkstest.Issuer) string {
			tok := iss.OpaqueM2M("worker")
			iss.Revoke(tok)
			return tok
		}, status: 401, challenge: challengePrefix + `The access token is not active"`},
		{name: "never issued", token: func(*jwkstest.Issuer) string { return "ory_at_forged.token" }, status: 401, challenge: challengePrefix + `The access token is not active"`},
		{name: "for another audience", token: func(iss *jwkstest.Issuer) string {
			c := iss.Claims("w", "w")
			c["aud"] = []string{"https://other.test"}
			return iss.Opaque(c)
		}, status: 401, challenge: challengePrefix + `The access token is not meant for this API"`},
		{name: "active as a string", serve: func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `{"active":"true","sub":"w","aud":["https://api.test"]}`)
		}, token: func(iss *jwkstest.Issuer) string { return iss.OpaqueM2M("w") }, status: 503, retryAfter: "5"},
		{name: "server error", serve: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) },
			token: func(iss *jwkstest.Issuer) string { return iss.OpaqueM2M("w") }, status: 503, retryAfter: "5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iss, h := newIntrospectingEnv(t, modeHybrid, nil)
			if tc.serve != nil {
				iss.ServeIntrospectionWith(tc.serve)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, get("/", "Bearer "+tc.token(iss)))
			require.Equal(t, tc.status, rec.Code)
			assert.Equal(t, tc.challenge, rec.Header().Get("WWW-Authenticate"))
			assert.Equal(t, tc.retryAfter, rec.Header().Get("Retry-After"))
			if tc.status == 200 {
				assert.JSONEq(t, `{"kind":"m2m","subject":"worker","client_id":"worker","scopes":[],"email":"","method":"introspection",
					"issuer":"`+iss.URL+`","audience":["https://api.test"],"expiry":`+jsonInt(t0.Add(time.Hour).Unix())+`,"token_id":"`+tokenID(t, rec)+`"}`, rec.Body.String())
			}
		})
	}
}

func TestIntrospectionServerDown(t *testing.T) {
	_, h := newIntrospectingEnv(t, modeIntrospect, func(c *setup) {
		c.Introspection.Endpoint = "http://127.0.0.1:1/introspect"
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, get("/", "Bearer ory_at_abc.def"))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Equal(t, "5", rec.Header().Get("Retry-After"))
	assert.Empty(t, rec.Header().Get("WWW-Authenticate"))
}

// TestNoNetworkCallsForHopelessTokens: junk tokens, and tokens from issuers
// outside the allowlist, are refused before any call in every mode.
func TestNoNetworkCallsForHopelessTokens(t *testing.T) {
	stranger := jwkstest.NewIssuer(t, jwkstest.Config{})
	for _, mode := range []mode{modeJWT, modeHybrid, modeIntrospect} {
		t.Run(string(mode), func(t *testing.T) {
			iss, h := newIntrospectingEnv(t, mode, nil)
			tests := []struct {
				token, challenge string
			}{
				{token: stranger.M2M("w"), challenge: challengePrefix + `The access token is not from a trusted issuer"`},
				{token: `junk"token`, challenge: challengePrefix + `The access token is malformed"`},
				{token: "ééé", challenge: challengePrefix + `The access token is malformed"`},
			}
			for _, tc := range tests {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, get("/", "Bearer "+tc.token))
				require.Equal(t, http.StatusUnauthorized, rec.Code)
				assert.Equal(t, tc.challenge, rec.Header().Get("WWW-Authenticate"))
			}
			assert.Zero(t, iss.IntrospectionCalls())
			assert.Zero(t, iss.JWKSFetches())
			assert.Zero(t, stranger.JWKSFetches())
		})
	}
}

func TestRequireIntrospection(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Now: fixedClock})
	g := mustGuard(t, setup{Config: middleware.Config{Issuer: iss.URL, Audience: iss.Audience, Now: fixedClock, Logger: quiet()},
		Introspection: introspect.Config{Endpoint: iss.IntrospectionURL(), Cache: introspect.CacheConfig{TTL: -1}}})
	var method middleware.Method
	sensitive := g.Authenticate(g.RequireIntrospection()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := middleware.PrincipalFrom(r.Context())
		method = p.Method
	})))

	token := iss.M2M("worker", "data:write")
	rec := httptest.NewRecorder()
	sensitive.ServeHTTP(rec, get("/", "Bearer "+token))
	require.Equal(t, 200, rec.Code)
	assert.Equal(t, middleware.MethodIntrospection, method)
	assert.Equal(t, int64(1), iss.IntrospectionCalls())

	iss.Revoke(token)
	rec = httptest.NewRecorder()
	sensitive.ServeHTTP(rec, get("/", "Bearer "+token))
	require.Equal(t, 401, rec.Code)
	assert.Equal(t, challengePrefix+`The access token is not active"`, rec.Header().Get("WWW-Authenticate"))

	// Plain routes keep validating the JWT locally.
	rec = httptest.NewRecorder()
	g.Protect(http.HandlerFunc(ok)).ServeHTTP(rec, get("/", "Bearer "+token))
	assert.Equal(t, 200, rec.Code)
	assert.Equal(t, int64(2), iss.IntrospectionCalls())

	rec = httptest.NewRecorder()
	sensitive.ServeHTTP(rec, get("/", ""))
	assert.Equal(t, 401, rec.Code)

	// ModeJWT accepts no opaque token, even on a RequireIntrospection route.
	rec = httptest.NewRecorder()
	sensitive.ServeHTTP(rec, get("/", "Bearer "+iss.OpaqueM2M("worker")))
	assert.Equal(t, 401, rec.Code)
	assert.Equal(t, challengePrefix+`The access token is malformed"`, rec.Header().Get("WWW-Authenticate"))

	plain, err := middleware.New(middleware.Config{Issuer: iss.URL, Audience: iss.Audience})
	require.NoError(t, err)
	assert.Panics(t, func() { plain.RequireIntrospection() })
}

func TestSeveralIssuers(t *testing.T) {
	a := jwkstest.NewIssuer(t, jwkstest.Config{Now: fixedClock, Audience: "https://api.a"})
	b := jwkstest.NewIssuer(t, jwkstest.Config{Now: fixedClock, Audience: "https://api.b", Algorithm: "ES256"})
	g := mustGuard(t, setup{Mode: modeHybrid, Config: middleware.Config{Now: fixedClock, Logger: quiet()}, Issuers: []issuerSetup{
		{Issuer: a.URL, Audience: "https://api.a", Introspection: introspect.Config{Endpoint: a.IntrospectionURL()}},
		{Issuer: b.URL, Audience: "https://api.b"},
	}})
	var issuer string
	h := g.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := middleware.PrincipalFrom(r.Context())
		issuer = p.Issuer
	}))
	wrongAud := b.Claims("w", "w")
	wrongAud["aud"] = []string{"https://api.a"}
	tests := []struct {
		name   string
		token  string
		status int
		issuer string
	}{
		{name: "JWT from A", token: a.M2M("w"), status: 200, issuer: a.URL},
		{name: "JWT from B", token: b.M2M("w"), status: 200, issuer: b.URL},
		{name: "B's token for A's audience", token: b.Sign(wrongAud), status: 401},
		{name: "opaque token from A", token: a.OpaqueM2M("w"), status: 200, issuer: a.URL},
		{name: "opaque token from B goes to A and is unknown there", token: b.OpaqueM2M("w"), status: 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			issuer = ""
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, get("/", "Bearer "+tc.token))
			require.Equal(t, tc.status, rec.Code)
			assert.Equal(t, tc.issuer, issuer)
		})
	}
	assert.Zero(t, b.IntrospectionCalls())
}

func TestIntrospectionEndpointDiscovered(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	g := mustGuard(t, setup{Config: middleware.Config{Issuer: iss.URL, Audience: iss.Audience, Logger: quiet()}, Mode: modeIntrospect})
	rec := httptest.NewRecorder()
	g.Protect(http.HandlerFunc(ok)).ServeHTTP(rec, get("/", "Bearer "+iss.OpaqueM2M("w")))
	assert.Equal(t, 200, rec.Code)
}

func TestModeConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  setup
	}{
		{name: "unknown mode", cfg: setup{Config: middleware.Config{Issuer: "https://i.example", Audience: "a"}, Mode: "magic"}},
		{name: "issuer twice", cfg: setup{Issuers: []issuerSetup{{Issuer: "https://i.example", Audience: "a"}, {Issuer: "https://i.example", Audience: "a"}}}},
		{name: "issuer without audience", cfg: setup{Issuers: []issuerSetup{{Issuer: "https://i.example"}}}},
		{name: "bad introspection auth", cfg: setup{Config: middleware.Config{Issuer: "https://i.example", Audience: "a"}, Mode: modeIntrospect,
			Introspection: introspect.Config{Auth: introspect.AuthBasic}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.cfg.newGuard()
			assert.Error(t, err)
		})
	}
}

// TestRequireIntrospectionChargesOtherGuardsPrincipals: a Principal that
// another Guard put in the context was charged (if at all) to that Guard's
// limits; RequireIntrospection charges it to its own and records its own
// acceptance.
// TestRequireIntrospectionAloneKeepsJWTOnly: a JWT-only Guard whose
// RequireIntrospection route is not behind Authenticate still refuses
// opaque tokens, without asking the issuer.
func TestRequireIntrospectionAloneKeepsJWTOnly(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Now: fixedClock})
	g := mustGuard(t, setup{Config: middleware.Config{Issuer: iss.URL, Audience: iss.Audience, Now: fixedClock, Logger: quiet()},
		Introspection: introspect.Config{Endpoint: iss.IntrospectionURL(), Cache: introspect.CacheConfig{TTL: -1}}})
	sensitive := g.RequireIntrospection()(http.HandlerFunc(ok))
	tests := []struct {
		name      string
		token     string
		status    int
		challenge string
		calls     int64
	}{
		{"opaque token refused as by the JWT-only validator", iss.OpaqueM2M("worker"), 401, challengePrefix + `The access token is malformed"`, 0},
		{"a JWT is confirmed by the issuer", iss.M2M("worker"), 200, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			sensitive.ServeHTTP(rec, get("/", "Bearer "+tt.token))
			assert.Equal(t, tt.status, rec.Code)
			assert.Equal(t, tt.challenge, rec.Header().Get("WWW-Authenticate"))
			assert.Equal(t, tt.calls, iss.IntrospectionCalls())
		})
	}
}

func TestRequireIntrospectionChargesOtherGuardsPrincipals(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Now: fixedClock})
	outer, err := middleware.New(middleware.Config{Issuer: iss.URL, Audience: iss.Audience, Now: fixedClock, Logger: quiet()})
	require.NoError(t, err)
	metrics := &recordedMetrics{}
	inner := mustGuard(t, setup{Config: middleware.Config{Issuer: iss.URL, Audience: iss.Audience, Now: fixedClock, Logger: quiet(), Observer: metrics,
		RateLimit: &middleware.RateLimitConfig{Default: 1, Store: ratelimit.NewMemoryStore(ratelimit.MemoryConfig{Now: fixedClock})}},
		Introspection: introspect.Config{Endpoint: iss.IntrospectionURL()}})
	h := outer.Authenticate(inner.RequireIntrospection()(http.HandlerFunc(ok)))
	token := iss.M2M("worker")
	for _, want := range []int{http.StatusOK, http.StatusTooManyRequests} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, get("/", "Bearer "+token))
		assert.Equal(t, want, rec.Code)
	}
	metrics.mu.Lock()
	defer metrics.mu.Unlock()
	require.Len(t, metrics.decisions, 2)
	assert.Equal(t, core.OutcomeAccepted, metrics.decisions[0].Outcome)
	assert.Equal(t, aegis.ReasonRateLimited, metrics.decisions[1].Reason)
}

// TestRequireIntrospectionAppliesItsRoutesDPoPPolicy: a Principal another
// RequireIntrospection of the Guard admitted is not introspected again,
// but a stricter DPoP policy of the later route still applies.
func TestRequireIntrospectionAppliesItsRoutesDPoPPolicy(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Now: fixedClock})
	g := mustGuard(t, setup{Config: middleware.Config{Issuer: iss.URL, Audience: iss.Audience, Now: fixedClock, Logger: quiet()},
		Introspection: introspect.Config{Endpoint: iss.IntrospectionURL(), Cache: introspect.CacheConfig{TTL: -1}}})
	token := iss.M2M("worker", "data:write")
	tests := []struct {
		name   string
		second *middleware.Guard
		status int
	}{
		{"same policy", g, 200},
		{"stricter policy: only DPoP", g.WithDPoP(dpop.Require), 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := iss.IntrospectionCalls()
			h := g.RequireIntrospection()(tt.second.RequireIntrospection()(http.HandlerFunc(ok)))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, get("/", "Bearer "+token))
			assert.Equal(t, tt.status, rec.Code)
			assert.Equal(t, before+1, iss.IntrospectionCalls(), "introspected once")
			if tt.status == 401 {
				assert.Contains(t, rec.Header().Values("WWW-Authenticate")[0], "Only DPoP-bound access tokens are accepted here")
			}
		})
	}
}
