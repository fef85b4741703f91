package core_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/internal/testutil"
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
	hits  map[int]hitSetup
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
		m := &memIssuer{iss: iss, keys: map[string]*jwkstest.Key{}, pools: map[string][]string{}, hits: map[int]hitSetup{}}
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
				before := testutil.LiveHeap()
				for _, tok := range tokens {
					if _, err := v.Validate(ctx, strings.Clone(tok)); err != nil {
						b.Fatal(err)
					}
				}
				after := testutil.LiveHeap()
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

// hitSetup is a verified cache of a given size and the requests that hit
// it: a hot set of up to 1,024 Hydra-shaped RS256 user tokens (about 1 KB),
// each a copy of its own as a request carries; the rest of the cache is
// EdDSA user tokens.
type hitSetup struct {
	v        core.Validator
	requests []string
}

// hitCache returns the process's hitSetup of size entries, built the first
// time: building the largest verifies 100,000 tokens, seconds of setup.
func (m *memIssuer) hitCache(tb testing.TB, size int) hitSetup {
	m.mu.Lock()
	h, ok := m.hits[size]
	m.mu.Unlock()
	if ok {
		return h
	}
	ctx := context.Background()
	hot := m.userTokens(tb, "RS256", min(size, 1024))
	fill := m.userTokens(tb, "EdDSA", size-len(hot))
	h.v = core.Cached(m.jwt, core.CacheConfig{MaxEntries: size, Now: fixedClock})
	for _, tokens := range [][]string{fill, hot} {
		for _, tok := range tokens {
			_, err := h.v.Validate(ctx, strings.Clone(tok))
			require.NoError(tb, err)
		}
	}
	h.requests = make([]string, len(hot))
	for i, tok := range hot {
		h.requests[i] = strings.Clone(tok)
		p, err := h.v.Validate(ctx, h.requests[i])
		require.NoError(tb, err)
		require.True(tb, p.Cached(), "the hot set is held")
	}
	m.mu.Lock()
	m.hits[size] = h
	m.mu.Unlock()
	return h
}

// hitSizes are the cache sizes a hit is measured at.
var hitSizes = []int{10, 10_000, 100_000}

// BenchmarkCachedHitBySize is a verified-cache hit through core.Cached in
// a cache holding 10, 10,000 and 100,000 entries (hitCache): it must cost
// the same whatever the size. At 10 entries the hot set is those 10.
func BenchmarkCachedHitBySize(b *testing.B) {
	m := memoryIssuer(b)
	ctx := context.Background()
	for _, size := range hitSizes {
		b.Run(fmt.Sprintf("entries=%d", size), func(b *testing.B) {
			h := m.hitCache(b, size)
			runtime.GC() // not during the loop: setup made garbage
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := h.v.Validate(ctx, h.requests[i%len(h.requests)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(len(h.requests[0])), "token-bytes")
		})
	}
}

// BenchmarkCachedHitSizeRatio is BenchmarkCachedHitBySize as one
// measurement, for a shared machine: each iteration times a batch of 64
// hits in each cache in turn, so that every size sees the machine at the
// same moment, and reports the time of a hit at each size and the ratios
// of the larger sizes to 10,000 entries (the default size).
func BenchmarkCachedHitSizeRatio(b *testing.B) {
	const batch = 64
	m := memoryIssuer(b)
	ctx := context.Background()
	setups := make([]hitSetup, len(hitSizes))
	for i, size := range hitSizes {
		setups[i] = m.hitCache(b, size)
	}
	runtime.GC()
	spent := make([]time.Duration, len(hitSizes))
	n, next := 0, 0
	for b.Loop() {
		for i, h := range setups {
			start := time.Now()
			for k := range batch {
				if _, err := h.v.Validate(ctx, h.requests[(next+k)%len(h.requests)]); err != nil {
					b.Fatal(err)
				}
			}
			spent[i] += time.Since(start)
		}
		next += batch
		n += batch
	}
	for i, size := range hitSizes {
		b.ReportMetric(float64(spent[i].Nanoseconds())/float64(n), fmt.Sprintf("ns/hit-%d", size))
	}
	b.ReportMetric(float64(spent[0])/float64(spent[1]), "ratio-10/10000")
	b.ReportMetric(float64(spent[2])/float64(spent[1]), "ratio-100000/10000")
}
