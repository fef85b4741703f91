package middleware_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/internal/redistest"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/ratelimit"
	"github.com/olympus/aegis/ratelimit/redisstore"
)

// TestFourReplicasShareOneRedis: four Guards (four replicas of an API)
// share one real Redis; 10,000 concurrent requests from one client limited
// to 600 per minute, with the clock standing still: exactly 600 pass.
func TestFourReplicasShareOneRedis(t *testing.T) {
	newClient := redistest.Shared(t)
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Now: fixedClock})
	prefix := "aegis-test:" + t.Name() + ":" + time.Now().Format("150405.000000000") + ":"
	var replicas []http.Handler
	for range 4 {
		store, err := redisstore.New(redisstore.Config{Client: newClient(), Prefix: prefix, Timeout: 30 * time.Second, Now: fixedClock})
		require.NoError(t, err)
		g, err := middleware.New(middleware.Config{Issuer: iss.URL, Audience: iss.Audience, Now: fixedClock, Logger: quiet(),
			RateLimit: &middleware.RateLimitConfig{Store: store, Limits: limits{"nightly-data-sync": 600}}})
		require.NoError(t, err)
		replicas = append(replicas, g.Protect(http.HandlerFunc(ok)))
	}
	token := "Bearer " + iss.M2M("nightly-data-sync")
	var wg sync.WaitGroup
	var passed, limited, other atomic.Int64
	for i := range 10_000 {
		wg.Go(func() {
			rec := httptest.NewRecorder()
			replicas[i%4].ServeHTTP(rec, get("/", token))
			switch rec.Code {
			case http.StatusOK:
				passed.Add(1)
			case http.StatusTooManyRequests:
				limited.Add(1)
			default:
				other.Add(1)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(600), passed.Load())
	assert.Equal(t, int64(9400), limited.Load())
	assert.Zero(t, other.Load())
}

// TestRedisStoppedMidTest: with Redis gone, the failure policy holds and no
// request gets a 500; once Redis is back, decisions return to it.
func TestRedisStoppedMidTest(t *testing.T) {
	tests := []struct {
		policy     ratelimit.FailurePolicy
		downStatus int
	}{
		{policy: ratelimit.FailOpen, downStatus: http.StatusOK},
		{policy: ratelimit.FailClosed, downStatus: http.StatusServiceUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.policy.String(), func(t *testing.T) {
			server := redistest.Start(t)
			store, err := redisstore.New(redisstore.Config{Client: server.Client(), Prefix: "mid:"})
			require.NoError(t, err)
			var logs bytes.Buffer
			var mu sync.Mutex
			logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
				mu.Lock()
				defer mu.Unlock()
				return logs.Write(p)
			}), nil))
			failover, err := ratelimit.NewFailover(ratelimit.FailoverConfig{
				Primary: store, Fallback: ratelimit.NewMemoryStore(ratelimit.MemoryConfig{}), Policy: tc.policy,
				Logger: logger, Cooldown: -1,
			})
			require.NoError(t, err)
			iss := jwkstest.NewIssuer(t, jwkstest.Config{})
			g, err := middleware.New(middleware.Config{Issuer: iss.URL, Audience: iss.Audience, Logger: quiet(),
				RateLimit: &middleware.RateLimitConfig{Store: failover, Default: 1000}})
			require.NoError(t, err)
			h := g.Protect(http.HandlerFunc(ok))
			token := "Bearer " + iss.M2M("worker")
			call := func() *httptest.ResponseRecorder {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, get("/", token))
				return rec
			}
			redisKeys := func() int64 {
				n, err := server.Client().Exists(t.Context(), "mid:worker").Result()
				require.NoError(t, err)
				return n
			}

			require.Equal(t, http.StatusOK, call().Code)
			require.Equal(t, int64(1), redisKeys(), "decided in Redis")

			server.Stop()
			for range 5 {
				rec := call()
				assert.Equal(t, tc.downStatus, rec.Code)
				if rec.Code == http.StatusServiceUnavailable {
					assert.NotEmpty(t, rec.Header().Get("Retry-After"))
				}
			}

			server.Restart()
			require.Equal(t, http.StatusOK, call().Code)
			assert.Equal(t, int64(1), redisKeys(), "decisions are back in Redis")
			mu.Lock()
			defer mu.Unlock()
			assert.Contains(t, logs.String(), "recovered")
		})
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
