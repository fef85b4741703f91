package middleware_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/olympus/aegis"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/internal/testutil"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/ratelimit"
)

// limits is a Source from a map, for tests.
type limits map[string]int

func (l limits) Lookup(_ context.Context, c ratelimit.Client) (int, bool, error) {
	n, ok := l[c.ID]
	return n, ok, nil
}

func limitedEnv(t *testing.T, rl *middleware.RateLimitConfig) (*jwkstest.Issuer, http.Handler, *testutil.Clock) {
	t.Helper()
	clk := testutil.NewClock(t0)
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Now: fixedClock, TokenLifetime: 24 * time.Hour})
	if rl.Store == nil {
		rl.Store = ratelimit.NewMemoryStore(ratelimit.MemoryConfig{Now: clk.Now})
	}
	g, err := middleware.New(middleware.Config{Issuer: iss.URL, Audience: iss.Audience, Now: fixedClock, Logger: quiet(), RateLimit: rl})
	require.NoError(t, err)
	return iss, g.Protect(http.HandlerFunc(ok)), clk
}

// TestRateLimitSixtyPerMinute: 60 of 100 immediate requests pass, the 429s
// carry Retry-After ≥ 1, and then one more passes each second.
func TestRateLimitSixtyPerMinute(t *testing.T) {
	iss, h, clk := limitedEnv(t, &middleware.RateLimitConfig{Limits: limits{"worker": 60}})
	token := iss.M2M("worker")
	passed := 0
	for i := range 100 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, get("/", "Bearer "+token))
		hdr := rec.Header()
		assert.Equal(t, `"client";q=60;w=60`, hdr.Get("RateLimit-Policy"))
		assert.Equal(t, "60", hdr.Get("X-RateLimit-Limit"))
		switch rec.Code {
		case http.StatusOK:
			passed++
			assert.Equal(t, strconv.Itoa(59-i), hdr.Get("X-RateLimit-Remaining"))
			assert.Equal(t, `"client";r=`+strconv.Itoa(59-i)+`;t=`+strconv.Itoa(i+1), hdr.Get("RateLimit"))
		case http.StatusTooManyRequests:
			retry, err := strconv.Atoi(hdr.Get("Retry-After"))
			require.NoError(t, err)
			assert.GreaterOrEqual(t, retry, 1)
			assert.Equal(t, "0", hdr.Get("X-RateLimit-Remaining"))
			assert.Empty(t, hdr.Get("WWW-Authenticate"))
			p := decodeProblem(t, rec)
			assert.Equal(t, "Too Many Requests", p.Title)
		default:
			t.Fatalf("status %d", rec.Code)
		}
	}
	assert.Equal(t, 60, passed)
	for range 3 {
		clk.Advance(time.Second)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, get("/", "Bearer "+token))
		assert.Equal(t, http.StatusOK, rec.Code)
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, get("/", "Bearer "+token))
		assert.Equal(t, http.StatusTooManyRequests, rec.Code)
	}
}

// TestForgedTokensSpendNoQuota: requests with bad tokens naming a client
// are refused before they are charged.
func TestForgedTokensSpendNoQuota(t *testing.T) {
	iss, h, _ := limitedEnv(t, &middleware.RateLimitConfig{Limits: limits{"victim": 2}})
	forger := jwkstest.NewKey("RS256")
	forger.ID = iss.CurrentKey().ID
	forged := iss.SignWith(forger, nil, iss.Claims("victim", "victim"))
	for range 10 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, get("/", "Bearer "+forged))
		require.Equal(t, http.StatusUnauthorized, rec.Code)
		assert.Empty(t, rec.Header().Get("RateLimit"))
	}
	for range 2 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, get("/", "Bearer "+iss.M2M("victim")))
		assert.Equal(t, http.StatusOK, rec.Code)
	}
}

func TestRateLimitKeys(t *testing.T) {
	tests := []struct {
		name       string
		perSubject bool
		tokens     func(iss *jwkstest.Issuer) []string
		statuses   []int
	}{
		{name: "users share their client's quota", tokens: func(iss *jwkstest.Issuer) []string {
			return []string{iss.User("alice", "web", "a@x"), iss.User("bob", "web", "b@x"), iss.User("carol", "web", "c@x")}
		}, statuses: []int{200, 200, 429}},
		{name: "per subject: each user has their own", perSubject: true, tokens: func(iss *jwkstest.Issuer) []string {
			return []string{iss.User("alice", "web", "a@x"), iss.User("alice", "web", "a@x"), iss.User("alice", "web", "a@x"), iss.User("bob", "web", "b@x")}
		}, statuses: []int{200, 200, 429, 200}},
		{name: "per subject: M2M tokens still by client", perSubject: true, tokens: func(iss *jwkstest.Issuer) []string {
			return []string{iss.M2M("web"), iss.M2M("web"), iss.M2M("web")}
		}, statuses: []int{200, 200, 429}},
		{name: "a client without a limit is not limited and gets no headers", tokens: func(iss *jwkstest.Issuer) []string {
			return []string{iss.M2M("free"), iss.M2M("free"), iss.M2M("free")}
		}, statuses: []int{200, 200, 200}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iss, h, _ := limitedEnv(t, &middleware.RateLimitConfig{Limits: limits{"web": 2}, PerSubject: tc.perSubject})
			for i, tok := range tc.tokens(iss) {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, get("/", "Bearer "+tok))
				assert.Equal(t, tc.statuses[i], rec.Code, "request %d", i)
				if tc.name == "a client without a limit is not limited and gets no headers" {
					assert.Empty(t, rec.Header().Get("RateLimit-Policy"))
				}
			}
		})
	}
}

func TestRateLimitDefault(t *testing.T) {
	iss, h, _ := limitedEnv(t, &middleware.RateLimitConfig{Default: 1, Burst: 1})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, get("/", "Bearer "+iss.M2M("anyone")))
	assert.Equal(t, http.StatusOK, rec.Code)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, get("/", "Bearer "+iss.M2M("anyone")))
	assert.Equal(t, http.StatusTooManyRequests, rec.Code)
	assert.Equal(t, "60", rec.Header().Get("Retry-After"))
}

type brokenStore struct{ err error }

func (b brokenStore) Allow(context.Context, string, ratelimit.Limit) (ratelimit.Decision, error) {
	return ratelimit.Decision{}, b.err
}

type brokenSource struct{}

func (brokenSource) Lookup(context.Context, ratelimit.Client) (int, bool, error) {
	return 0, false, errors.New("admin API down")
}

func TestRateLimitFailures(t *testing.T) {
	tests := []struct {
		name   string
		cfg    middleware.RateLimitConfig
		status int
		retry  string
	}{
		{name: "store unavailable with a hint", cfg: middleware.RateLimitConfig{Default: 10,
			Store: brokenStore{aegis.Unavailable(aegis.ReasonRateLimitUnavailable, 3*time.Second, errors.New("redis down"))}}, status: 503, retry: "3"},
		{name: "store failing otherwise", cfg: middleware.RateLimitConfig{Default: 10, Store: brokenStore{errors.New("boom")}}, status: 503, retry: "5"},
		{name: "source failing: the default applies", cfg: middleware.RateLimitConfig{Default: 10, Limits: brokenSource{}}, status: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			iss, h, _ := limitedEnv(t, &cfg)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, get("/", "Bearer "+iss.M2M("w")))
			assert.Equal(t, tc.status, rec.Code)
			assert.Equal(t, tc.retry, rec.Header().Get("Retry-After"))
			if tc.status == 200 {
				assert.Equal(t, "10", rec.Header().Get("X-RateLimit-Limit"))
			}
		})
	}
	_, err := middleware.New(middleware.Config{Issuer: "https://i.example", Audience: "a", RateLimit: &middleware.RateLimitConfig{Default: -1}})
	assert.Error(t, err)
}

// TestFailingLimitSourceWarnsOncePerSecond: a limit source that is down
// fails on every request; the log gets one warning a second, with how many
// failures it held back.
func TestFailingLimitSourceWarnsOncePerSecond(t *testing.T) {
	clk := testutil.NewClock(t0)
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Now: clk.Now})
	logs := &testutil.Buffer{}
	g, err := middleware.New(middleware.Config{Issuer: iss.URL, Audience: iss.Audience, Now: clk.Now,
		Logger:    slog.New(slog.NewJSONHandler(logs, nil)),
		RateLimit: &middleware.RateLimitConfig{Default: 1000, Limits: brokenSource{}, Store: ratelimit.NewMemoryStore(ratelimit.MemoryConfig{Now: clk.Now})}})
	require.NoError(t, err)
	h := g.Protect(http.HandlerFunc(ok))
	token := iss.M2M("worker")
	send := func(n int) {
		for range n {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, get("/", "Bearer "+token))
			require.Equal(t, http.StatusOK, rec.Code, "the default applies")
		}
	}
	send(20)
	assert.Len(t, logs.Lines(`"msg":"aegis: rate limit lookup failed, applying the default"`), 1)
	clk.Advance(time.Second)
	send(1)
	assert.Len(t, logs.Lines(`"msg":"aegis: rate limit lookup failed, applying the default"`), 2)
	assert.Len(t, logs.Lines(`"held_back":19`), 1)
}
