package middleware_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/internal/floor"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
)

func benchGuard(b *testing.B, alg string, cache bool) (*middleware.Guard, string) {
	g, _, token := benchGuardIssuer(b, alg, cache)
	return g, token
}

func benchGuardIssuer(b *testing.B, alg string, cache bool) (*middleware.Guard, *jwkstest.Issuer, string) {
	iss := jwkstest.NewIssuer(b, jwkstest.Config{Algorithm: alg})
	k := iss.CurrentKey()
	set, err := jwks.NewSet(jwks.Key{ID: k.ID, Algorithm: alg, Public: k.Public()})
	require.NoError(b, err)
	g := mustGuard(b, setup{Config: middleware.Config{Issuer: iss.URL, Audience: iss.Audience, Logger: quiet()}, Keys: set,
		VerifiedCache: cacheSetup{Disabled: !cache}})
	return g, iss, iss.M2M("nightly-data-sync", "data:read", "data:write")
}

// BenchmarkFirstSeenRatio is the first-seen figure as one
// measurement: each iteration verifies the token once with the
// standard-library floor and once through Guard.Validate (the verified
// cache off, so every call verifies), timing each, so that both see the
// same machine at the same moment. It reports both per-call times and
// their ratio.
func BenchmarkFirstSeenRatio(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		b.Run(alg, func(b *testing.B) {
			g, iss, token := benchGuardIssuer(b, alg, false)
			pub := iss.CurrentKey().Public()
			ctx := context.Background()
			require.True(b, floor.Verify(alg, pub, token))
			_, err := g.Validate(ctx, token)
			require.NoError(b, err)
			var floorTime, aegisTime time.Duration
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				t0 := time.Now()
				ok := floor.Verify(alg, pub, token)
				t1 := time.Now()
				_, err := g.Validate(ctx, token)
				t2 := time.Now()
				if !ok || err != nil {
					b.Fatal("refused", err)
				}
				floorTime += t1.Sub(t0)
				aegisTime += t2.Sub(t1)
				n++
			}
			b.ReportMetric(float64(floorTime.Nanoseconds())/float64(n), "floor-ns/op")
			b.ReportMetric(float64(aegisTime.Nanoseconds())/float64(n), "aegis-ns/op")
			b.ReportMetric(float64(aegisTime)/float64(floorTime), "ratio")
		})
	}
}

// BenchmarkGuardValidate is a token's validation by the Guard: first seen
// (the cache off, so every iteration verifies) and repeated (a cache hit).
func BenchmarkGuardValidate(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		for _, tc := range []struct {
			name  string
			cache bool
		}{{"first-seen", false}, {"repeat", true}} {
			b.Run(alg+"/"+tc.name, func(b *testing.B) {
				g, token := benchGuard(b, alg, tc.cache)
				ctx := context.Background()
				_, err := g.Validate(ctx, token)
				require.NoError(b, err)
				b.ReportAllocs()
				for b.Loop() {
					if _, err := g.Validate(ctx, token); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(alg+"/"+tc.name+"/parallel", func(b *testing.B) {
				g, token := benchGuard(b, alg, tc.cache)
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := g.Validate(context.Background(), token); err != nil {
							b.Error(err)
						}
					}
				})
			})
		}
	}
}

// BenchmarkGuardHTTP is a whole request through Guard.Protect with a
// repeated token, against the bare handler.
func BenchmarkGuardHTTP(b *testing.B) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	g, token := benchGuard(b, "RS256", true)
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{{"no-auth", handler}, {"aegis-repeat", g.Protect(handler)}} {
		b.Run(tc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/data", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				tc.h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatal(rec.Code)
				}
			}
		})
	}
}

// BenchmarkRepeatRatio is the repeat-token figure as one
// measurement: each iteration verifies the token once with the floor and
// then validates it 100 times through Guard.Validate with the verified
// cache on (every call a hit), timing both, and reports the time of one
// hit, its allocations and how many times faster than the floor it is.
func BenchmarkRepeatRatio(b *testing.B) {
	const hits = 100
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		b.Run(alg, func(b *testing.B) {
			g, iss, token := benchGuardIssuer(b, alg, true)
			pub := iss.CurrentKey().Public()
			ctx := context.Background()
			_, err := g.Validate(ctx, token)
			require.NoError(b, err)
			allocs := testing.AllocsPerRun(1000, func() { _, _ = g.Validate(ctx, token) })
			var floorTime, hitTime time.Duration
			n := 0
			for b.Loop() {
				t0 := time.Now()
				ok := floor.Verify(alg, pub, token)
				t1 := time.Now()
				for range hits {
					if _, err := g.Validate(ctx, token); err != nil {
						b.Fatal(err)
					}
				}
				t2 := time.Now()
				if !ok {
					b.Fatal("floor refused")
				}
				floorTime += t1.Sub(t0)
				hitTime += t2.Sub(t1)
				n++
			}
			hit := float64(hitTime.Nanoseconds()) / float64(n*hits)
			b.ReportMetric(float64(floorTime.Nanoseconds())/float64(n), "floor-ns/op")
			b.ReportMetric(hit, "hit-ns/op")
			b.ReportMetric(allocs, "hit-allocs/op")
			b.ReportMetric(float64(floorTime.Nanoseconds())/float64(n)/hit, "x-faster")
		})
	}
}
