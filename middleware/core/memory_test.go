package core_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware/core"
)

// The verified-token cache's memory (issue 15, goal 3): what one entry
// costs with tokens shaped like Ory Hydra's, and what a hit costs as the
// cache grows. The tokens are minted once per process (signing is setup,
// not what is measured) and shared by the benchmarks below.

// memIssuer is the issuer of the memory benchmarks' tokens: a JWT
// validator over a fixed key set (no network) with an RS256 key, as Hydra
// signs by default, and an EdDSA key, quick enough to sign 100,000 tokens.
type memIssuer struct {
	iss  *jwkstest.Issuer
	keys map[string]*jwkstest.Key
	jwt  core.Validator

	mu    sync.Mutex
	pools map[string][]string
}

var (
	memOnce sync.Once
	mem     *memIssuer
)

// memoryIssuer returns the process's memIssuer. Its test server lives as
// long as the process: the pools it minted are reused by every -count.
func memoryIssuer(tb testing.TB) *memIssuer {
	memOnce.Do(func() {
		iss := jwkstest.Start(jwkstest.Config{Now: fixedClock})
		m := &memIssuer{iss: iss, keys: map[string]*jwkstest.Key{}, pools: map[string][]string{}}
		var published []jwks.Key
		for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
			k := jwkstest.NewKey(alg)
			m.keys[alg] = k
			published = append(published, jwks.Key{ID: k.ID, Algorithm: alg, Public: k.Public()})
		}
		set, err := jwks.NewSet(published...)
		if err != nil {
			panic(err)
		}
		m.jwt, err = core.NewJWT(core.JWTConfig{Issuer: iss.URL, Audience: iss.Audience, Keys: set, Now: fixedClock})
		if err != nil {
			panic(err)
		}
		mem = m
	})
	require.NotNil(tb, mem)
	return mem
}

// hydraUserClaims are the claims Ory Hydra puts in the access token of
// person i signed in through a web app: UUID subject, client and jti, the
// usual OpenID scopes and the session's claims under ext.
func hydraUserClaims(iss *jwkstest.Issuer, i int) map[string]any {
	c := iss.Claims(fmt.Sprintf("3f2a9c1e-7b4d-4e8a-9c61-%012x", i), "5d6c1b0a-2f3e-4d5c-8b7a-69f0e1d2c3b4",
		"openid", "offline_access", "profile", "email", "data:read", "data:write")
	c["jti"] = fmt.Sprintf("a1b2c3d4-e5f6-4a7b-8c9d-%012x", i)
	c["ext"] = map[string]any{
		"email":  fmt.Sprintf("user.%07d@example.com", i),
		"name":   fmt.Sprintf("User %07d", i),
		"tenant": "olympus-prod",
		"roles":  []string{"reader", "writer"},
	}
	return c
}

// userTokens returns n distinct valid user tokens signed with alg, minted
// on every core the first time they are asked for.
func (m *memIssuer) userTokens(tb testing.TB, alg string, n int) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if pool := m.pools[alg]; len(pool) >= n {
		return pool[:n]
	}
	key := m.keys[alg]
	header, err := json.Marshal(map[string]string{"alg": alg, "kid": key.ID, "typ": "JWT"})
	require.NoError(tb, err)
	pool := make([]string, n)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				claims, err := json.Marshal(hydraUserClaims(m.iss, i))
				if err != nil {
					panic(err)
				}
				pool[i] = jwkstest.SignRaw(key, header, claims)
			}
		})
	}
	wg.Wait()
	m.pools[alg] = pool
	return pool
}

// liveHeap is the heap's live bytes after a full collection (two, so that
// sync.Pool's victim caches are gone too).
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkVerifiedCacheBytesPerEntry fills a verified-token cache of the
// default size (core.DefaultCacheMaxEntries) with as many distinct user
// tokens, each validated with a copy of its own as a request carries, and
// reports the heap it then holds per entry: the token (the key), its
// Principal and the decoded claims the Principal keeps, and the cache's
// own slabs, maps and ghost queues. An iteration is a whole fill.
func BenchmarkVerifiedCacheBytesPerEntry(b *testing.B) {
	m := memoryIssuer(b)
	const n = core.DefaultCacheMaxEntries
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		b.Run("user-"+alg, func(b *testing.B) {
			tokens := m.userTokens(b, alg, n)
			ctx := context.Background()
			var perEntry float64
			for b.Loop() {
				v := core.Cached(m.jwt, core.CacheConfig{MaxEntries: n, Now: fixedClock})
				before := liveHeap()
				for _, tok := range tokens {
					if _, err := v.Validate(ctx, strings.Clone(tok)); err != nil {
						b.Fatal(err)
					}
				}
				after := liveHeap()
				perEntry = float64(int64(after)-int64(before)) / n
				b.StopTimer()
				for _, tok := range tokens[:100] {
					p, err := v.Validate(ctx, tok)
					require.NoError(b, err)
					require.True(b, p.Cached(), "every token filled is held")
				}
				b.StartTimer()
			}
			b.ReportMetric(perEntry, "bytes/entry")
			b.ReportMetric(float64(len(tokens[0])), "token-bytes")
		})
	}
}

// BenchmarkCachedHitBySize is a verified-cache hit through core.Cached in
// a cache holding 10, 10,000 and 100,000 entries: it must cost the same
// whatever the size. The hits are on a hot set of up to 1,024 Hydra-shaped
// RS256 user tokens (about 1 KB), each looked up with a copy of its own;
// the rest of the cache is EdDSA user tokens. Building the largest cache
// verifies 100,000 tokens: a few seconds of setup per run.
func BenchmarkCachedHitBySize(b *testing.B) {
	m := memoryIssuer(b)
	ctx := context.Background()
	for _, size := range []int{10, 10_000, 100_000} {
		b.Run(fmt.Sprintf("entries=%d", size), func(b *testing.B) {
			hot := m.userTokens(b, "RS256", min(size, 1024))
			fill := m.userTokens(b, "EdDSA", size-len(hot))
			v := core.Cached(m.jwt, core.CacheConfig{MaxEntries: size, Now: fixedClock})
			for _, tokens := range [][]string{fill, hot} {
				for _, tok := range tokens {
					_, err := v.Validate(ctx, strings.Clone(tok))
					require.NoError(b, err)
				}
			}
			requests := make([]string, len(hot))
			for i, tok := range hot {
				requests[i] = strings.Clone(tok)
				p, err := v.Validate(ctx, requests[i])
				require.NoError(b, err)
				require.True(b, p.Cached(), "the hot set is held")
			}
			runtime.GC() // not during the loop: setup made garbage
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := v.Validate(ctx, requests[i%len(requests)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(len(hot[0])), "token-bytes")
		})
	}
}
