package main

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/ratelimit"
)

// identity is the five identity headers of an allowed answer.
type identity struct{ subject, clientID, kind, scopes, email string }

func identityOf(h http.Header) identity {
	return identity{h.Get(HeaderSubject), h.Get(HeaderClientID), h.Get(HeaderKind), h.Get(HeaderScopes), h.Get(HeaderEmail)}
}

// TestDecisions: one table of outcomes, asked through forward auth,
// Envoy's HTTP ext_authz and Envoy's gRPC ext_authz.
func TestDecisions(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	svc := newTestService(t, iss, issueRoutes, PolicyDeny, nil)
	reader := iss.M2M("reader", "data:read")
	writer := iss.M2M("writer", "data:read", "data:write")
	admin := iss.M2M("ops", "admin")
	user := iss.User("user-42", "web-app", "alice@example.com", "openid", "data:read")
	bare := iss.M2M("bare")
	const noRule = "No route rule allows this request"
	tests := []struct {
		name      string
		method    string
		uri       string
		header    http.Header
		status    int
		identity  identity
		challenge string
		detail    string
		// notDirect: Go's HTTP server answers such a request line
		// itself (400, text/plain) before any handler sees it.
		notDirect bool
	}{
		{name: "read with data:read", method: "GET", uri: "/data", header: bearer(reader), status: 200,
			identity: identity{"reader", "reader", "m2m", "data:read", ""}},
		{name: "the query is not matched", method: "GET", uri: "/data?page=2&sort=asc", header: bearer(reader), status: 200,
			identity: identity{"reader", "reader", "m2m", "data:read", ""}},
		{name: "escaped path decoded before matching", method: "GET", uri: "/d%61ta", header: bearer(reader), status: 200,
			identity: identity{"reader", "reader", "m2m", "data:read", ""}},
		{name: "write with data:write", method: "POST", uri: "/data", header: bearer(writer), status: 200,
			identity: identity{"writer", "writer", "m2m", "data:read data:write", ""}},
		{name: "write without data:write", method: "POST", uri: "/data", header: bearer(reader), status: 403,
			challenge: `Bearer realm="api", error="insufficient_scope", error_description="The access token does not grant the scope this resource needs", scope="data:write"`},
		{name: "no token", method: "GET", uri: "/data", status: 401, challenge: `Bearer realm="api"`},
		{name: "another scheme is no token", method: "GET", uri: "/data", header: http.Header{"Authorization": {"Basic dXNlcjpwdw=="}},
			status: 401, challenge: `Bearer realm="api"`},
		{name: "garbage token", method: "GET", uri: "/whoami", header: bearer("garbage"), status: 401,
			challenge: `Bearer realm="api", error="invalid_token", error_description="The access token is malformed"`},
		{name: "expired token", method: "GET", uri: "/whoami", header: bearer(iss.Expired("w")), status: 401,
			challenge: `Bearer realm="api", error="invalid_token", error_description="The access token expired"`},
		{name: "wrong audience", method: "GET", uri: "/whoami", header: bearer(iss.WrongAudience("w")), status: 401,
			challenge: `Bearer realm="api", error="invalid_token", error_description="The access token is not meant for this API"`},
		{name: "token in the query refused", method: "GET", uri: "/data?access_token=" + reader, status: 400,
			challenge: `Bearer realm="api", error="invalid_request", error_description="Access tokens in the URL query are not accepted"`},
		{name: "prefix, any scope: admin", method: "GET", uri: "/reports/2026/q3", header: bearer(admin), status: 200,
			identity: identity{"ops", "ops", "m2m", "admin", ""}},
		{name: "prefix, any scope: neither", method: "DELETE", uri: "/reports/q3", header: bearer(reader), status: 403,
			challenge: `Bearer realm="api", error="insufficient_scope", error_description="The access token does not grant the scope this resource needs", scope="reports:read admin"`},
		{name: "a prefix rule does not match its bare path", method: "GET", uri: "/reports", header: bearer(admin), status: 403, detail: noRule},
		{name: "public without a token", method: "GET", uri: "/public/logo.png", status: 200},
		{name: "public with a token: still no identity", method: "POST", uri: "/public/form", header: bearer(user), status: 200},
		{name: "any valid token: user", method: "GET", uri: "/whoami", header: bearer(user), status: 200,
			identity: identity{"user-42", "web-app", "user", "openid data:read", "alice@example.com"}},
		{name: "any valid token: no scopes", method: "PUT", uri: "/whoami", header: bearer(bare), status: 200,
			identity: identity{"bare", "bare", "m2m", "", ""}},
		{name: "any valid token: none", method: "GET", uri: "/whoami", status: 401, challenge: `Bearer realm="api"`},
		{name: "method no rule names", method: "DELETE", uri: "/data", header: bearer(writer), status: 403, detail: noRule},
		{name: "path no rule names", method: "GET", uri: "/admin", header: bearer(writer), status: 403, detail: noRule},
		{name: "unmatched without a token", method: "GET", uri: "/admin", status: 403, detail: noRule},
		{name: "dot-dot segment", method: "GET", uri: "/public/../admin", status: 400},
		{name: "encoded dot-dot segment", method: "GET", uri: "/public/%2e%2e/admin", status: 400},
		{name: "dot-dot with a parameter", method: "GET", uri: "/public/..;/admin", status: 400},
		{name: "a path parameter", method: "POST", uri: "/data;x", status: 400},
		{name: "dot segment", method: "GET", uri: "/public/./logo.png", status: 400},
		{name: "empty segment", method: "GET", uri: "/public//logo.png", status: 400},
		{name: "leading double slash", method: "GET", uri: "//data", header: bearer(reader), status: 400},
		{name: "encoded slash", method: "GET", uri: "/public%2F..%2Fadmin", status: 400},
		{name: "encoded backslash", method: "GET", uri: "/public/..%5Cadmin", status: 400},
		{name: "invalid escape", method: "GET", uri: "/public/%zz", status: 400, notDirect: true},
		{name: "encoded control character", method: "GET", uri: "/public/a%00b", status: 400},
	}
	for _, tr := range transports(t, svc) {
		t.Run(tr.name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					if tc.notDirect && tr.name == "direct" {
						a := tr.ask(t, tc.method, tc.uri, tc.header)
						assert.Equal(t, tc.status, a.status)
						return
					}
					a := tr.ask(t, tc.method, tc.uri, tc.header)
					require.Equal(t, tc.status, a.status, a.body)
					if tc.status == 400 && tc.challenge == "" {
						// A request the service cannot decide on is
						// refused as the middleware refuses a malformed one.
						assert.Regexp(t, `^Bearer realm="api", error="invalid_request", error_description="The forwarded URI is malformed: `,
							a.header.Get("WWW-Authenticate"))
					} else {
						assert.Equal(t, tc.challenge, a.header.Get("WWW-Authenticate"))
					}
					if tc.status == 200 {
						assert.Empty(t, a.body)
						assert.Equal(t, tc.identity, identityOf(a.header))
						for _, h := range IdentityHeaders {
							assert.Len(t, a.header.Values(h), 1, "%s always present", h)
						}
						return
					}
					assert.Equal(t, "application/problem+json", a.header.Get("Content-Type"))
					var p middleware.Problem
					require.NoError(t, json.Unmarshal([]byte(a.body), &p), a.body)
					assert.Equal(t, tc.status, p.Status)
					assert.Equal(t, http.StatusText(tc.status), p.Title)
					if tc.detail != "" {
						assert.Equal(t, tc.detail, p.Detail)
					}
					for _, h := range IdentityHeaders {
						assert.Empty(t, a.header.Values(h), "no %s on a refusal", h)
					}
				})
			}
		})
	}
}

// TestDecisionsAnswerAsTheMiddleware: a refusal's status, headers and body
// are the HTTP middleware's, byte for byte.
func TestDecisionsAnswerAsTheMiddleware(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	svc := newTestService(t, iss, issueRoutes, PolicyDeny, nil)
	reader := iss.M2M("reader", "data:read")
	tests := []struct {
		name, method, uri string
		header            http.Header
	}{
		{"insufficient scope", "POST", "/data", bearer(reader)},
		{"no token", "GET", "/data", nil},
		{"expired", "GET", "/data", bearer(iss.Expired("reader", "data:read"))},
		{"two Authorization headers", "GET", "/data", http.Header{"Authorization": {"Bearer a", "Bearer b"}}},
	}
	guard, err := middleware.New(middleware.Config{Issuer: iss.URL, Audience: iss.Audience})
	require.NoError(t, err)
	mw := guard.Protect(http.NotFoundHandler(), svc.rules[1].Requirements...)
	for _, tr := range transports(t, svc) {
		if tr.name == "grpc" {
			continue // Envoy joins repeated headers: see TestCheckRepeatedAuthorization
		}
		t.Run(tr.name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					req, err := http.NewRequest(tc.method, "http://api.example.com"+tc.uri, nil)
					require.NoError(t, err)
					req.Header = tc.header.Clone()
					if req.Header == nil {
						req.Header = http.Header{}
					}
					want := newRecorder()
					mw.ServeHTTP(want, req)
					got := tr.ask(t, tc.method, tc.uri, tc.header)
					assert.Equal(t, want.status, got.status)
					assert.Equal(t, string(want.body), got.body)
					for _, h := range []string{"WWW-Authenticate", "Content-Type", "Cache-Control", "X-Content-Type-Options"} {
						assert.Equal(t, want.header.Get(h), got.header.Get(h), h)
					}
				})
			}
		})
	}
}

func newRecorder() *recorder { return &recorder{header: http.Header{}} }

func TestCheckRepeatedAuthorization(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	svc := newTestService(t, iss, issueRoutes, PolicyDeny, nil)
	client := checkClient(t, svc)
	a := askGRPC(t, client, "GET", "/data", http.Header{"Authorization": {"Bearer a", "Bearer b"}})
	assert.Equal(t, http.StatusBadRequest, a.status)
	assert.Contains(t, a.header.Get("WWW-Authenticate"), `error="invalid_request"`)
}

// TestSpoofedIdentityHeaders: whatever X-Auth-* headers a client sends,
// the gateway is told the token's identity (empty where it has none).
func TestSpoofedIdentityHeaders(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	svc := newTestService(t, iss, issueRoutes, PolicyDeny, nil)
	spoofed := http.Header{HeaderSubject: {"root"}, HeaderEmail: {"ceo@example.com"}, HeaderKind: {"user"},
		HeaderScopes: {"admin"}, "X-Auth-Role": {"superuser"}, "X_auth_email": {"ceo@example.com"}}
	tests := []struct {
		name     string
		uri      string
		token    string
		identity identity
		removed  []string // gRPC: headers_to_remove
	}{
		{name: "m2m token", uri: "/whoami", token: iss.M2M("svc", "data:read"), identity: identity{"svc", "svc", "m2m", "data:read", ""},
			removed: []string{"x-auth-email", "x-auth-role", "x_auth_email"}},
		{name: "public", uri: "/public/x", removed: []string{"x-auth-email", "x-auth-kind", "x-auth-role", "x-auth-scopes", "x-auth-subject", "x_auth_email"}},
	}
	for _, tr := range transports(t, svc) {
		t.Run(tr.name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					h := spoofed.Clone()
					if tc.token != "" {
						h.Set("Authorization", "Bearer "+tc.token)
					}
					a := tr.ask(t, "GET", tc.uri, h)
					require.Equal(t, http.StatusOK, a.status)
					assert.Equal(t, tc.identity, identityOf(a.header))
					for _, name := range IdentityHeaders {
						assert.Len(t, a.header.Values(name), 1, "%s present once", name)
					}
					if tr.name == "grpc" {
						assert.Equal(t, tc.removed, a.removed)
					} else {
						assert.Empty(t, a.header.Values("X-Auth-Role"))
					}
				})
			}
		})
	}
}

// TestRateLimits: 429 with Retry-After and the rate-limit headers, which
// an allowed answer carries too.
func TestRateLimits(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	svc := newTestService(t, iss, issueRoutes, PolicyDeny,
		&middleware.RateLimitConfig{Default: 2, Store: ratelimit.NewMemoryStore(ratelimit.MemoryConfig{})})
	for _, tr := range transports(t, svc) {
		t.Run(tr.name, func(t *testing.T) {
			token := bearer(iss.M2M("client-"+tr.name, "data:read"))
			for i, want := range []int{200, 200, 429} {
				a := tr.ask(t, "GET", "/data", token)
				require.Equal(t, want, a.status, "request %d: %s", i, a.body)
				assert.Equal(t, "2", a.header.Get("X-RateLimit-Limit"))
				assert.Equal(t, `"client";q=2;w=60`, a.header.Get("RateLimit-Policy"))
				assert.NotEmpty(t, a.header.Get("RateLimit"))
				if want == 429 {
					assert.NotEmpty(t, a.header.Get("Retry-After"))
					assert.Equal(t, "0", a.header.Get("X-RateLimit-Remaining"))
					assert.Empty(t, a.header.Get("WWW-Authenticate"))
					assert.Contains(t, a.body, `"status":429`)
				}
			}
		})
	}
}

// TestUnavailable: the issuer's keys cannot be had: 503 with Retry-After.
func TestUnavailable(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	iss.ServeJWKSWith(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	svc := newTestService(t, iss, issueRoutes, PolicyDeny, nil)
	for _, tr := range transports(t, svc) {
		t.Run(tr.name, func(t *testing.T) {
			a := tr.ask(t, "GET", "/data", bearer(iss.M2M("w", "data:read")))
			require.Equal(t, http.StatusServiceUnavailable, a.status, a.body)
			assert.NotEmpty(t, a.header.Get("Retry-After"))
			assert.Empty(t, a.header.Get("WWW-Authenticate"))
			assert.Equal(t, "application/problem+json", a.header.Get("Content-Type"))
		})
	}
}

// TestDefaultPolicyAuthenticated: unmatched requests need any valid token.
func TestDefaultPolicyAuthenticated(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	svc := newTestService(t, iss, `{"routes": [{"path": "/admin/*", "scopes": {"all": ["admin"]}}]}`, PolicyAuthenticated, nil)
	tests := []struct {
		name, uri, token string
		status           int
	}{
		{"unmatched with a token", "/anything", iss.M2M("w"), 200},
		{"unmatched without", "/anything", "", 401},
		{"matched rule still applies", "/admin/users", iss.M2M("w"), 403},
	}
	for _, tr := range transports(t, svc) {
		t.Run(tr.name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					a := tr.ask(t, "GET", tc.uri, bearer(tc.token))
					assert.Equal(t, tc.status, a.status, a.body)
				})
			}
		})
	}
}

// TestForwardedRequests: what only the forward-auth protocol can get wrong.
func TestForwardedRequests(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	svc := newTestService(t, iss, issueRoutes, PolicyDeny, nil)
	reader := "Bearer " + iss.M2M("reader", "data:read")
	tests := []struct {
		name   string
		header http.Header
		status int
		detail string
	}{
		{name: "forwarded", header: http.Header{HeaderForwardedMethod: {"GET"}, HeaderForwardedURI: {"/data"}, "Authorization": {reader}}, status: 200},
		{name: "no X-Forwarded-Method", header: http.Header{HeaderForwardedURI: {"/data"}, "Authorization": {reader}}, status: 400,
			detail: "The request needs exactly one X-Forwarded-Method header with X-Forwarded-Uri"},
		{name: "two X-Forwarded-Uri", header: http.Header{HeaderForwardedMethod: {"GET"}, HeaderForwardedURI: {"/data", "/admin"}, "Authorization": {reader}}, status: 400,
			detail: "The request has more than one X-Forwarded-Uri header"},
		{name: "relative URI", header: http.Header{HeaderForwardedMethod: {"GET"}, HeaderForwardedURI: {"data"}}, status: 400,
			detail: `The forwarded URI is malformed: it does not start with "/"`},
		{name: "absolute URL", header: http.Header{HeaderForwardedMethod: {"GET"}, HeaderForwardedURI: {"https://api.example.com/data"}}, status: 400},
		{name: "empty URI", header: http.Header{HeaderForwardedMethod: {"GET"}, HeaderForwardedURI: {""}}, status: 400},
		{name: "fragment", header: http.Header{HeaderForwardedMethod: {"GET"}, HeaderForwardedURI: {"/data#x"}}, status: 400},
		{name: "not a method", header: http.Header{HeaderForwardedMethod: {"GE T"}, HeaderForwardedURI: {"/data"}}, status: 400,
			detail: "The forwarded method is not an HTTP method"},
		{name: "the health path forwarded is decided", header: http.Header{HeaderForwardedMethod: {"GET"}, HeaderForwardedURI: {HealthPath}}, status: 403},
		{name: "the service's own path is not decided on", header: http.Header{HeaderForwardedMethod: {"GET"}, HeaderForwardedURI: {"/public/x"}}, status: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, "http://authz/data", nil)
			require.NoError(t, err)
			req.Header = tc.header
			rec := newRecorder()
			svc.ServeHTTP(rec, req)
			require.Equal(t, tc.status, rec.status, string(rec.body))
			if tc.detail != "" {
				var p middleware.Problem
				require.NoError(t, json.Unmarshal(rec.body, &p))
				assert.Equal(t, tc.detail, p.Detail)
				assert.Equal(t, "invalid_request", p.Error)
			}
		})
	}
}

func TestHealth(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	svc := newTestService(t, iss, issueRoutes, PolicyDeny, nil)
	tests := []struct {
		method string
		status int
	}{{"GET", 200}, {"HEAD", 200}, {"POST", 403}}
	for _, tc := range tests {
		t.Run(tc.method, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, "http://authz"+HealthPath, nil)
			require.NoError(t, err)
			req.RequestURI = HealthPath
			rec := newRecorder()
			svc.ServeHTTP(rec, req)
			assert.Equal(t, tc.status, rec.status)
		})
	}
}

func TestCheckWithoutHTTPAttributes(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	client := checkClient(t, newTestService(t, iss, issueRoutes, PolicyDeny, nil))
	resp, err := client.Check(t.Context(), &authv3.CheckRequest{})
	require.NoError(t, err)
	require.NoError(t, resp.Validate())
	require.NotNil(t, resp.GetDeniedResponse())
	assert.Equal(t, int32(400), int32(resp.GetDeniedResponse().GetStatus().GetCode()))
}

// TestHTTPMode: -http-mode pins how a request is read, so that no header a
// client sends can switch it: under envoy, X-Forwarded-Uri naming a public
// path does not open a protected one; under forward-auth, a request
// without the forwarded headers is refused.
func TestHTTPMode(t *testing.T) {
	iss := newIssuer(t)
	rules, err := ParseRoutes([]byte(issueRoutes))
	require.NoError(t, err)
	guard, err := middleware.New(middleware.Config{Issuer: iss.URL, Audience: iss.Audience, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	service := func(mode string) *Service {
		svc, err := NewService(ServiceConfig{Guard: guard, Rules: rules, HTTPMode: mode, Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		return svc
	}
	reader := iss.M2M("reader", "data:read")
	// smuggled is a client's request for the protected /data, without a
	// token, naming the public path in X-Forwarded-Uri.
	smuggled := func() *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/data", nil)
		r.Header.Set(HeaderForwardedURI, "/public/x")
		r.Header.Set(HeaderForwardedMethod, "GET")
		return r
	}
	direct := func() *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/data", nil)
		r.Header.Set("Authorization", "Bearer "+reader)
		return r
	}
	health := func() *http.Request { return httptest.NewRequest(http.MethodGet, HealthPath, nil) }
	tests := []struct {
		mode   string
		req    func() *http.Request
		status int
	}{
		{"", smuggled, 200}, // auto: the forwarded headers are believed
		{HTTPModeAuto, direct, 200},
		{HTTPModeEnvoy, smuggled, 401},
		{HTTPModeEnvoy, direct, 200},
		{HTTPModeEnvoy, health, 200},
		{HTTPModeForwardAuth, smuggled, 200},
		{HTTPModeForwardAuth, func() *http.Request { return forwarded("GET", "/data", reader) }, 200},
		{HTTPModeForwardAuth, direct, 400},
		{HTTPModeForwardAuth, health, 200},
	}
	for _, tt := range tests {
		req := tt.req()
		t.Run(tt.mode+" "+req.URL.Path+" "+req.Header.Get(HeaderForwardedURI), func(t *testing.T) {
			rec := httptest.NewRecorder()
			service(tt.mode).ServeHTTP(rec, req)
			assert.Equal(t, tt.status, rec.Code, rec.Body.String())
		})
	}
	_, err = NewService(ServiceConfig{Guard: guard, HTTPMode: "gateway"})
	assert.ErrorIs(t, err, ErrConfig)
}
