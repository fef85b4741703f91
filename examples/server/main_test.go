package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/examples/internal/flagenv"
	"github.com/olympus/aegis/internal/redistest"
	"github.com/olympus/aegis/internal/testutil"
	"github.com/olympus/aegis/jwks/jwkstest"
)

func startServer(t *testing.T, args []string, env map[string]string) (string, *testutil.Buffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &testutil.Buffer{}
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, func(k string) string { return env[k] }, logs, func(a string) { addrc <- a })
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("server stopped: %v\n%s", err, logs.String())
	}
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	return "http://" + addr, logs
}

func call(t *testing.T, method, url, token string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(body)
}

func TestServerContract(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	base, logs := startServer(t, []string{"-addr", "127.0.0.1:0", "-issuer", iss.URL, "-audience", iss.Audience}, nil)
	assert.Contains(t, logs.String(), "msg=listening addr=127.0.0.1:")

	m2m := iss.M2M("nightly-data-sync", "data:read", "data:write")
	reader := iss.M2M("reader", "data:read")
	user := iss.User("user-42", "web-app", "alice@example.com", "openid", "data:read")
	tests := []struct {
		name      string
		method    string
		path      string
		token     string
		status    int
		challenge string
		whoami    string
	}{
		{name: "health is public", method: "GET", path: "/healthz", status: 200},
		{name: "read with data:read", method: "GET", path: "/data", token: reader, status: 200},
		{name: "write with data:write", method: "POST", path: "/data", token: m2m, status: 200},
		{name: "write without data:write", method: "POST", path: "/data", token: reader, status: 403,
			challenge: `Bearer realm="api", error="insufficient_scope", error_description="The access token does not grant the scope this resource needs", scope="data:write"`},
		{name: "no token", method: "GET", path: "/data", status: 401, challenge: `Bearer realm="api"`},
		{name: "garbage token", method: "GET", path: "/whoami", token: "garbage", status: 401,
			challenge: `Bearer realm="api", error="invalid_token", error_description="The access token is malformed"`},
		{name: "expired token", method: "GET", path: "/whoami", token: iss.Expired("w"), status: 401,
			challenge: `Bearer realm="api", error="invalid_token", error_description="The access token expired"`},
		{name: "wrong audience", method: "GET", path: "/whoami", token: iss.WrongAudience("w"), status: 401,
			challenge: `Bearer realm="api", error="invalid_token", error_description="The access token is not meant for this API"`},
		{name: "whoami m2m", method: "GET", path: "/whoami", token: m2m, status: 200,
			whoami: `{"kind":"m2m","subject":"nightly-data-sync","client_id":"nightly-data-sync","scopes":["data:read","data:write"],"email":""}`},
		{name: "whoami user", method: "GET", path: "/whoami", token: user, status: 200,
			whoami: `{"kind":"user","subject":"user-42","client_id":"web-app","scopes":["openid","data:read"],"email":"alice@example.com"}`},
		{name: "whoami without scopes", method: "GET", path: "/whoami", token: iss.M2M("bare"), status: 200,
			whoami: `{"kind":"m2m","subject":"bare","client_id":"bare","scopes":[],"email":""}`},
		{name: "unknown route", method: "GET", path: "/nope", status: 404},
		{name: "wrong method", method: "DELETE", path: "/data", token: m2m, status: 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := call(t, tc.method, base+tc.path, tc.token)
			require.Equal(t, tc.status, resp.StatusCode, body)
			assert.Equal(t, tc.challenge, resp.Header.Get("WWW-Authenticate"))
			if tc.whoami != "" {
				assert.JSONEq(t, tc.whoami, body)
			}
			if tc.status >= 400 {
				assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
			}
		})
	}
}

func TestServerReadsEnvironment(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	base, _ := startServer(t, nil, map[string]string{
		"AEGIS_ADDR": "127.0.0.1:0", "AEGIS_ISSUER": iss.URL, "AEGIS_AUDIENCE": iss.Audience, "AEGIS_JWKS_URL": iss.JWKSURL(),
	})
	resp, _ := call(t, "GET", base+"/data", iss.M2M("w", "data:read"))
	assert.Equal(t, 200, resp.StatusCode)
	resp, _ = call(t, "GET", base+"/data", iss.WrongAudience("w", "data:read"))
	assert.Equal(t, 401, resp.StatusCode)
}

func TestServerWithoutAudienceAcceptsAnyAudience(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	base, logs := startServer(t, []string{"-addr", "127.0.0.1:0", "-issuer", iss.URL}, nil)
	assert.Contains(t, logs.String(), "no -audience given")
	resp, _ := call(t, "GET", base+"/data", iss.WrongAudience("w", "data:read"))
	assert.Equal(t, 200, resp.StatusCode)
}

func TestServerFlagErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{name: "no issuer", args: []string{"-addr", "127.0.0.1:0"}, want: "-issuer"},
		{name: "unknown flag", args: []string{"-bogus"}, want: "flag provided but not defined"},
		{name: "stray argument", args: []string{"-issuer", "https://i.example", "extra"}, want: "unexpected arguments"},
		{name: "bad log level", args: []string{"-issuer", "https://i.example", "-log-level", "loud"}, want: "-log-level"},
		{name: "insecure issuer", args: []string{"-issuer", "http://id.example.com", "-addr", "127.0.0.1:0"}, want: "http"},
		{name: "insecure issuer names the flag that permits it", args: []string{"-issuer", "http://hydra:4444", "-addr", "127.0.0.1:0"},
			want: `-issuer "http://hydra:4444" uses http on a host other than loopback: pass -allow-insecure-http (or AEGIS_ALLOW_INSECURE_HTTP=true) to permit it`},
		{name: "insecure introspection URL", args: []string{"-issuer", "https://i.example", "-mode", "introspect", "-introspection-url", "http://hydra:4445/admin/oauth2/introspect"},
			want: "-introspection-url"},
		{name: "bad address", args: []string{"-issuer", "https://i.example", "-addr", "nonsense"}, want: "nonsense"},
		{name: "unknown mode", args: []string{"-issuer", "https://i.example", "-mode", "magic"}, want: "-mode"},
		{name: "unknown introspection auth", args: []string{"-issuer", "https://i.example", "-introspection-auth", "tls"}, want: "-introspection-auth"},
		{name: "negative cache TTL", args: []string{"-issuer", "https://i.example", "-introspection-cache-ttl", "-1s"}, want: "negative"},
		{name: "bad cache TTL in the environment", args: []string{"-issuer", "https://i.example"}, env: map[string]string{"AEGIS_INTROSPECTION_CACHE_TTL": "soon"}, want: "AEGIS_INTROSPECTION_CACHE_TTL"},
		{name: "negative default rate limit", args: []string{"-issuer", "https://i.example", "-default-rate-limit", "-1"}, want: "-default-rate-limit"},
		{name: "unknown failure policy", args: []string{"-issuer", "https://i.example", "-rate-limit-failure", "maybe"}, want: "-rate-limit-failure"},
		{name: "bad Redis URL", args: []string{"-issuer", "https://i.example", "-addr", "127.0.0.1:0", "-redis-url", "http://x", "-default-rate-limit", "1"}, want: "-redis-url"},
		{name: "shared introspection cache without Redis", args: []string{"-issuer", "https://i.example", "-addr", "127.0.0.1:0", "-introspection-cache", "shared"}, want: "-introspection-cache shared needs -redis-url"},
		{name: "unknown introspection cache", args: []string{"-issuer", "https://i.example", "-addr", "127.0.0.1:0", "-introspection-cache", "remote"}, want: "want local or shared"},
		{name: "resource over http", args: []string{"-issuer", "https://i.example", "-addr", "127.0.0.1:0", "-resource", "http://api.example.com"}, want: "-resource"},
		{name: "resource with a fragment", args: []string{"-issuer", "https://i.example", "-addr", "127.0.0.1:0", "-resource", "https://api.example.com/#x"}, want: "-resource"},
		{name: "insecure clients URL", args: []string{"-issuer", "https://i.example", "-addr", "127.0.0.1:0", "-clients-url", "http://hydra:4445"}, want: "-clients-url"},
		{name: "zero clients cache TTL", args: []string{"-issuer", "https://i.example", "-clients-cache-ttl", "0s"}, want: "-clients-cache-ttl"},
		{name: "bad metrics address", args: []string{"-issuer", "https://i.example", "-addr", "127.0.0.1:0", "-metrics-addr", "nonsense"}, want: "-metrics-addr"},
		{name: "nonces shared through a Redis that does not answer", args: []string{"-issuer", "https://i.example", "-addr", "127.0.0.1:0",
			"-redis-url", "redis://127.0.0.1:" + strconv.Itoa(redistest.FreePort(t)) + "/0", "-dpop-nonce"}, want: "-dpop-nonce with -redis-url"},
		{name: "proxy headers without trusted proxies", args: []string{"-issuer", "https://i.example", "-client-cert-header", "X-SSL-Client-Cert"}, want: "need -trusted-proxies"},
		{name: "trusted proxies without headers", args: []string{"-issuer", "https://i.example", "-trusted-proxies", "10.0.0.0/8"}, want: "-trusted-proxies needs"},
		{name: "bad trusted proxy", args: []string{"-issuer", "https://i.example", "-trusted-proxies", "nginx", "-forwarded-host-header", "X-Forwarded-Host"}, want: `"nginx" is neither`},
		{name: "unknown certificate format", args: []string{"-issuer", "https://i.example", "-trusted-proxies", "127.0.0.1", "-client-cert-header", "X", "-client-cert-format", "pem"}, want: "-client-cert-format"},
		{name: "basic auth without a client ID", args: []string{"-issuer", "https://i.example", "-addr", "127.0.0.1:0", "-mode", "introspect", "-introspection-auth", "basic"}, want: "ClientID"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(context.Background(), tc.args, func(k string) string { return tc.env[k] }, &stderr, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error()+stderr.String(), tc.want)
		})
	}
}

func TestServerJSONShape(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	base, _ := startServer(t, []string{"-addr", "127.0.0.1:0", "-issuer", iss.URL, "-audience", iss.Audience}, nil)
	_, body := call(t, "GET", base+"/whoami", iss.M2M("w"))
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &m))
	assert.ElementsMatch(t, []string{"kind", "subject", "client_id", "scopes", "email"}, keys(m))
	assert.True(t, strings.HasPrefix(body, "{"))
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestServerModes(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{HideIntrospectionEndpoint: true})
	iss.RequireIntrospectionClient("api-gateway", "s3cret")
	tests := []struct {
		name         string
		args         []string
		env          map[string]string
		jwtStatus    int
		opaqueStatus int
	}{
		{name: "jwt", args: []string{"-mode", "jwt"}, jwtStatus: 200, opaqueStatus: 401},
		{name: "hybrid with basic auth", args: []string{"-mode", "hybrid", "-introspection-url", iss.IntrospectionURL(),
			"-introspection-client-id", "api-gateway"}, env: map[string]string{"AEGIS_INTROSPECTION_CLIENT_SECRET": "s3cret"},
			jwtStatus: 200, opaqueStatus: 200},
		{name: "introspect with post auth from the environment", env: map[string]string{
			"AEGIS_MODE": "introspect", "AEGIS_INTROSPECTION_URL": iss.IntrospectionURL(), "AEGIS_INTROSPECTION_AUTH": "post",
			"AEGIS_INTROSPECTION_CLIENT_ID": "api-gateway", "AEGIS_INTROSPECTION_CLIENT_SECRET": "s3cret", "AEGIS_INTROSPECTION_CACHE_TTL": "0s",
		}, jwtStatus: 200, opaqueStatus: 200},
		{name: "hybrid with wrong credentials", args: []string{"-mode", "hybrid", "-introspection-url", iss.IntrospectionURL(),
			"-introspection-auth", "basic", "-introspection-client-id", "api-gateway", "-introspection-client-secret", "wrong"},
			jwtStatus: 200, opaqueStatus: 503},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-addr", "127.0.0.1:0", "-issuer", iss.URL, "-audience", iss.Audience}, tc.args...)
			base, _ := startServer(t, args, tc.env)
			resp, _ := call(t, "GET", base+"/data", iss.M2M("w", "data:read"))
			assert.Equal(t, tc.jwtStatus, resp.StatusCode)
			resp, body := call(t, "GET", base+"/whoami", iss.OpaqueUser("user-42", "web-app", "alice@example.com", "data:read"))
			require.Equal(t, tc.opaqueStatus, resp.StatusCode, body)
			if tc.opaqueStatus == 200 {
				assert.JSONEq(t, `{"kind":"user","subject":"user-42","client_id":"web-app","scopes":["data:read"],"email":"alice@example.com"}`, body)
				revoked := iss.OpaqueM2M("w", "data:read")
				iss.Revoke(revoked)
				resp, _ = call(t, "GET", base+"/data", revoked)
				assert.Equal(t, 401, resp.StatusCode)
				assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`)
			}
			if tc.opaqueStatus == 503 {
				assert.Equal(t, "5", resp.Header.Get("Retry-After"))
			}
		})
	}
}

// fakeHydraAdmin answers GET /admin/clients/{id} with metadata limits.
func fakeHydraAdmin(t *testing.T, limits map[string]int) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimPrefix(r.URL.Path, "/admin/clients/")
		n, ok := limits[id]
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, `{"client_id":%q,"metadata":{"rate_limit_per_minute":%d}}`, id, n)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestServerRateLimits(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	admin := fakeHydraAdmin(t, map[string]int{"limited": 3})
	redisURL := "redis://" + redistest.Start(t).Addr() + "/0"
	tests := []struct {
		name   string
		args   []string
		client string
		passes int // of 6 immediate requests
		limit  string
	}{
		{name: "limit from Hydra metadata, in memory", args: []string{"-clients-url", admin}, client: "limited", passes: 3, limit: "3"},
		{name: "unknown client, no default: unlimited", args: []string{"-clients-url", admin}, client: "other", passes: 6},
		{name: "default for the others", args: []string{"-clients-url", admin, "-default-rate-limit", "2"}, client: "other", passes: 2, limit: "2"},
		{name: "default alone", args: []string{"-default-rate-limit", "4"}, client: "anyone", passes: 4, limit: "4"},
		{name: "shared through Redis", args: []string{"-clients-url", admin, "-redis-url", redisURL}, client: "limited", passes: 3, limit: "3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-addr", "127.0.0.1:0", "-issuer", iss.URL, "-audience", iss.Audience}, tc.args...)
			base, _ := startServer(t, args, nil)
			token := iss.M2M(tc.client, "data:read")
			passes := 0
			for range 6 {
				resp, _ := call(t, "GET", base+"/data", token)
				switch resp.StatusCode {
				case 200:
					passes++
				case 429:
					assert.NotEmpty(t, resp.Header.Get("Retry-After"))
					assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
				default:
					t.Fatalf("status %d", resp.StatusCode)
				}
				assert.Equal(t, tc.limit, resp.Header.Get("X-RateLimit-Limit"))
				if tc.limit != "" {
					assert.Equal(t, `"client";q=`+tc.limit+`;w=60`, resp.Header.Get("RateLimit-Policy"))
				}
			}
			assert.Equal(t, tc.passes, passes)
		})
	}
}

// TestServerSharesIntrospection: replicas given -redis-url share their
// introspection answers (each token is introspected once for all three),
// unless -introspection-cache local keeps them apart.
func TestServerSharesIntrospection(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	redisURL := "redis://" + redistest.Start(t).Addr() + "/0"
	tests := []struct {
		name  string
		args  []string
		calls int64 // for 10 tokens through 3 replicas
		log   string
	}{
		{name: "shared by default with -redis-url", args: []string{"-redis-url", redisURL}, calls: 10, log: "introspection_cache=shared"},
		{name: "local on request", args: []string{"-redis-url", redisURL, "-introspection-cache", "local"}, calls: 30, log: "introspection_cache=local"},
		{name: "local without Redis", calls: 30, log: "introspection_cache=local"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-addr", "127.0.0.1:0", "-issuer", iss.URL, "-audience", iss.Audience, "-mode", "introspect",
				"-introspection-url", iss.IntrospectionURL(), "-introspection-auth", "none"}, tc.args...)
			var bases []string
			for range 3 {
				base, logs := startServer(t, args, nil)
				assert.Contains(t, logs.String(), tc.log)
				bases = append(bases, base)
			}
			before := iss.IntrospectionCalls()
			for i := range 10 {
				token := iss.OpaqueM2M(fmt.Sprintf("svc-%d", i), "data:read")
				for _, base := range bases {
					resp, _ := call(t, "GET", base+"/data", token)
					assert.Equal(t, http.StatusOK, resp.StatusCode)
				}
			}
			assert.Equal(t, tc.calls, iss.IntrospectionCalls()-before)
		})
	}
}

func TestServerRateLimitFailurePolicy(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	deadRedis := "redis://127.0.0.1:" + strconv.Itoa(redistest.FreePort(t)) + "/0"
	for _, tc := range []struct {
		policy string
		status int
	}{{"open", 200}, {"closed", 503}} {
		t.Run(tc.policy, func(t *testing.T) {
			base, _ := startServer(t, []string{"-addr", "127.0.0.1:0", "-issuer", iss.URL, "-audience", iss.Audience,
				"-default-rate-limit", "100", "-redis-url", deadRedis, "-rate-limit-failure", tc.policy}, nil)
			resp, _ := call(t, "GET", base+"/data", iss.M2M("w", "data:read"))
			assert.Equal(t, tc.status, resp.StatusCode)
			if tc.status == 503 {
				assert.NotEmpty(t, resp.Header.Get("Retry-After"))
			}
		})
	}
}

// TestServerMetrics drives the contract's routes with -metrics-addr and
// reads the decisions back from /metrics.
func TestServerMetrics(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	base, logs := startServer(t, []string{"-addr", "127.0.0.1:0", "-issuer", iss.URL, "-audience", iss.Audience,
		"-metrics-addr", "127.0.0.1:0", "-default-rate-limit", "2"}, nil)
	m := regexp.MustCompile(`msg="serving metrics" addr=(\S+)`).FindStringSubmatch(logs.String())
	require.Len(t, m, 2, logs.String())
	metricsURL := "http://" + m[1] + "/metrics"

	reader := iss.M2M("reader", "data:read")
	user := iss.User("user-42", "web-app", "alice@example.com", "data:read")
	expired := iss.Expired("reader", "data:read")
	steps := []struct {
		method, path, token string
		status              int
	}{
		{"GET", "/data", reader, 200},
		{"GET", "/data", reader, 200},
		{"GET", "/data", reader, 429},
		{"GET", "/whoami", user, 200},
		{"POST", "/data", user, 403},
		{"GET", "/data", expired, 401},
		{"GET", "/data", "", 401},
	}
	for _, s := range steps {
		resp, _ := call(t, s.method, base+s.path, s.token)
		require.Equal(t, s.status, resp.StatusCode, "%s %s", s.method, s.path)
	}

	resp, body := call(t, "GET", metricsURL, "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for _, want := range []string{
		`aegis_decisions_total{kind="m2m",outcome="accepted",reason="accepted"} 2`,
		`aegis_decisions_total{kind="m2m",outcome="refused",reason="rate_limited"} 1`,
		// The router authenticates before each route's Require: the POST is
		// accepted by the one, then refused by the other.
		`aegis_decisions_total{kind="user",outcome="accepted",reason="accepted"} 2`,
		`aegis_decisions_total{kind="user",outcome="refused",reason="insufficient_scope"} 1`,
		`aegis_decisions_total{kind="none",outcome="refused",reason="token_expired"} 1`,
		`aegis_decisions_total{kind="none",outcome="refused",reason="token_missing"} 1`,
		`aegis_jwks_fetches_total{issuer="` + iss.URL + `",result="success"} 1`,
		`aegis_jwks_keys{issuer="` + iss.URL + `"} 1`,
		`aegis_ratelimit_decisions_total{client_id="reader",result="allowed"} 2`,
		`aegis_ratelimit_decisions_total{client_id="reader",result="denied"} 1`,
		`go_goroutines `,
	} {
		assert.Contains(t, body, want)
	}
	for _, tok := range []string{reader, user, expired} {
		assert.NotContains(t, body, tok[strings.LastIndexByte(tok, '.')+1:])
		assert.NotContains(t, logs.String(), tok[strings.LastIndexByte(tok, '.')+1:])
	}
}

// Hardening, round 2, point 11: -audience stays optional (the contract),
// but its absence is named as insecure in -h and warned about at startup.
func TestHardening2_ServerWithoutAudienceSaysSoInHelpAndAtStartup(t *testing.T) {
	var help bytes.Buffer
	err := run(context.Background(), []string{"-h"}, func(string) string { return "" }, &help, nil)
	require.ErrorIs(t, err, flag.ErrHelp)
	usage := help.String()
	i := strings.Index(usage, "-audience")
	require.GreaterOrEqual(t, i, 0, "-h lists -audience")
	entry := usage[i:]
	if j := strings.Index(entry[1:], "\n  -"); j >= 0 {
		entry = entry[:j+1]
	}
	assert.Contains(t, entry, "INSECURE when empty", "-h says that no -audience is insecure")
	assert.Contains(t, entry, "any other API", "-h says what is accepted without it")

	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	_, logs := startServer(t, []string{"-addr", "127.0.0.1:0", "-issuer", iss.URL}, nil)
	assert.Regexp(t, `level=WARN[^\n]*no -audience given`, logs.String(), "a warning at startup")
}

// TestServerAllowInsecureHTTP: -allow-insecure-http (or
// AEGIS_ALLOW_INSECURE_HTTP) lets a plain-HTTP issuer beyond loopback be
// used, with a warning at startup (issue 14, point 3).
func TestServerAllowInsecureHTTP(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"flag", []string{"-allow-insecure-http"}, nil},
		{"environment", nil, map[string]string{"AEGIS_ALLOW_INSECURE_HTTP": "true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-addr", "127.0.0.1:0", "-issuer", "http://hydra:4444", "-audience", "https://api.test"}, tt.args...)
			_, logs := startServer(t, args, tt.env)
			assert.Regexp(t, `level=WARN[^\n]*-allow-insecure-http`, logs.String(), "a warning at startup")
		})
	}
}

// TestServerHelp: -h ends run with flag.ErrHelp (exit status 0), lists
// every flag with its AEGIS_* variable, and shows an invocation for Hydra
// (issue 14, point 4).
func TestServerHelp(t *testing.T) {
	var help bytes.Buffer
	err := run(context.Background(), []string{"-h"}, func(string) string { return "" }, &help, nil)
	require.ErrorIs(t, err, flag.ErrHelp)
	assert.Equal(t, 0, flagenv.ExitCode(err, 2))
	flags := regexp.MustCompile(`(?m)^  -([a-z-]+)`).FindAllStringSubmatch(help.String(), -1)
	require.GreaterOrEqual(t, len(flags), 18, "every flag listed")
	for _, f := range flags {
		assert.Contains(t, help.String(), flagenv.Name("AEGIS_", f[1])+" ", "the variable of -%s", f[1])
	}
	assert.Contains(t, help.String(), "Example:\n  server -issuer http://127.0.0.1:4444")
	assert.Contains(t, help.String(), "/admin/oauth2/introspect")
}

// TestServerResource: -resource (RFC 8707) makes the resource the audience
// when -audience is absent, puts resource_metadata in every challenge (RFC
// 9728 §5.1) and serves the metadata at the well-known path, path-inserted
// for a resource with a path (§3.1), echoing the resource exactly (§3.3).
func TestServerResource(t *testing.T) {
	for _, tc := range []struct{ resource, path, metadataURL string }{
		{"https://api.example.com", "/.well-known/oauth-protected-resource", "https://api.example.com/.well-known/oauth-protected-resource"},
		{"https://api.example.com/v1", "/.well-known/oauth-protected-resource/v1", "https://api.example.com/.well-known/oauth-protected-resource/v1"},
	} {
		t.Run(tc.resource, func(t *testing.T) {
			iss := jwkstest.NewIssuer(t, jwkstest.Config{Audience: tc.resource})
			base, logs := startServer(t, []string{"-addr", "127.0.0.1:0", "-issuer", iss.URL, "-resource", tc.resource}, nil)
			assert.NotContains(t, logs.String(), "no -audience given", "the resource is the audience")

			resp, body := call(t, "GET", base+tc.path, "")
			require.Equal(t, http.StatusOK, resp.StatusCode, body)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			assert.JSONEq(t, fmt.Sprintf(`{"resource":%q,"authorization_servers":[%q],"scopes_supported":["data:read","data:write"],"bearer_methods_supported":["header"],"dpop_signing_alg_values_supported":["RS256","RS384","RS512","PS256","PS384","PS512","ES256","ES384","ES512","EdDSA","Ed25519"]}`,
				tc.resource, iss.URL), body)
			assert.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"), "the document is public")
			resp, _ = call(t, "OPTIONS", base+tc.path, "")
			assert.Equal(t, http.StatusNoContent, resp.StatusCode, "a CORS preflight")

			resp, _ = call(t, "GET", base+"/data", "")
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			assert.Equal(t, `Bearer realm="api", resource_metadata="`+tc.metadataURL+`"`, resp.Header.Get("WWW-Authenticate"))
			resp, _ = call(t, "POST", base+"/data", iss.M2M("worker", "data:read"))
			assert.Equal(t, http.StatusForbidden, resp.StatusCode)
			assert.Equal(t, `Bearer realm="api", error="insufficient_scope", error_description="The access token does not grant the scope this resource needs", scope="data:write", resource_metadata="`+tc.metadataURL+`"`,
				resp.Header.Get("WWW-Authenticate"))
			resp, _ = call(t, "GET", base+"/data", iss.M2M("worker", "data:read"))
			assert.Equal(t, http.StatusOK, resp.StatusCode, "a token for the resource")
			claims := iss.Claims("worker", "worker", "data:read")
			claims["aud"] = []string{"https://other.example.com"}
			resp, _ = call(t, "GET", base+"/data", iss.Sign(claims))
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a token for another resource (RFC 8707)")
		})
	}
}

// TestServerAdmin: GET /admin needs data:read and a user who authenticated
// with acr mfa within the last 300 s (RFC 9470 §3); acr and auth_time come
// from Hydra's ext as a consent app sets them, or from the top level.
func TestServerAdmin(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	base, _ := startServer(t, []string{"-addr", "127.0.0.1:0", "-issuer", iss.URL, "-audience", iss.Audience}, nil)
	now := time.Now()
	user := func(ext map[string]any, scopes ...string) string {
		c := iss.Claims("user-42", "web-app", scopes...)
		ext["email"] = "alice@example.com"
		c["ext"] = ext
		return iss.Sign(c)
	}
	const acrChallenge = `Bearer realm="api", error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="mfa", max_age="300"`
	const ageChallenge = `Bearer realm="api", error="insufficient_user_authentication", error_description="More recent authentication is required", acr_values="mfa", max_age="300"`
	tests := []struct {
		name      string
		token     string
		status    int
		challenge string
	}{
		{"mfa a minute ago", user(map[string]any{"acr": "mfa", "auth_time": now.Add(-time.Minute).Unix()}, "data:read"), 200, ""},
		{"no acr", user(map[string]any{"auth_time": now.Add(-time.Minute).Unix()}, "data:read"), 401, acrChallenge},
		{"mfa 10 minutes ago", user(map[string]any{"acr": "mfa", "auth_time": now.Add(-10 * time.Minute).Unix()}, "data:read"), 401, ageChallenge},
		{"mfa but no data:read", user(map[string]any{"acr": "mfa", "auth_time": now.Add(-time.Minute).Unix()}), 403, ""},
		{"an M2M token", iss.M2M("worker", "data:read"), 401, ""},
		{"no token", "", 401, `Bearer realm="api"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := call(t, "GET", base+"/admin", tt.token)
			require.Equal(t, tt.status, resp.StatusCode, body)
			if tt.challenge != "" {
				assert.Equal(t, tt.challenge, resp.Header.Get("WWW-Authenticate"))
			}
			if tt.status == 200 {
				assert.Contains(t, body, `"subject":"user-42"`)
			}
		})
	}
}
