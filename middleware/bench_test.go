package middleware_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/internal/floor"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/scopes"
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

// chiRouter is examples/server's router shape: GET /data in a group that
// authenticates, needing data:read; g nil serves the same route without
// any authentication (the no-auth ceiling).
func chiRouter(g *middleware.Guard) http.Handler {
	h := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }
	r := chi.NewRouter()
	if g == nil {
		r.Get("/data", h)
		return r
	}
	r.Group(func(r chi.Router) {
		r.Use(g.Authenticate)
		r.With(g.Require(scopes.All("data:read"))).Get("/data", h)
	})
	return r
}

// BenchmarkFirstSeenChiRatio is the first-seen figure through HTTP: each
// iteration verifies the token once with the standard-library floor and
// serves one whole request with it through a chi router whose route needs
// data:read (Guard.Authenticate, then Require(scopes.All("data:read")),
// as examples/server), the verified cache off so that every request
// verifies. It reports both per-call times and their ratio.
func BenchmarkFirstSeenChiRatio(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256"} {
		b.Run(alg, func(b *testing.B) {
			g, iss, token := benchGuardIssuer(b, alg, false)
			pub := iss.CurrentKey().Public()
			router := chiRouter(g)
			req := httptest.NewRequest(http.MethodGet, "/data", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			require.True(b, floor.Verify(alg, pub, token))
			rec := httptest.NewRecorder()
			router.ServeHTTP(rec, req)
			require.Equal(b, http.StatusOK, rec.Code)
			var floorTime, aegisTime time.Duration
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				t0 := time.Now()
				ok := floor.Verify(alg, pub, token)
				t1 := time.Now()
				rec := httptest.NewRecorder()
				router.ServeHTTP(rec, req)
				t2 := time.Now()
				if !ok || rec.Code != http.StatusOK {
					b.Fatal("refused", rec.Code)
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

// BenchmarkRepeatChi is the repeat-token figure through HTTP: each
// iteration serves 100 requests through a chi route with no
// authentication, then 100 with a repeated token through the same route
// behind the Guard (Authenticate, Require(scopes.All("data:read")), the
// verified cache on: every request a hit), timing both. It reports the
// time of one request of each, the Guard's extra time (extra-ns/op), and
// the allocations of each and the Guard's extra allocations.
func BenchmarkRepeatChi(b *testing.B) {
	const reqs = 100
	g, token := benchGuard(b, "RS256", true)
	noAuth, guarded := chiRouter(nil), chiRouter(g)
	req := httptest.NewRequest(http.MethodGet, "/data", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	serve := func(h http.Handler) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
	serve(guarded)
	noAuthAllocs := testing.AllocsPerRun(1000, func() { serve(noAuth) })
	guardedAllocs := testing.AllocsPerRun(1000, func() { serve(guarded) })
	var noAuthTime, guardedTime time.Duration
	n := 0
	for b.Loop() {
		t0 := time.Now()
		for range reqs {
			serve(noAuth)
		}
		t1 := time.Now()
		for range reqs {
			serve(guarded)
		}
		t2 := time.Now()
		noAuthTime += t1.Sub(t0)
		guardedTime += t2.Sub(t1)
		n += reqs
	}
	b.ReportMetric(float64(noAuthTime.Nanoseconds())/float64(n), "noauth-ns/op")
	b.ReportMetric(float64(guardedTime.Nanoseconds())/float64(n), "aegis-ns/op")
	b.ReportMetric(float64((guardedTime-noAuthTime).Nanoseconds())/float64(n), "extra-ns/op")
	b.ReportMetric(noAuthAllocs, "noauth-allocs/op")
	b.ReportMetric(guardedAllocs, "aegis-allocs/op")
	b.ReportMetric(guardedAllocs-noAuthAllocs, "extra-allocs/op")
}
