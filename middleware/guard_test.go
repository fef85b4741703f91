package middleware_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/scopes"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return t0 }

type env struct {
	iss    *jwkstest.Issuer
	guard  *middleware.Guard
	router http.Handler
}

// newEnv builds an issuer, a Guard and a chi router like examples/server's.
func newEnv(t *testing.T, tweak func(*setup)) *env {
	t.Helper()
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Now: fixedClock})
	cfg := setup{Config: middleware.Config{Issuer: iss.URL, Audience: iss.Audience, Now: fixedClock}}
	if tweak != nil {
		tweak(&cfg)
	}
	g := mustGuard(t, cfg)
	r := chi.NewRouter()
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	r.Group(func(r chi.Router) {
		r.Use(g.Authenticate)
		r.With(g.Require(scopes.All("data:read"))).Get("/data", ok)
		r.With(g.Require(scopes.All("data:write"))).Post("/data", echoBody)
		r.Get("/whoami", whoami)
	})
	return &env{iss: iss, guard: g, router: r}
}

func ok(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }

func echoBody(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	_, _ = w.Write(b)
}

func whoami(w http.ResponseWriter, r *http.Request) {
	p, _ := middleware.PrincipalFrom(r.Context())
	_ = json.NewEncoder(w).Encode(map[string]any{
		"kind": p.Kind, "subject": p.Subject, "client_id": p.ClientID, "scopes": p.Scopes, "email": p.Email,
		"method": p.Method, "issuer": p.Issuer, "audience": p.Audience, "expiry": p.Expiry.Unix(), "token_id": p.TokenID,
	})
}

func jsonInt(n int64) string { return strconv.FormatInt(n, 10) }

func tokenID(t *testing.T, rec *httptest.ResponseRecorder) string {
	var body struct {
		TokenID string `json:"token_id"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	return body.TokenID
}

func (e *env) do(t *testing.T, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	e.router.ServeHTTP(rec, req)
	return rec
}

func get(path, authorization string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return req
}

type problem struct {
	Type, Title, Detail, Error, Scope string
	Status                            int
}

func decodeProblem(t *testing.T, rec *httptest.ResponseRecorder) problem {
	t.Helper()
	assert.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
	var p problem
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
	assert.Equal(t, rec.Code, p.Status)
	return p
}

// TestBearerExtraction covers RFC 6750 §2 and the error contract for
// requests that present no token, one, or several.
func TestBearerExtraction(t *testing.T) {
	type row struct {
		name      string
		tweak     func(*setup)
		request   func(e *env) *http.Request
		status    int
		challenge string // exact WWW-Authenticate, or a prefix ending in '*'
		code      string
	}
	m2m := func(e *env) string { return e.iss.M2M("worker", "data:read") }
	formPost := func(body string) *http.Request {
		req := httptest.NewRequest(http.MethodPost, "/data", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req
	}
	rows := []row{
		{name: "no credentials", request: func(e *env) *http.Request { return get("/data", "") },
			status: 401, challenge: `Bearer realm="api"`},
		{name: "another scheme is no bearer credentials", request: func(e *env) *http.Request { return get("/data", "Basic dXNlcjpwYXNz") },
			status: 401, challenge: `Bearer realm="api"`},
		{name: "Bearer", request: func(e *env) *http.Request { return get("/data", "Bearer "+m2m(e)) }, status: 200},
		{name: "scheme in lower case", request: func(e *env) *http.Request { return get("/data", "bearer "+m2m(e)) }, status: 200},
		{name: "scheme in upper case", request: func(e *env) *http.Request { return get("/data", "BEARER "+m2m(e)) }, status: 200},
		{name: "several spaces after the scheme", request: func(e *env) *http.Request { return get("/data", "Bearer   "+m2m(e)) }, status: 200},
		{name: "two Authorization headers", request: func(e *env) *http.Request {
			req := get("/data", "Bearer "+m2m(e))
			req.Header.Add("Authorization", "Bearer "+m2m(e))
			return req
		}, status: 400, challenge: `Bearer realm="api", error="invalid_request"*`, code: "invalid_request"},
		{name: "two tokens in one header", request: func(e *env) *http.Request { return get("/data", "Bearer "+m2m(e)+" "+m2m(e)) },
			status: 400, challenge: `Bearer realm="api", error="invalid_request"*`, code: "invalid_request"},
		{name: "empty bearer credentials", request: func(e *env) *http.Request { return get("/data", "Bearer ") },
			status: 400, challenge: `Bearer realm="api", error="invalid_request"*`, code: "invalid_request"},
		{name: "header plus query", request: func(e *env) *http.Request {
			return get("/data?access_token="+url.QueryEscape(m2m(e)), "Bearer "+m2m(e))
		}, status: 400, challenge: `Bearer realm="api", error="invalid_request"*`, code: "invalid_request"},
		{name: "header plus query with the query allowed", tweak: func(c *setup) { c.Bearer.AllowQuery = true }, request: func(e *env) *http.Request {
			return get("/data?access_token="+url.QueryEscape(m2m(e)), "Bearer "+m2m(e))
		}, status: 400, challenge: `Bearer realm="api", error="invalid_request"*`, code: "invalid_request"},
		{name: "query token while the query is off", request: func(e *env) *http.Request {
			return get("/data?access_token="+url.QueryEscape(m2m(e)), "")
		}, status: 400, challenge: `Bearer realm="api", error="invalid_request"*`, code: "invalid_request"},
		{name: "query token with the query allowed", tweak: func(c *setup) { c.Bearer.AllowQuery = true }, request: func(e *env) *http.Request {
			return get("/data?access_token="+url.QueryEscape(m2m(e)), "")
		}, status: 200},
		{name: "two query tokens", tweak: func(c *setup) { c.Bearer.AllowQuery = true }, request: func(e *env) *http.Request {
			return get("/data?access_token=a&access_token=b", "")
		}, status: 400, code: "invalid_request", challenge: `Bearer realm="api", error="invalid_request"*`},
		{name: "form token with the form allowed", tweak: func(c *setup) { c.Bearer.AllowFormBody = true }, request: func(e *env) *http.Request {
			return formPost("access_token=" + url.QueryEscape(e.iss.M2M("worker", "data:write")))
		}, status: 200},
		{name: "form token plus header", tweak: func(c *setup) { c.Bearer.AllowFormBody = true }, request: func(e *env) *http.Request {
			req := formPost("access_token=" + url.QueryEscape(e.iss.M2M("worker", "data:write")))
			req.Header.Set("Authorization", "Bearer "+e.iss.M2M("worker", "data:write"))
			return req
		}, status: 400, code: "invalid_request", challenge: `Bearer realm="api", error="invalid_request"*`},
		{name: "oversized form body", tweak: func(c *setup) { c.Bearer.AllowFormBody = true; c.Bearer.MaxFormBytes = 100 }, request: func(e *env) *http.Request {
			return formPost("access_token=" + strings.Repeat("a", 200))
		}, status: 400, code: "invalid_request", challenge: `Bearer realm="api", error="invalid_request"*`},
		{name: "query with a malformed pair cannot hide a second token", request: func(e *env) *http.Request {
			return get("/data?a=1;b=2&access_token="+url.QueryEscape(m2m(e)), "Bearer "+m2m(e))
		}, status: 400, code: "invalid_request", challenge: `Bearer realm="api", error="invalid_request"*`},
		{name: "percent-encoded query name is still access_token", tweak: func(c *setup) { c.Bearer.AllowQuery = true }, request: func(e *env) *http.Request {
			return get("/data?access%5Ftoken="+url.QueryEscape(m2m(e)), "Bearer "+m2m(e))
		}, status: 400, code: "invalid_request", challenge: `Bearer realm="api", error="invalid_request"*`},
		{name: "query token beside a malformed pair, query allowed", tweak: func(c *setup) { c.Bearer.AllowQuery = true }, request: func(e *env) *http.Request {
			return get("/data?a=1;b=2&access_token="+url.QueryEscape(m2m(e)), "")
		}, status: 200},
		{name: "oversized form body beside a header token is left alone", tweak: func(c *setup) { c.Bearer.AllowFormBody = true; c.Bearer.MaxFormBytes = 100 }, request: func(e *env) *http.Request {
			req := formPost("note=" + strings.Repeat("a", 200))
			req.Header.Set("Authorization", "Bearer "+e.iss.M2M("w", "data:write"))
			return req
		}, status: 200},
		{name: "form token while the form is off is not read", request: func(e *env) *http.Request {
			return formPost("access_token=" + url.QueryEscape(e.iss.M2M("worker", "data:write")))
		}, status: 401, challenge: `Bearer realm="api"`},
		{name: "token over the maximum length", tweak: func(c *setup) { c.Bearer.MaxLength = 64 }, request: func(e *env) *http.Request {
			return get("/data", "Bearer "+strings.Repeat("a", 65))
		}, status: 401, code: "invalid_token", challenge: `Bearer realm="api", error="invalid_token", error_description="The access token is too long"`},
		{name: "characters outside b64token", request: func(e *env) *http.Request { return get("/data", `Bearer abc"def`) },
			status: 401, code: "invalid_token", challenge: `Bearer realm="api", error="invalid_token", error_description="The access token is malformed"`},
		{name: "garbage token", request: func(e *env) *http.Request { return get("/data", "Bearer garbage") },
			status: 401, code: "invalid_token", challenge: `Bearer realm="api", error="invalid_token", error_description="The access token is malformed"`},
		{name: "custom realm", tweak: func(c *setup) { c.Realm = `my "api"` }, request: func(e *env) *http.Request { return get("/data", "") },
			status: 401, challenge: `Bearer realm="my api"`},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.tweak)
			rec := e.do(t, tc.request(e))
			require.Equal(t, tc.status, rec.Code, rec.Body.String())
			got := rec.Header().Get("WWW-Authenticate")
			if prefix, ok := strings.CutSuffix(tc.challenge, "*"); ok {
				assert.True(t, strings.HasPrefix(got, prefix), "WWW-Authenticate %q", got)
			} else {
				assert.Equal(t, tc.challenge, got)
			}
			if tc.status != 200 {
				p := decodeProblem(t, rec)
				assert.Equal(t, tc.code, p.Error)
				assert.NotContains(t, got, "eyJ", "a token must never be echoed")
				assert.NotContains(t, rec.Body.String(), "eyJ")
			}
		})
	}
}

// TestQueryTokenResponseIsPrivate: RFC 6750 §2.3 asks for Cache-Control: private.
func TestQueryTokenResponseIsPrivate(t *testing.T) {
	e := newEnv(t, func(c *setup) { c.Bearer.AllowQuery = true })
	rec := e.do(t, get("/data?access_token="+url.QueryEscape(e.iss.M2M("w", "data:read")), ""))
	require.Equal(t, 200, rec.Code)
	assert.Equal(t, "private", rec.Header().Get("Cache-Control"))
}

// TestFormTokenLeavesFormToHandler: reading the token keeps the form usable.
func TestFormTokenLeavesFormToHandler(t *testing.T) {
	e := newEnv(t, func(c *setup) { c.Bearer.AllowFormBody = true })
	var got string
	h := e.guard.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.FormValue("note") }))
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("note=hello&access_token="+url.QueryEscape(e.iss.M2M("w"))))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, 200, rec.Code)
	assert.Equal(t, "hello", got)
}

// TestTokenRefusals maps every validation failure to 401 invalid_token with
// a safe description.
func TestTokenRefusals(t *testing.T) {
	tests := []struct {
		name        string
		token       func(e *env) string
		description string
	}{
		{name: "expired", token: func(e *env) string { return e.iss.Expired("worker", "data:read") }, description: "The access token expired"},
		{name: "wrong audience", token: func(e *env) string { return e.iss.WrongAudience("worker", "data:read") }, description: "The access token is not meant for this API"},
		{name: "tampered", token: func(e *env) string {
			parts := strings.Split(e.iss.M2M("worker", "data:read"), ".")
			other := strings.Split(e.iss.M2M("admin", "data:read"), ".")
			return parts[0] + "." + other[1] + "." + parts[2]
		}, description: "The access token's signature is invalid"},
		{name: "unknown key", token: func(e *env) string {
			return e.iss.SignWith(jwkstest.NewKey("RS256"), nil, e.iss.Claims("w", "w", "data:read"))
		}, description: "The access token is signed by an unknown key"},
		{name: "alg none", token: func(e *env) string {
			return e.iss.SignWith(e.iss.CurrentKey(), map[string]any{"alg": "none"}, e.iss.Claims("w", "w", "data:read"))
		}, description: "The access token's signing algorithm is not accepted"},
		{name: "other issuer", token: func(e *env) string {
			c := e.iss.Claims("w", "w", "data:read")
			c["iss"] = "https://evil.test"
			return e.iss.Sign(c)
		}, description: "The access token is not from a trusted issuer"},
		{name: "not yet valid", token: func(e *env) string {
			c := e.iss.Claims("w", "w", "data:read")
			c["nbf"] = t0.Add(time.Hour).Unix()
			return e.iss.Sign(c)
		}, description: "The access token is not valid yet"},
		{name: "exp as a string", token: func(e *env) string {
			c := e.iss.Claims("w", "w", "data:read")
			c["exp"] = "never"
			return e.iss.Sign(c)
		}, description: "The access token's claims are invalid"},
		{name: "scope claim of the wrong type", token: func(e *env) string {
			c := e.iss.Claims("w", "w")
			c["scp"] = map[string]any{"data:read": true}
			return e.iss.Sign(c)
		}, description: "The access token's scope claim is invalid"},
		{name: "email claim of the wrong type", token: func(e *env) string {
			c := e.iss.Claims("u", "app", "data:read")
			c["ext"] = map[string]any{"email": 42}
			return e.iss.Sign(c)
		}, description: "The access token's email claim is invalid"},
		{name: "malformed", token: func(e *env) string { return "a.b.c" }, description: "The access token is malformed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			token := tc.token(e)
			rec := e.do(t, get("/data", "Bearer "+token))
			require.Equal(t, http.StatusUnauthorized, rec.Code)
			assert.Equal(t, `Bearer realm="api", error="invalid_token", error_description="`+tc.description+`"`, rec.Header().Get("WWW-Authenticate"))
			p := decodeProblem(t, rec)
			assert.Equal(t, "invalid_token", p.Error)
			assert.Equal(t, tc.description, p.Detail)
			assert.NotContains(t, rec.Body.String(), token)
		})
	}
}

func TestInsufficientScope(t *testing.T) {
	tests := []struct {
		name    string
		scopes  []string
		method  string
		path    string
		status  int
		wantHdr string
	}{
		{name: "read-only token writing", scopes: []string{"data:read"}, method: http.MethodPost, path: "/data", status: 403,
			wantHdr: `Bearer realm="api", error="insufficient_scope", error_description="The access token does not grant the scope this resource needs", scope="data:write"`},
		{name: "read-only token reading", scopes: []string{"data:read"}, method: http.MethodGet, path: "/data", status: 200},
		{name: "no scopes, any valid token route", method: http.MethodGet, path: "/whoami", status: 200},
		{name: "no scopes reading", method: http.MethodGet, path: "/data", status: 403,
			wantHdr: `Bearer realm="api", error="insufficient_scope", error_description="The access token does not grant the scope this resource needs", scope="data:read"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			req := httptest.NewRequest(tc.method, tc.path, nil)
			req.Header.Set("Authorization", "Bearer "+e.iss.M2M("worker", tc.scopes...))
			rec := e.do(t, req)
			require.Equal(t, tc.status, rec.Code)
			assert.Equal(t, tc.wantHdr, rec.Header().Get("WWW-Authenticate"))
			if tc.status == 403 {
				p := decodeProblem(t, rec)
				assert.Equal(t, "insufficient_scope", p.Error)
				assert.Equal(t, strings.TrimSuffix(strings.SplitAfter(tc.wantHdr, `scope="`)[1], `"`), p.Scope)
			}
		})
	}
}

func TestRequirementsCompose(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name   string
		reqs   []scopes.Requirement
		scopes []string
		status int
		scope  string
	}{
		{name: "any of, one granted", reqs: []scopes.Requirement{scopes.Any("admin", "data:read")}, scopes: []string{"data:read"}, status: 200},
		{name: "any of, none granted", reqs: []scopes.Requirement{scopes.Any("admin", "data:read")}, scopes: []string{"x"}, status: 403, scope: "admin data:read"},
		{name: "two requirements, one missing", reqs: []scopes.Requirement{scopes.All("a"), scopes.Any("b", "c")}, scopes: []string{"a"}, status: 403, scope: "a b c"},
		{name: "two requirements, both met", reqs: []scopes.Requirement{scopes.All("a"), scopes.Any("b", "c")}, scopes: []string{"a", "c"}, status: 200},
		{name: "hierarchic parent scope", reqs: []scopes.Requirement{scopes.All("data:read").Using(scopes.Hierarchic(":"))}, scopes: []string{"data"}, status: 200},
		{name: "no requirement", scopes: nil, status: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := e.guard.Protect(http.HandlerFunc(ok), tc.reqs...)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, get("/", "Bearer "+e.iss.M2M("w", tc.scopes...)))
			require.Equal(t, tc.status, rec.Code)
			if tc.status == 403 {
				assert.Contains(t, rec.Header().Get("WWW-Authenticate"), `scope="`+tc.scope+`"`)
			}
		})
	}
}

// TestRequireAfterAuthenticateValidatesOnce checks that Require reuses the
// Principal Authenticate found.
func TestRequireAfterAuthenticateValidatesOnce(t *testing.T) {
	e := newEnv(t, nil)
	var calls atomic.Int64
	g, err := middleware.New(middleware.Config{Validator: countingValidator{e.guard, &calls}})
	require.NoError(t, err)
	h := g.Authenticate(g.Require(scopes.All("data:read"))(http.HandlerFunc(ok)))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, get("/", "Bearer "+e.iss.M2M("w", "data:read")))
	require.Equal(t, 200, rec.Code)
	assert.Equal(t, int64(1), calls.Load())
}

type countingValidator struct {
	g     *middleware.Guard
	calls *atomic.Int64
}

func (c countingValidator) Validate(ctx context.Context, token string) (*middleware.Principal, error) {
	c.calls.Add(1)
	return c.g.Validate(ctx, token)
}

func TestKeysUnavailable(t *testing.T) {
	t.Run("JWKS down with no keys gives 503", func(t *testing.T) {
		e := newEnv(t, nil)
		e.iss.ServeJWKSWith(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
		rec := e.do(t, get("/data", "Bearer "+e.iss.M2M("w", "data:read")))
		require.Equal(t, http.StatusServiceUnavailable, rec.Code)
		assert.Equal(t, "10", rec.Header().Get("Retry-After"))
		assert.Empty(t, rec.Header().Get("WWW-Authenticate"))
		p := decodeProblem(t, rec)
		assert.Empty(t, p.Error)
	})
	t.Run("JWKS down with keys cached gives 200", func(t *testing.T) {
		e := newEnv(t, nil)
		require.Equal(t, 200, e.do(t, get("/data", "Bearer "+e.iss.M2M("w", "data:read"))).Code)
		e.iss.ServeJWKSWith(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
		rec := e.do(t, get("/data", "Bearer "+e.iss.M2M("w", "data:read")))
		assert.Equal(t, 200, rec.Code)
	})
	t.Run("issuer unreachable gives 503", func(t *testing.T) {
		g, err := middleware.New(middleware.Config{Issuer: "http://127.0.0.1:1", Audience: "a"})
		require.NoError(t, err)
		iss := jwkstest.NewIssuer(t, jwkstest.Config{})
		c := iss.Claims("w", "w")
		c["iss"], c["aud"] = "http://127.0.0.1:1", "a"
		rec := httptest.NewRecorder()
		g.Protect(http.HandlerFunc(ok)).ServeHTTP(rec, get("/", "Bearer "+iss.Sign(c)))
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
		assert.NotEmpty(t, rec.Header().Get("Retry-After"))
	})
}

func TestPrincipal(t *testing.T) {
	tests := []struct {
		name   string
		tweak  func(*setup)
		token  func(e *env) string
		kind   middleware.Kind
		email  string
		scopes []string
	}{
		{name: "M2M token", token: func(e *env) string { return e.iss.M2M("nightly-sync", "data:read", "data:write") },
			kind: middleware.KindM2M, scopes: []string{"data:read", "data:write"}},
		{name: "user token with email in ext", token: func(e *env) string {
			return e.iss.User("user-42", "web-app", "alice@example.com", "openid", "data:read")
		},
			kind: middleware.KindUser, email: "alice@example.com", scopes: []string{"openid", "data:read"}},
		{name: "user token with top-level email", token: func(e *env) string {
			c := e.iss.Claims("user-42", "web-app", "data:read")
			c["email"] = "bob@example.com"
			return e.iss.Sign(c)
		}, kind: middleware.KindUser, email: "bob@example.com", scopes: []string{"data:read"}},
		{name: "sub equals client_id but with email is a user", token: func(e *env) string { return e.iss.User("app", "app", "c@example.com") },
			kind: middleware.KindUser, email: "c@example.com"},
		{name: "scope string and scp array are united", token: func(e *env) string {
			c := e.iss.Claims("svc", "svc", "a", "b")
			c["scope"] = "b c"
			return e.iss.Sign(c)
		}, kind: middleware.KindM2M, scopes: []string{"b", "c", "a"}},
		{name: "scp as a string", token: func(e *env) string {
			c := e.iss.Claims("svc", "svc")
			c["scp"] = "x y"
			return e.iss.Sign(c)
		}, kind: middleware.KindM2M, scopes: []string{"x", "y"}},
		{name: "custom classifier", tweak: func(c *setup) {
			c.Classifier = func(p *middleware.Principal) middleware.Kind {
				if strings.HasPrefix(p.ClientID, "svc-") {
					return middleware.KindM2M
				}
				return middleware.KindUser
			}
		}, token: func(e *env) string { return e.iss.User("someone", "svc-batch", "x@example.com") }, kind: middleware.KindM2M, email: "x@example.com"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.tweak)
			var got *middleware.Principal
			h := e.guard.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got, _ = middleware.PrincipalFrom(r.Context())
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, get("/", "Bearer "+tc.token(e)))
			require.Equal(t, 200, rec.Code, rec.Body.String())
			require.NotNil(t, got)
			assert.Equal(t, tc.kind, got.Kind)
			assert.Equal(t, tc.email, got.Email)
			assert.Equal(t, tc.scopes, got.Scopes.Strings())
			assert.Equal(t, e.iss.URL, got.Issuer)
			assert.Equal(t, []string{e.iss.Audience}, got.Audience)
			assert.Equal(t, t0.Add(time.Hour), got.Expiry)
			assert.NotEmpty(t, got.TokenID)
			assert.Equal(t, middleware.MethodJWT, got.Method)
		})
	}
}

func TestPrincipalClaims(t *testing.T) {
	e := newEnv(t, nil)
	c := e.iss.Claims("user-42", "web-app", "data:read")
	c["ext"] = map[string]any{"email": "a@example.com", "tenant": "acme"}
	c["level"] = 3
	p, err := e.guard.Validate(context.Background(), e.iss.Sign(c))
	require.NoError(t, err)

	level, err := middleware.ClaimAs[int](p, "level")
	require.NoError(t, err)
	assert.Equal(t, 3, level)

	var ext struct{ Tenant string }
	require.NoError(t, p.DecodeClaim("ext", &ext))
	assert.Equal(t, "acme", ext.Tenant)

	_, err = middleware.ClaimAs[string](p, "missing")
	assert.ErrorIs(t, err, middleware.ErrNoClaim)
	_, err = middleware.ClaimAs[string](p, "level")
	assert.Error(t, err)

	raw, ok := p.Claim("client_id")
	require.True(t, ok)
	assert.JSONEq(t, `"web-app"`, string(raw))
}

func TestPrincipalFromWithoutGuard(t *testing.T) {
	_, ok := middleware.PrincipalFrom(context.Background())
	assert.False(t, ok)
	p := middleware.NewPrincipal(middleware.Principal{Subject: "s", Kind: middleware.KindUser}, nil)
	got, ok := middleware.PrincipalFrom(middleware.WithPrincipal(context.Background(), p))
	require.True(t, ok)
	assert.Equal(t, "s", got.Subject)
	_, ok = got.Claim("anything")
	assert.False(t, ok)
}

func TestGuardValidate(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name   string
		token  string
		reason string
	}{
		{name: "valid", token: e.iss.M2M("w")},
		{name: "too long", token: strings.Repeat("a", aegis.DefaultMaxTokenLength+1), reason: "token_too_long"},
		{name: "not b64token", token: "a b", reason: "token_malformed"},
		{name: "expired", token: e.iss.Expired("w"), reason: "token_expired"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := e.guard.Validate(context.Background(), tc.token)
			if tc.reason == "" {
				require.NoError(t, err)
				assert.Equal(t, middleware.KindM2M, p.Kind)
				return
			}
			var ae *aegis.Refusal
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, tc.reason, string(ae.Reason))
			assert.NotContains(t, err.Error(), tc.token)
		})
	}
}

func TestCustomErrorWriterAndValidatorErrors(t *testing.T) {
	var seen *middleware.Error
	tests := []struct {
		name   string
		err    error
		status int
		reason string
	}{
		{name: "custom *aegis.Refusal is used as is", err: &aegis.Refusal{Class: aegis.ClassInvalid, Reason: "revoked", Description: "Revoked"}, status: 401, reason: "revoked"},
		{name: "unknown error is invalid_token", err: errors.New("boom"), status: 401, reason: "token_invalid"},
		{name: "wrapped keys unavailable is 503", err: jwks.ErrKeysUnavailable, status: 503, reason: "keys_unavailable"},
		{name: "deadline is 503", err: context.DeadlineExceeded, status: 503, reason: "validation_aborted"},
		{name: "no principal and no error is invalid_token", err: nil, status: 401, reason: "token_invalid"},
		{name: "typed nil *aegis.Refusal is invalid_token, not a pass", err: (*aegis.Refusal)(nil), status: 401, reason: "token_invalid"},
		{name: "no class becomes 401", err: &aegis.Refusal{Reason: "custom"}, status: 401, reason: "custom"},
		{name: "class unavailable becomes 503", err: &aegis.Refusal{Class: aegis.ClassUnavailable, Reason: "custom"}, status: 503, reason: "custom"},
		{name: "a class limited of the validator's stands (429)", err: &aegis.Refusal{Class: aegis.ClassLimited, Reason: "slow_down"}, status: 429, reason: "slow_down"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := middleware.New(middleware.Config{
				Validator: core.ValidatorFunc(func(context.Context, string) (*middleware.Principal, error) { return nil, tc.err }),
				ErrorWriter: func(w http.ResponseWriter, r *http.Request, e *middleware.Error) {
					seen = e
					w.WriteHeader(e.Status)
					_, _ = io.WriteString(w, "custom")
				},
			})
			require.NoError(t, err)
			rec := httptest.NewRecorder()
			g.Protect(http.HandlerFunc(ok)).ServeHTTP(rec, get("/", "Bearer abc"))
			assert.Equal(t, tc.status, rec.Code)
			assert.Equal(t, "custom", rec.Body.String())
			require.NotNil(t, seen)
			assert.Equal(t, tc.reason, string(seen.Reason))
		})
	}
}

// TestOversizedFormBodyReachesHandlerWhole: inspecting the body for a
// token loses none of it.
func TestOversizedFormBodyReachesHandlerWhole(t *testing.T) {
	for _, size := range []int{50, 5000} {
		e := newEnv(t, func(c *setup) { c.Bearer.AllowFormBody = true; c.Bearer.MaxFormBytes = 100 })
		body := "note=" + strings.Repeat("a", size)
		req := httptest.NewRequest(http.MethodPost, "/data", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+e.iss.M2M("w", "data:write"))
		rec := e.do(t, req)
		require.Equal(t, 200, rec.Code)
		assert.Equal(t, body, rec.Body.String())
	}
}

// TestErrorWriterCannotChangeLaterAnswers: each refusal is a copy.
func TestErrorWriterCannotChangeLaterAnswers(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	g, err := middleware.New(middleware.Config{Issuer: iss.URL, Audience: iss.Audience, ErrorWriter: func(w http.ResponseWriter, r *http.Request, e *middleware.Error) {
		e.Description, e.Status = "Jeton invalide", http.StatusTeapot
		w.WriteHeader(http.StatusUnauthorized)
	}})
	require.NoError(t, err)
	h := g.Protect(http.HandlerFunc(ok))
	for range 2 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, get("/", "Bearer garbage"))
		assert.Equal(t, `Bearer realm="api", error="invalid_token", error_description="The access token is malformed"`, rec.Header().Get("WWW-Authenticate"))
	}
	_, err = g.Validate(context.Background(), "bad token")
	var ae *aegis.Refusal
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, http.StatusUnauthorized, middleware.ErrorFor(ae).Status)
}

// TestRequireTrustsOnlyItsOwnGuard: a Principal from another Guard (other
// audience) does not satisfy Require.
func TestRequireTrustsOnlyItsOwnGuard(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	billing, err := middleware.New(middleware.Config{Issuer: iss.URL, Audience: "https://billing.test"})
	require.NoError(t, err)
	admin, err := middleware.New(middleware.Config{Issuer: iss.URL, Audience: "https://admin.test"})
	require.NoError(t, err)
	c := iss.Claims("w", "w", "admin")
	c["aud"] = []string{"https://billing.test"}
	token := iss.Sign(c)
	h := billing.Authenticate(admin.Require(scopes.All("admin"))(http.HandlerFunc(ok)))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, get("/", "Bearer "+token))
	assert.Equal(t, http.StatusUnauthorized, rec.Code)
	assert.Contains(t, rec.Header().Get("WWW-Authenticate"), "not meant for this API")

	p := middleware.NewPrincipal(middleware.Principal{Subject: "forged", Scopes: scopes.MustNew("admin")}, nil)
	req := get("/", "")
	req = req.WithContext(middleware.WithPrincipal(req.Context(), p))
	rec = httptest.NewRecorder()
	admin.Require(scopes.All("admin"))(http.HandlerFunc(ok)).ServeHTTP(rec, req)
	assert.Equal(t, http.StatusUnauthorized, rec.Code, "a Principal put in the context by hand is not trusted")
}

func TestChallengeIsSanitised(t *testing.T) {
	e := &middleware.Error{Status: 401, Code: "invalid_token", Description: "bad \"token\"\r\nX-Injected: 1 \\ é"}
	assert.Equal(t, `Bearer realm="api", error="invalid_token", error_description="bad tokenX-Injected: 1  "`, e.Challenge("api"))
	assert.Empty(t, (&middleware.Error{Status: 503}).Challenge("api"))
	injected := &middleware.Error{Status: 401, Code: `invalid_token", error_uri="https://evil.example`}
	assert.Equal(t, `Bearer realm="api", error="invalid_token, error_uri=https://evil.example"`, injected.Challenge("api"))
	assert.Equal(t, "aegis: token_expired: The access token expired", (&middleware.Error{Reason: "token_expired", Description: "The access token expired"}).Error())
}

func TestNewConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  middleware.Config
	}{
		{name: "no issuer", cfg: middleware.Config{Audience: "a"}},
		{name: "no audience", cfg: middleware.Config{Issuer: "https://id.example.com"}},
		{name: "plain http issuer", cfg: middleware.Config{Issuer: "http://id.example.com", Audience: "a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := middleware.New(tc.cfg)
			assert.Error(t, err)
		})
	}
	t.Run("symmetric algorithm", func(t *testing.T) {
		_, err := (&setup{Config: middleware.Config{Issuer: "https://id.example.com", Audience: "a"}, Algorithms: []string{"HS256"}}).newGuard()
		assert.Error(t, err)
	})
	g, err := (&setup{Config: middleware.Config{Issuer: "https://id.example.com"}, AnyAudience: true}).newGuard()
	require.NoError(t, err)
	assert.NotNil(t, g)
}

func TestStaticKeys(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Algorithm: "EdDSA"})
	set, err := jwks.NewSet(jwks.Key{ID: iss.CurrentKey().ID, Algorithm: "EdDSA", Public: iss.CurrentKey().Public()})
	require.NoError(t, err)
	g := mustGuard(t, setup{Config: middleware.Config{Issuer: iss.URL, Audience: iss.Audience}, Keys: set})
	rec := httptest.NewRecorder()
	g.Protect(http.HandlerFunc(ok)).ServeHTTP(rec, get("/", "Bearer "+iss.M2M("w")))
	assert.Equal(t, 200, rec.Code)
	assert.Zero(t, iss.JWKSFetches())
}

// TestConfigAllowInsecureHTTP: a plain-HTTP issuer beyond loopback (a
// container's "http://hydra:4444") is refused, naming the field that
// permits it, and accepted with it (issue 14, point 3).
func TestConfigAllowInsecureHTTP(t *testing.T) {
	tests := []struct {
		name string
		cfg  middleware.Config
		want string // in the error; empty: no error
	}{
		{"refused, naming the field", middleware.Config{Issuer: "http://hydra:4444", Audience: "https://api.test"},
			`Config.Issuer "http://hydra:4444" uses http on a host other than loopback: set Config.AllowInsecureHTTP to permit it`},
		{"permitted", middleware.Config{Issuer: "http://hydra:4444", Audience: "https://api.test", AllowInsecureHTTP: true}, ""},
		{"loopback needs no permission", middleware.Config{Issuer: "http://127.0.0.1:4444", Audience: "https://api.test"}, ""},
		{"credentials are not shown", middleware.Config{Issuer: "http://svc:S3cret@hydra:4444", Audience: "https://api.test"}, "uses http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := middleware.New(tt.cfg)
			if tt.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), "S3cret")
		})
	}
}
