package hydra

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/internal/redistest"
)

// clientsCacheTTL is the -clients-cache-ttl of the rate-limited servers:
// short, so that a metadata change takes effect within seconds.
const clientsCacheTTL = 2 * time.Second

// redisKeyPrefix is redisstore.Store's default key prefix
// (redisstore.DefaultPrefix), followed by the client ID.
const redisKeyPrefix = "aegis:ratelimit:"

// rateLimitFlags are examples/server's flags for per-client limits read
// from Hydra's client metadata, with no default limit; extra follows.
func rateLimitFlags(h *hydraProc, extra ...string) []string {
	return append([]string{"-issuer", h.public, "-audience", apiAudience,
		"-clients-url", h.admin, "-clients-cache-ttl", clientsCacheTTL.String()}, extra...)
}

var readWrite = []string{"data:read", "data:write"}

// rateLimitedClient creates an M2M client whose metadata limits it to
// perMinute requests a minute, and returns it with a token.
func rateLimitedClient(t *testing.T, h *hydraProc, name string, perMinute int) (oauthClient, string) {
	t.Helper()
	spec := m2mClientSpec(name, readWrite, apiAudience)
	spec["metadata"] = map[string]any{"rate_limit_per_minute": perMinute}
	c := h.createClient(t, spec)
	return c, h.clientCredentials(t, c, readWrite, apiAudience)
}

// rateHeaders are the rate-limit headers of one answer.
type rateHeaders struct {
	limit, remaining, reset int
}

// requireRateHeaders asserts that r carries consistent rate-limit headers
// for limit and returns them.
func requireRateHeaders(t *testing.T, r response, limit int) rateHeaders {
	t.Helper()
	num := func(name string) int {
		t.Helper()
		v := r.header.Get(name)
		n, err := strconv.Atoi(v)
		require.NoErrorf(t, err, "%s %q: %s", name, v, r)
		return n
	}
	rh := rateHeaders{limit: num("X-RateLimit-Limit"), remaining: num("X-RateLimit-Remaining"), reset: num("X-RateLimit-Reset")}
	require.Equal(t, limit, rh.limit, "X-RateLimit-Limit: %s", r)
	assert.Equal(t, fmt.Sprintf(`"client";q=%d;w=60`, limit), r.header.Get("RateLimit-Policy"))
	assert.Equal(t, fmt.Sprintf(`"client";r=%d;t=%d`, rh.remaining, rh.reset), r.header.Get("RateLimit"))
	assert.GreaterOrEqual(t, rh.remaining, 0)
	assert.Less(t, rh.remaining, limit)
	assert.GreaterOrEqual(t, rh.reset, 1)
	assert.LessOrEqual(t, rh.reset, 60, "a bucket is at most a minute deep")
	return rh
}

// requireTooMany asserts a refusal for the rate limit limit, with a
// Retry-After of at most maxRetry seconds (one interval, 60/limit), and
// returns the Retry-After.
func requireTooMany(t *testing.T, r response, limit, maxRetry int) int {
	t.Helper()
	require.Equal(t, http.StatusTooManyRequests, r.status, "%s", r)
	assertMediaType(t, r, "application/problem+json")
	var p struct {
		Status int    `json:"status"`
		Title  string `json:"title"`
	}
	require.NoError(t, json.Unmarshal(r.body, &p), "body: %s", r.body)
	assert.Equal(t, http.StatusTooManyRequests, p.Status, "body: %s", r.body)
	assert.Empty(t, r.header.Values("WWW-Authenticate"), "a 429 is no authentication challenge")
	retry, err := strconv.Atoi(r.header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", r.header.Get("Retry-After"))
	assert.GreaterOrEqual(t, retry, 1)
	assert.LessOrEqual(t, retry, maxRetry)
	rh := requireRateHeaders(t, r, limit)
	assert.Equal(t, 0, rh.remaining)
	// GCRA: the bucket is full again (reset) after the next slot frees.
	assert.GreaterOrEqual(t, rh.reset, retry)
	return retry
}

// assertNoRateHeaders asserts that r carries none of the rate-limit headers.
func assertNoRateHeaders(t *testing.T, r response) {
	t.Helper()
	for _, name := range []string{"RateLimit-Policy", "RateLimit", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
		assert.Empty(t, r.header.Values(name), "%s on an unlimited client's answer", name)
	}
}

// spendFive makes the five immediate requests a limit of 5 allows
// (burst = limit), then the sixth, refused. srvs take turns.
func spendFive(t *testing.T, tok string, srvs ...*server) {
	t.Helper()
	for i := range 5 {
		s := srvs[i%len(srvs)]
		r := s.call(t, http.MethodGet, "/data", tok)
		require.Equal(t, http.StatusOK, r.status, "request %d on %s: %s", i+1, s.addr, r)
		rh := requireRateHeaders(t, r, 5)
		assert.Equal(t, 4-i, rh.remaining, "request %d on %s", i+1, s.addr)
		// Each request costs 12 s of a 60 s bucket.
		assert.LessOrEqual(t, rh.reset, 12*(i+1), "request %d", i+1)
	}
	for _, s := range srvs {
		requireTooMany(t, s.call(t, http.MethodGet, "/data", tok), 5, 12)
	}
}

// rateLimitClients are the clients rateLimitScenarios used.
type rateLimitClients struct {
	changed, fresh, unlimited oauthClient
}

// rateLimitScenarios runs the per-client limit scenarios against srv,
// started with rateLimitFlags.
func rateLimitScenarios(t *testing.T, h *hydraProc, srv *server) rateLimitClients {
	var cs rateLimitClients

	t.Run("limit 5 from metadata, then raised to 10", func(t *testing.T) {
		c, tok := rateLimitedClient(t, h, "rate-limited", 5)
		cs.changed = c
		first := time.Now()
		spendFive(t, tok, srv)

		h.patchMetadata(t, c.ID, map[string]any{"rate_limit_per_minute": 10})
		changed := time.Now()
		got := h.getClient(t, c.ID)
		assert.Equal(t, map[string]any{"rate_limit_per_minute": float64(10)}, got.Metadata)
		assert.Equal(t, []string{"client_credentials"}, got.GrantTypes, "the patch changed more than the metadata")
		assert.Equal(t, "data:read data:write", got.Scope)
		assert.Equal(t, []string{apiAudience}, got.Audience)

		// The old limit stays cached for at most the TTL; refused requests
		// cost nothing, so polling does not change the bucket.
		deadline := changed.Add(10 * time.Second)
		var r response
		for {
			r = srv.call(t, http.MethodGet, "/data", tok)
			if r.header.Get("X-RateLimit-Limit") != "5" || time.Now().After(deadline) {
				break
			}
			// Under 5/min the next slot frees 12 s after the first request.
			requireTooMany(t, r, 5, 12)
			time.Sleep(100 * time.Millisecond) // polling interval, not synchronisation
		}
		applied := time.Since(changed)
		requireRateHeaders(t, r, 10)
		t.Logf("limit 10 applied %s after the patch (cache TTL %s)", applied.Round(time.Millisecond), clientsCacheTTL)
		assert.LessOrEqual(t, applied, clientsCacheTTL+1500*time.Millisecond, "the old limit outlived the cache TTL")

		// GCRA keeps the bucket in time, not in requests: the five requests
		// took 60 s of credit, which under 10/min is all ten requests'
		// worth. So nothing passes until one new interval (6 s) after the
		// first request, and then one request at a time.
		for r.status != http.StatusOK && time.Now().Before(deadline) {
			requireTooMany(t, r, 10, 6)
			time.Sleep(100 * time.Millisecond) // polling interval, not synchronisation
			r = srv.call(t, http.MethodGet, "/data", tok)
		}
		passed := time.Since(first)
		require.Equal(t, http.StatusOK, r.status, "no request passed under the new limit within 10 s of the change: %s", r)
		rh := requireRateHeaders(t, r, 10)
		t.Logf("first request under the new limit passed %s after the first request (GCRA: 6 s), remaining %d",
			passed.Round(time.Millisecond), rh.remaining)
		assert.GreaterOrEqual(t, passed, 6*time.Second-100*time.Millisecond, "passed before one interval of the new limit")
		assert.Equal(t, 0, rh.remaining, "GCRA: a bucket full under 5/min is full under 10/min")

		// An immediate burst passes exactly the remaining requests, then 429.
		var statuses []int
		for range 11 {
			r = srv.call(t, http.MethodGet, "/data", tok)
			statuses = append(statuses, r.status)
			if r.status != http.StatusOK {
				break
			}
			requireRateHeaders(t, r, 10)
		}
		requireTooMany(t, r, 10, 6)
		assert.Len(t, statuses, rh.remaining+1, "statuses of the burst: %v", statuses)
	})

	t.Run("limit raised to 10 before first use: burst of 10", func(t *testing.T) {
		c, tok := rateLimitedClient(t, h, "rate-limited-fresh", 5)
		cs.fresh = c
		h.patchMetadata(t, c.ID, map[string]any{"rate_limit_per_minute": 10})
		for i := range 10 {
			r := srv.call(t, http.MethodGet, "/data", tok)
			require.Equal(t, http.StatusOK, r.status, "request %d: %s", i+1, r)
			assert.Equal(t, 9-i, requireRateHeaders(t, r, 10).remaining, "request %d", i+1)
		}
		requireTooMany(t, srv.call(t, http.MethodGet, "/data", tok), 10, 6)
		// Every authenticated route is charged, not only /data.
		requireTooMany(t, srv.call(t, http.MethodGet, "/whoami", tok), 10, 6)
	})

	t.Run("no metadata limit and no default: unlimited", func(t *testing.T) {
		c := h.createClient(t, m2mClientSpec("unlimited", readWrite, apiAudience))
		cs.unlimited = c
		tok := h.clientCredentials(t, c, readWrite, apiAudience)
		for i := range 15 {
			r := srv.call(t, http.MethodGet, "/data", tok)
			require.Equal(t, http.StatusOK, r.status, "request %d: %s", i+1, r)
			assertNoRateHeaders(t, r)
		}
		r := srv.call(t, http.MethodGet, "/whoami", tok)
		requireWhoami(t, r)
		assertNoRateHeaders(t, r)
	})
	return cs
}

// TestRateLimit runs examples/server with per-client limits from Hydra's
// client metadata, first in memory, then shared through a private Redis.
func TestRateLimit(t *testing.T) {
	h, _ := needServer(t)

	t.Run("memory", func(t *testing.T) {
		srv := startServer(t, "server-ratelimit-memory", rateLimitFlags(h)...)
		rateLimitScenarios(t, h, srv)
	})

	t.Run("redis", func(t *testing.T) {
		rs := redistest.Start(t) // a failure under CI without redis-server, else a skip
		redisURL := "redis://" + rs.Addr() + "/0"
		a := startServer(t, "server-ratelimit-redis-a", rateLimitFlags(h, "-redis-url", redisURL)...)
		b := startServer(t, "server-ratelimit-redis-b", rateLimitFlags(h, "-redis-url", redisURL)...)
		rdb := rs.Client()
		keys := func(t *testing.T) []string {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var all []string
			iter := rdb.Scan(ctx, 0, redisKeyPrefix+"*", 100).Iterator()
			for iter.Next(ctx) {
				all = append(all, iter.Val())
			}
			require.NoError(t, iter.Err())
			return all
		}

		cs := rateLimitScenarios(t, h, a)

		t.Run("decisions are in redis", func(t *testing.T) {
			assert.ElementsMatch(t, []string{redisKeyPrefix + cs.changed.ID, redisKeyPrefix + cs.fresh.ID}, keys(t),
				"one key per limited client, none for the unlimited one")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for _, c := range []oauthClient{cs.changed, cs.fresh} {
				key := redisKeyPrefix + c.ID
				tat, err := rdb.Get(ctx, key).Int64()
				require.NoError(t, err, "GET %s", key)
				assert.Positive(t, tat, "theoretical arrival time in microseconds")
				ttl, err := rdb.PTTL(ctx, key).Result()
				require.NoError(t, err)
				assert.Positive(t, ttl, "%s must expire by itself", key)
				assert.LessOrEqual(t, ttl, 61*time.Second, "%s outlives a full bucket", key)
			}
		})

		t.Run("two replicas share the count", func(t *testing.T) {
			c, tok := rateLimitedClient(t, h, "rate-limited-replicas", 5)
			// Remaining counts down 4..0 across both servers, and the
			// sixth request is refused on either.
			spendFive(t, tok, a, b)
			assert.Contains(t, keys(t), redisKeyPrefix+c.ID)

			// The count lives only in Redis: without the key the bucket
			// is full again on both servers.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			require.NoError(t, rdb.Del(ctx, redisKeyPrefix+c.ID).Err())
			for i, s := range []*server{b, a} {
				r := s.call(t, http.MethodGet, "/data", tok)
				require.Equal(t, http.StatusOK, r.status, "after DEL, on %s: %s", s.addr, r)
				assert.Equal(t, 4-i, requireRateHeaders(t, r, 5).remaining)
			}
		})

		// Had Redis failed, the servers would have decided in memory
		// (-rate-limit-failure open) and said so once in their logs.
		for _, s := range []*server{a, b} {
			assert.NotContains(t, s.proc.out.String(), "rate-limit store unavailable", "%s fell back to memory", s.proc.name)
		}
	})
}
