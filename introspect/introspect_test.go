package introspect_test

import (
	"github.com/olympus/aegis"

	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/internal/testutil"
	"github.com/olympus/aegis/introspect"
	"github.com/olympus/aegis/jwks/jwkstest"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func newClock() *testutil.Clock { return testutil.NewClock(t0) }

type fixture struct {
	iss    *jwkstest.Issuer
	clk    *testutil.Clock
	client *introspect.Client
	logs   *testutil.Buffer
}

func newFixture(t *testing.T, tweak func(*introspect.Config)) *fixture {
	t.Helper()
	clk := newClock()
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Now: clk.Now})
	logs := &testutil.Buffer{}
	cfg := introspect.Config{
		Endpoint: iss.IntrospectionURL(), Issuer: iss.URL, Audience: iss.Audience, Now: clk.Now,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := introspect.New(cfg)
	require.NoError(t, err)
	return &fixture{iss: iss, clk: clk, client: c, logs: logs}
}

func TestIntrospectActiveOpaqueToken(t *testing.T) {
	f := newFixture(t, nil)
	token := f.iss.OpaqueUser("user-42", "web-app", "alice@example.com", "openid", "data:read")
	res, err := f.client.Introspect(context.Background(), token)
	require.NoError(t, err)
	assert.Equal(t, "user-42", res.Subject)
	assert.Equal(t, "web-app", res.ClientID)
	assert.Equal(t, "openid data:read", res.Scope)
	assert.Equal(t, []string{f.iss.Audience}, res.Audience)
	assert.Equal(t, f.iss.URL, res.Issuer)
	assert.Equal(t, "access_token", res.TokenUse)
	assert.Equal(t, "Bearer", res.TokenType)
	assert.Equal(t, t0.Add(time.Hour), res.Expiry)
	assert.Equal(t, t0, res.IssuedAt)
	assert.Equal(t, t0, res.NotBefore)
	assert.NotEmpty(t, res.TokenID)
	ext, ok := res.Raw("ext")
	require.True(t, ok)
	assert.JSONEq(t, `{"email":"alice@example.com"}`, string(ext))
	_, ok = res.Raw("nope")
	assert.False(t, ok)
}

// TestConcurrentRequestsShareOneCall: 100 concurrent requests with one new
// token make exactly one call.
func TestConcurrentRequestsShareOneCall(t *testing.T) {
	f := newFixture(t, nil)
	token := f.iss.OpaqueM2M("worker", "data:read")
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	f.iss.ServeIntrospectionWith(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		fmt.Fprintf(w, `{"active":true,"sub":"worker","client_id":"worker","aud":[%q],"exp":%d}`, f.iss.Audience, t0.Add(time.Hour).Unix())
	}))
	var wg sync.WaitGroup
	var ok atomic.Int64
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := f.client.Introspect(context.Background(), token); err == nil {
				ok.Add(1)
			}
		}()
	}
	<-arrived
	close(release)
	wg.Wait()
	// Requests that arrived after the call ended were served from the cache.
	assert.Equal(t, int64(100), ok.Load())
	assert.Equal(t, int64(1), f.iss.IntrospectionCalls())
	assert.Equal(t, int64(1), introspect.Calls(f.client))
}

func TestCacheNeverOutlivesExp(t *testing.T) {
	f := newFixture(t, func(c *introspect.Config) { c.Cache.TTL = time.Hour; c.Leeway = -1 })
	c := f.iss.Claims("worker", "worker")
	c["exp"] = t0.Add(2 * time.Minute).Unix()
	token := f.iss.Opaque(c)
	_, err := f.client.Introspect(context.Background(), token)
	require.NoError(t, err)
	f.clk.Advance(time.Minute)
	_, err = f.client.Introspect(context.Background(), token)
	require.NoError(t, err)
	assert.Equal(t, int64(1), f.iss.IntrospectionCalls(), "served from the cache before exp")

	f.clk.Advance(time.Minute)
	_, err = f.client.Introspect(context.Background(), token)
	require.ErrorIs(t, err, introspect.ErrInactive, "at exp the cache is bypassed and the server says inactive")
	assert.Equal(t, int64(2), f.iss.IntrospectionCalls())
}

func TestInactiveAnswersAreCachedNegatively(t *testing.T) {
	f := newFixture(t, func(c *introspect.Config) { c.Cache.NegativeTTL = 10 * time.Second })
	token := "ory_at_never-issued.x"
	for range 3 {
		_, err := f.client.Introspect(context.Background(), token)
		require.ErrorIs(t, err, introspect.ErrInactive)
	}
	assert.Equal(t, int64(1), f.iss.IntrospectionCalls())
	f.clk.Advance(9 * time.Second)
	_, err := f.client.Introspect(context.Background(), token)
	require.ErrorIs(t, err, introspect.ErrInactive)
	assert.Equal(t, int64(1), f.iss.IntrospectionCalls(), "still within the negative TTL")
	f.clk.Advance(time.Second)
	_, err = f.client.Introspect(context.Background(), token)
	require.ErrorIs(t, err, introspect.ErrInactive)
	assert.Equal(t, int64(2), f.iss.IntrospectionCalls(), "asked again once the negative TTL ended")
}

func TestRevokedTokenRefusedOncePositiveEntryExpires(t *testing.T) {
	f := newFixture(t, func(c *introspect.Config) { c.Cache.TTL = 30 * time.Second })
	token := f.iss.OpaqueM2M("worker", "data:read")
	_, err := f.client.Introspect(context.Background(), token)
	require.NoError(t, err)
	f.iss.Revoke(token)
	f.clk.Advance(29 * time.Second)
	_, err = f.client.Introspect(context.Background(), token)
	assert.NoError(t, err, "the cached answer stands until its TTL")
	f.clk.Advance(time.Second)
	_, err = f.client.Introspect(context.Background(), token)
	require.ErrorIs(t, err, introspect.ErrInactive)
}

func TestJunkTokensMakeNoCall(t *testing.T) {
	f := newFixture(t, func(c *introspect.Config) { c.MaxTokenLength = 64 })
	for _, junk := range []string{"", "has space", `quote"`, "tab\t", strings.Repeat("a", 65), "é", "=abc", "a=b"} {
		_, err := f.client.Introspect(context.Background(), junk)
		require.ErrorIs(t, err, introspect.ErrMalformed, "%q", junk)
		if junk != "" {
			assert.NotContains(t, err.Error(), junk)
		}
	}
	assert.Zero(t, f.iss.IntrospectionCalls())
}

// TestStrictAnswers: anything but a well-typed answer with "active": true
// is not a pass.
func TestStrictAnswers(t *testing.T) {
	exp := t0.Add(time.Hour).Unix()
	good := func(extra string) string {
		return fmt.Sprintf(`{"active":true,"sub":"w","client_id":"w","aud":["https://api.test"],"exp":%d%s}`, exp, extra)
	}
	tests := []struct {
		name   string
		status int
		body   string
		want   error
	}{
		{name: "active true", body: good(""), want: nil},
		{name: "aud as a string", body: fmt.Sprintf(`{"active":true,"sub":"w","aud":"https://api.test","exp":%d}`, exp), want: nil},
		{name: "active as a string", body: `{"active":"true","sub":"w","aud":["https://api.test"]}`, want: introspect.ErrUnavailable},
		{name: "active as a number", body: `{"active":1}`, want: introspect.ErrUnavailable},
		{name: "active missing", body: `{"sub":"w"}`, want: introspect.ErrUnavailable},
		{name: "active false", body: `{"active":false}`, want: introspect.ErrInactive},
		{name: "duplicate active", body: `{"active":false,"active":true}`, want: introspect.ErrUnavailable},
		{name: "not JSON", body: `<html>`, want: introspect.ErrUnavailable},
		{name: "exp as a string", body: `{"active":true,"sub":"w","aud":["https://api.test"],"exp":"soon"}`, want: introspect.ErrUnavailable},
		{name: "exp passed", body: `{"active":true,"sub":"w","aud":["https://api.test"],"exp":1}`, want: introspect.ErrExpired},
		{name: "nbf ahead", body: good(fmt.Sprintf(`,"nbf":%d`, t0.Add(time.Hour).Unix())), want: introspect.ErrNotYetValid},
		{name: "other issuer", body: good(`,"iss":"https://evil.test"`), want: introspect.ErrIssuer},
		{name: "other audience", body: fmt.Sprintf(`{"active":true,"sub":"w","aud":["https://other.test"],"exp":%d}`, exp), want: introspect.ErrAudience},
		{name: "no audience", body: fmt.Sprintf(`{"active":true,"sub":"w","exp":%d}`, exp), want: introspect.ErrAudience},
		{name: "refresh token", body: good(`,"token_use":"refresh_token"`), want: introspect.ErrTokenUse},
		{name: "no sub", body: fmt.Sprintf(`{"active":true,"aud":["https://api.test"],"exp":%d}`, exp), want: introspect.ErrClaims},
		{name: "server error", status: 500, body: `{}`, want: introspect.ErrUnavailable},
		{name: "bad gateway", status: 502, body: ``, want: introspect.ErrUnavailable},
		{name: "credentials refused", status: 401, body: `{"error":"invalid_client"}`, want: introspect.ErrCredentials},
		{name: "oversized answer", body: good(`,"pad":"` + strings.Repeat("x", 70<<10) + `"`), want: introspect.ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			f.iss.ServeIntrospectionWith(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.status != 0 {
					w.WriteHeader(tc.status)
				}
				_, _ = io.WriteString(w, tc.body)
			}))
			f.iss.Audience = "https://api.test"
			res, err := f.client.Introspect(context.Background(), "ory_at_abc.def")
			if tc.want == nil {
				require.NoError(t, err)
				assert.Equal(t, "w", res.Subject)
				return
			}
			require.ErrorIs(t, err, tc.want)
			assert.Nil(t, res)
			if errors.Is(tc.want, introspect.ErrUnavailable) || errors.Is(tc.want, introspect.ErrCredentials) {
				var u *aegis.Refusal
				require.ErrorAs(t, err, &u)
				assert.Equal(t, introspect.DefaultRetryAfter, u.RetryAfter)
			}
		})
	}
}

func TestCredentialsRefusalIsLogged(t *testing.T) {
	f := newFixture(t, func(c *introspect.Config) { c.ClientID, c.ClientSecret = "aegis", "wrong" })
	f.iss.RequireIntrospectionClient("aegis", "right")
	_, err := f.client.Introspect(context.Background(), f.iss.OpaqueM2M("w"))
	require.ErrorIs(t, err, introspect.ErrUnavailable)
	require.ErrorIs(t, err, introspect.ErrCredentials)
	assert.Contains(t, f.logs.String(), "level=ERROR")
	assert.Contains(t, f.logs.String(), "refused Aegis's client credentials")

	// Every call fails the same way: one record a minute, with a count.
	for range 9 {
		_, err := f.client.Introspect(context.Background(), f.iss.OpaqueM2M("w"))
		require.ErrorIs(t, err, introspect.ErrCredentials)
	}
	assert.Len(t, f.logs.Lines("refused Aegis's client credentials"), 1)
	f.clk.Advance(time.Minute)
	_, err = f.client.Introspect(context.Background(), f.iss.OpaqueM2M("w"))
	require.ErrorIs(t, err, introspect.ErrCredentials)
	assert.Len(t, f.logs.Lines("refused Aegis's client credentials"), 2)
	assert.Len(t, f.logs.Lines("refused Aegis's client credentials", "held_back=9"), 1)
}

// TestRequestShape checks the form encoding, the hint and each client
// authentication method on the wire.
func TestRequestShape(t *testing.T) {
	tests := []struct {
		name  string
		tweak func(*introspect.Config)
		check func(t *testing.T, r *http.Request)
	}{
		{name: "none", check: func(t *testing.T, r *http.Request) {
			_, _, ok := r.BasicAuth()
			assert.False(t, ok)
			assert.Empty(t, r.PostForm.Get("client_id"))
		}},
		{name: "client_secret_basic, form-encoded first", tweak: func(c *introspect.Config) { c.ClientID, c.ClientSecret = "api:gateway", "s+cr/t" }, check: func(t *testing.T, r *http.Request) {
			id, secret, ok := r.BasicAuth()
			require.True(t, ok)
			assert.Equal(t, "api%3Agateway", id)
			assert.Equal(t, "s%2Bcr%2Ft", secret)
		}},
		{name: "client_secret_post", tweak: func(c *introspect.Config) { c.Auth, c.ClientID, c.ClientSecret = introspect.AuthPost, "api", "s" }, check: func(t *testing.T, r *http.Request) {
			_, _, ok := r.BasicAuth()
			assert.False(t, ok)
			assert.Equal(t, "api", r.PostForm.Get("client_id"))
			assert.Equal(t, "s", r.PostForm.Get("client_secret"))
		}},
		{name: "caller-supplied", tweak: func(c *introspect.Config) {
			c.Authenticate = func(r *http.Request) error { r.Header.Set("Authorization", "Bearer gateway-token"); return nil }
		}, check: func(t *testing.T, r *http.Request) {
			assert.Equal(t, "Bearer gateway-token", r.Header.Get("Authorization"))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.tweak)
			var raw string
			var seen *http.Request
			f.iss.ServeIntrospectionWith(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				raw = string(b)
				r.PostForm, _ = url.ParseQuery(raw)
				seen = r
				_, _ = io.WriteString(w, `{"active":false}`)
			}))
			_, err := f.client.Introspect(context.Background(), "ory_at_a+b/c.d==")
			require.ErrorIs(t, err, introspect.ErrInactive)
			require.NotNil(t, seen)
			assert.Contains(t, raw, "token=ory_at_a%2Bb%2Fc.d%3D%3D")
			assert.Equal(t, "access_token", seen.PostForm.Get("token_type_hint"))
			assert.Equal(t, "application/x-www-form-urlencoded", seen.Header.Get("Content-Type"))
			assert.Equal(t, http.MethodPost, seen.Method)
			tc.check(t, seen)
		})
	}
}

func TestServerUnreachable(t *testing.T) {
	f := newFixture(t, func(c *introspect.Config) { c.Endpoint = "http://127.0.0.1:1/introspect" })
	_, err := f.client.Introspect(context.Background(), "ory_at_x.y")
	var u *aegis.Refusal
	require.ErrorAs(t, err, &u)
	assert.Equal(t, introspect.DefaultRetryAfter, u.RetryAfter)
	assert.NotContains(t, err.Error(), "ory_at_x.y")
}

func TestTimeoutAndCancellation(t *testing.T) {
	f := newFixture(t, func(c *introspect.Config) { c.Timeout = 50 * time.Millisecond })
	hold := make(chan struct{})
	defer close(hold)
	f.iss.ServeIntrospectionWith(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	}))
	_, err := f.client.Introspect(context.Background(), "ory_at_slow.a")
	require.ErrorIs(t, err, introspect.ErrUnavailable)
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = f.client.Introspect(ctx, "ory_at_slow.b")
	assert.ErrorIs(t, err, context.Canceled)
}

// TestOutboundCallsAreBounded: with two slots, ten distinct tokens never
// have more than two calls under way.
func TestOutboundCallsAreBounded(t *testing.T) {
	f := newFixture(t, func(c *introspect.Config) { c.MaxConcurrent = 2; c.Timeout = 5 * time.Second })
	var inFlight, peak atomic.Int64
	arrived := make(chan struct{}, 10)
	release := make(chan struct{})
	f.iss.ServeIntrospectionWith(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		arrived <- struct{}{}
		<-release
		inFlight.Add(-1)
		_, _ = io.WriteString(w, `{"active":false}`)
	}))
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.client.Introspect(context.Background(), fmt.Sprintf("ory_at_token%d.x", i))
			assert.ErrorIs(t, err, introspect.ErrInactive)
		}()
	}
	<-arrived
	<-arrived
	close(release)
	wg.Wait()
	assert.Equal(t, int64(2), peak.Load())
	assert.Equal(t, int64(10), f.iss.IntrospectionCalls())
}

func TestGraceWindowServesCachedAnswerDuringOutage(t *testing.T) {
	f := newFixture(t, func(c *introspect.Config) { c.Cache.TTL = 10 * time.Second; c.Cache.Grace = time.Minute })
	token := f.iss.OpaqueM2M("worker")
	_, err := f.client.Introspect(context.Background(), token)
	require.NoError(t, err)
	f.iss.ServeIntrospectionWith(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))

	f.clk.Advance(30 * time.Second)
	res, err := f.client.Introspect(context.Background(), token)
	require.NoError(t, err, "stale but within grace while the server is down")
	assert.Equal(t, "worker", res.Subject)
	assert.Contains(t, f.logs.String(), "grace window")

	f.clk.Advance(time.Minute)
	_, err = f.client.Introspect(context.Background(), token)
	require.ErrorIs(t, err, introspect.ErrUnavailable, "past the grace window")

	other := f.iss.OpaqueM2M("new-worker")
	_, err = f.client.Introspect(context.Background(), other)
	require.ErrorIs(t, err, introspect.ErrUnavailable, "no grace for a token never seen")
}

func TestGraceNeverPastExp(t *testing.T) {
	f := newFixture(t, func(c *introspect.Config) { c.Cache.TTL = 10 * time.Second; c.Cache.Grace = time.Hour; c.Leeway = -1 })
	c := f.iss.Claims("worker", "worker")
	c["exp"] = t0.Add(time.Minute).Unix()
	token := f.iss.Opaque(c)
	_, err := f.client.Introspect(context.Background(), token)
	require.NoError(t, err)
	f.iss.ServeIntrospectionWith(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	f.clk.Advance(61 * time.Second)
	_, err = f.client.Introspect(context.Background(), token)
	require.ErrorIs(t, err, introspect.ErrUnavailable)
}

func TestCacheIsBounded(t *testing.T) {
	f := newFixture(t, func(c *introspect.Config) { c.Cache.MaxEntries = 5 })
	tokens := make([]string, 8)
	for i := range tokens {
		tokens[i] = f.iss.OpaqueM2M(fmt.Sprintf("w%d", i))
		_, err := f.client.Introspect(context.Background(), tokens[i])
		require.NoError(t, err)
	}
	assert.Equal(t, 5, introspect.CachedEntries(f.client))
	_, err := f.client.Introspect(context.Background(), tokens[7])
	require.NoError(t, err)
	assert.Equal(t, int64(8), f.iss.IntrospectionCalls(), "the newest is cached")
	_, err = f.client.Introspect(context.Background(), tokens[0])
	require.NoError(t, err)
	assert.Equal(t, int64(9), f.iss.IntrospectionCalls(), "the oldest was evicted")
}

func TestCachingCanBeTurnedOff(t *testing.T) {
	f := newFixture(t, func(c *introspect.Config) { c.Cache.TTL, c.Cache.NegativeTTL = -1, -1 })
	token := f.iss.OpaqueM2M("w")
	for range 3 {
		_, err := f.client.Introspect(context.Background(), token)
		require.NoError(t, err)
		_, err = f.client.Introspect(context.Background(), "ory_at_unknown.x")
		require.ErrorIs(t, err, introspect.ErrInactive)
	}
	assert.Equal(t, int64(6), f.iss.IntrospectionCalls())
}

func TestDiscovery(t *testing.T) {
	f := newFixture(t, func(c *introspect.Config) { c.Endpoint = "" })
	_, err := f.client.Introspect(context.Background(), f.iss.OpaqueM2M("w"))
	require.NoError(t, err, "introspection_endpoint discovered from the issuer's metadata")

	// Hydra's metadata has no introspection_endpoint.
	hydraLike := jwkstest.NewIssuer(t, jwkstest.Config{HideIntrospectionEndpoint: true})
	c, err := introspect.New(introspect.Config{Issuer: hydraLike.URL, AnyAudience: true, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	_, err = c.Introspect(context.Background(), hydraLike.OpaqueM2M("w"))
	require.ErrorIs(t, err, introspect.ErrUnavailable)
	assert.Contains(t, err.Error(), "no introspection_endpoint")
}

func TestNewConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  introspect.Config
		ok   bool
	}{
		{name: "endpoint and audience", cfg: introspect.Config{Endpoint: "https://id.example.com/introspect", Audience: "a"}, ok: true},
		{name: "issuer only, any audience", cfg: introspect.Config{Issuer: "https://id.example.com", AnyAudience: true}, ok: true},
		{name: "nothing", cfg: introspect.Config{Audience: "a"}},
		{name: "no audience", cfg: introspect.Config{Endpoint: "https://id.example.com/introspect"}},
		{name: "plain http", cfg: introspect.Config{Endpoint: "http://id.example.com/introspect", Audience: "a"}},
		{name: "basic without id", cfg: introspect.Config{Endpoint: "https://id.example.com/i", Audience: "a", Auth: introspect.AuthBasic}},
		{name: "unknown auth", cfg: introspect.Config{Endpoint: "https://id.example.com/i", Audience: "a", Auth: "magic"}},
		{name: "leeway over the maximum", cfg: introspect.Config{Endpoint: "https://id.example.com/i", Audience: "a", Leeway: time.Hour}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := introspect.New(tc.cfg)
			if tc.ok {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
		})
	}
}

// TestDiscoveryIsSharedAndCooledDown: a flood of tokens while discovery
// fails costs one metadata request per cooldown, not one per token.
func TestDiscoveryIsSharedAndCooledDown(t *testing.T) {
	var metadataHits atomic.Int64
	var base string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		metadataHits.Add(1)
		fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":"%s/jwks"}`, base, base) // no introspection_endpoint, as on Hydra
	}))
	defer srv.Close()
	base = srv.URL
	clk := newClock()
	c, err := introspect.New(introspect.Config{Issuer: base, AnyAudience: true, MaxConcurrent: 2, Now: clk.Now, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for i := range 300 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Introspect(context.Background(), fmt.Sprintf("ory_at_random%d.x", i))
			assert.ErrorIs(t, err, introspect.ErrUnavailable)
		}()
	}
	wg.Wait()
	// One discovery tries the two well-known locations.
	assert.LessOrEqual(t, metadataHits.Load(), int64(2))
	assert.Zero(t, introspect.Calls(c))
	clk.Advance(11 * time.Second)
	_, err = c.Introspect(context.Background(), "ory_at_later.x")
	require.ErrorIs(t, err, introspect.ErrUnavailable)
	assert.LessOrEqual(t, metadataHits.Load(), int64(4), "one more discovery after the cooldown")
}

// TestRandomTokensCannotFlushActiveAnswers: refusals are cached apart.
func TestRandomTokensCannotFlushActiveAnswers(t *testing.T) {
	f := newFixture(t, func(c *introspect.Config) { c.Cache.MaxEntries = 5 })
	valid := f.iss.OpaqueM2M("worker")
	_, err := f.client.Introspect(context.Background(), valid)
	require.NoError(t, err)
	for i := range 50 {
		_, err := f.client.Introspect(context.Background(), fmt.Sprintf("ory_at_random%d.x", i))
		require.ErrorIs(t, err, introspect.ErrInactive)
	}
	calls := f.iss.IntrospectionCalls()
	_, err = f.client.Introspect(context.Background(), valid)
	require.NoError(t, err)
	assert.Equal(t, calls, f.iss.IntrospectionCalls(), "the active answer is still cached")
	assert.Equal(t, 6, introspect.CachedEntries(f.client))
}

func TestPanicInSharedCallIsAnError(t *testing.T) {
	f := newFixture(t, func(c *introspect.Config) {
		c.Authenticate = func(*http.Request) error { panic("boom") }
	})
	_, err := f.client.Introspect(context.Background(), "ory_at_a.b")
	require.ErrorIs(t, err, introspect.ErrUnavailable)
	assert.Contains(t, err.Error(), "panicked")
}
