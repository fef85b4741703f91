package core_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware/core"
)

// cacheHits counts the verdicts the verified-token cache served.
type cacheHits struct {
	core.NopObserver
	hits, misses atomic.Int64
}

func (c *cacheHits) Decision(_ context.Context, d core.Decision) {
	if d.Outcome != core.OutcomeAccepted {
		return
	}
	if d.Cached {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
	}
}

// mintM2M mints n distinct tokens (distinct client IDs and jti) on every
// core at once.
func mintM2M(iss *jwkstest.Issuer, n int) []string {
	tokens := make([]string, n)
	var wg sync.WaitGroup
	const workers = 4
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				tokens[i] = iss.M2M(fmt.Sprintf("client-%d", i), "data:read")
			}
		})
	}
	wg.Wait()
	return tokens
}

// TestCachedFillsToCapacity: 10,000 distinct genuine tokens fill a
// verified-token cache of 10,000 entries to at least 95%. The cache of
// 23f49bf picked its shard from a token's last byte, which for a 256-byte
// (RS256) or 64-byte (ES256) signature takes only 4 values: it held about
// 1,250 of them.
func TestCachedFillsToCapacity(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			iss := jwkstest.NewIssuer(t, jwkstest.Config{Algorithm: alg})
			jwt, err := core.NewJWT(core.JWTConfig{Issuer: iss.URL, Audience: iss.Audience})
			require.NoError(t, err)
			seen := &cacheHits{}
			checker, err := core.New(core.Config{Validator: core.Cached(jwt, core.CacheConfig{MaxEntries: 10000}), Observer: seen})
			require.NoError(t, err)

			tokens := mintM2M(iss, 10000)
			for pass := range 2 {
				for i, token := range tokens {
					_, err := checker.Validate(context.Background(), token)
					require.NoError(t, err, "pass %d token %d", pass, i)
				}
			}
			assert.Equal(t, int64(20000), seen.hits.Load()+seen.misses.Load())
			assert.GreaterOrEqual(t, seen.hits.Load(), int64(9500), "second pass: at least 95%% served from the cache")
		})
	}
}

// TestCachedKeepsHotTokensThroughAScan: 20 tokens in constant use stay
// cached while 20,000 tokens seen once each pass through a cache of 1,000
// (internal/cache's own test does the same with 100,000 token-shaped keys).
func TestCachedKeepsHotTokensThroughAScan(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Algorithm: "ES256"})
	jwt, err := core.NewJWT(core.JWTConfig{Issuer: iss.URL, Audience: iss.Audience})
	require.NoError(t, err)
	seen := &cacheHits{}
	checker, err := core.New(core.Config{Validator: core.Cached(jwt, core.CacheConfig{MaxEntries: 1000}), Observer: seen})
	require.NoError(t, err)

	hot := mintM2M(iss, 20)
	for _, token := range hot { // warm up: each hot token twice
		for range 2 {
			_, err := checker.Validate(context.Background(), token)
			require.NoError(t, err)
		}
	}
	scan := mintM2M(iss, 20000)
	var hotMisses int64
	for i, token := range scan {
		_, err := checker.Validate(context.Background(), token)
		require.NoError(t, err)
		if i%200 == 0 {
			for _, h := range hot {
				before := seen.misses.Load()
				_, err := checker.Validate(context.Background(), h)
				require.NoError(t, err)
				hotMisses += seen.misses.Load() - before
			}
		}
	}
	assert.Zero(t, hotMisses, "no hot token was evicted by the scan")
}
