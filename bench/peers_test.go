package bench_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/olympus/aegis/bench"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware/core"
)

// poolSize is the number of distinct tokens cycled through by the
// first-seen benchmarks (minting a new token per iteration would cost more
// than validating it).
const poolSize = 4096

// One issuer for the whole run: tokens are minted once (RSA-2048 signing
// takes ~2 ms each) and every stack validates the same ones.
var (
	issOnce  sync.Once
	iss      *jwkstest.Issuer
	repeat   string
	poolOnce sync.Once
	pool     []string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if iss != nil {
		iss.Close()
	}
	os.Exit(code)
}

func issuer() *jwkstest.Issuer {
	issOnce.Do(func() {
		iss = jwkstest.Start(jwkstest.Config{})
		repeat = iss.M2M("nightly-data-sync", "data:read")
	})
	return iss
}

func tokenPool() []string {
	poolOnce.Do(func() {
		pool = bench.Mint(issuer(), poolSize, func(int) string { return "nightly-data-sync" })
	})
	return pool
}

// assertStack checks once, before any timing, that h admits the good token
// and (unless it is the no-auth ceiling) refuses the tampered one, so that
// nobody benchmarks a refusal. For Aegis it also fetches the issuer's keys.
func assertStack(b *testing.B, h http.Handler, auth bool) {
	b.Helper()
	if code := serve(h, bearer(repeat)); code != http.StatusOK {
		b.Fatalf("good token: status %d, want 200", code)
	}
	if !auth {
		return
	}
	if code := serve(h, bearer(bench.Tamper(repeat))); code != http.StatusUnauthorized {
		b.Fatalf("tampered token: status %d, want 401", code)
	}
}

func serve(h http.Handler, auth []string) int {
	req := httptest.NewRequest(http.MethodGet, "/data", nil)
	req.Header["Authorization"] = auth
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

func bearer(token string) []string { return []string{"Bearer " + token} }

func bearers(tokens []string) [][]string {
	out := make([][]string, len(tokens))
	for i, t := range tokens {
		out[i] = bearer(t)
	}
	return out
}

// run benchmarks h on the Authorization values auths, cycled in order,
// serially and from every core. Each iteration is one request through h
// into a fresh httptest.ResponseRecorder, and its status is checked.
func run(b *testing.B, h http.Handler, auths [][]string) {
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		req := httptest.NewRequest(http.MethodGet, "/data", nil)
		i := 0
		for b.Loop() {
			req.Header["Authorization"] = auths[i%len(auths)]
			i++
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d", rec.Code)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		var next atomic.Uint64
		b.RunParallel(func(pb *testing.PB) {
			req := httptest.NewRequest(http.MethodGet, "/data", nil)
			for pb.Next() {
				req.Header["Authorization"] = auths[(next.Add(1)-1)%uint64(len(auths))]
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Errorf("status %d", rec.Code)
					return
				}
			}
		})
	})
}

// A case is one way of presenting tokens to a stack.
type tokenCase struct {
	name   string
	tokens func() []string
}

var (
	// firstSeen cycles through the pool: each token comes back only after
	// poolSize-1 others.
	firstSeen = tokenCase{"first-seen", tokenPool}
	// repeated presents one token every time, as a backend worker does.
	repeated = tokenCase{"repeat", func() []string { return []string{repeat} }}
)

// runCase benchmarks a fresh stack from newStack on the tokens of c, so
// that no state (such as a cache) carries over between cases.
func runCase(b *testing.B, c tokenCase, newStack func(*jwkstest.Issuer) (http.Handler, error)) {
	b.Run(c.name, func(b *testing.B) {
		h, err := newStack(issuer())
		if err != nil {
			b.Fatal(err)
		}
		auths := bearers(c.tokens())
		assertStack(b, h, true)
		run(b, h, auths)
	})
}

// BenchmarkNoAuth is the handler alone: the ceiling, and the cost of the
// harness (request header, recorder) that every other benchmark includes.
func BenchmarkNoAuth(b *testing.B) {
	issuer()
	h := bench.NoAuth()
	assertStack(b, h, false)
	run(b, h, [][]string{bearer(repeat)})
}

// BenchmarkAegis is Aegis's Guard as in the README's quick start (keys
// discovered from the issuer, route needing data:read):
//   - first-seen: the verified-token cache off, so every request validates
//     its token in full (the cost of a token never seen before);
//   - first-seen-cache-on: the cache on but holding at most 16 entries
//     while 4096 tokens cycle, so every request misses, validates and
//     inserts (a new token's cost in the default configuration);
//   - repeat: the default configuration (cache on), one token every time.
func BenchmarkAegis(b *testing.B) {
	aegis := func(cache *core.CacheConfig) func(*jwkstest.Issuer) (http.Handler, error) {
		return func(iss *jwkstest.Issuer) (http.Handler, error) { return bench.Aegis(iss, cache) }
	}
	runCase(b, firstSeen, aegis(nil))
	runCase(b, tokenCase{"first-seen-cache-on", tokenPool}, aegis(&core.CacheConfig{MaxEntries: 16}))
	runCase(b, repeated, aegis(&core.CacheConfig{}))
}

// BenchmarkJWTAuth is go-chi/jwtauth/v5 (jwx v2) with the issuer's public
// key, iss and aud checked. It has no cache: repeat costs what first-seen
// does.
func BenchmarkJWTAuth(b *testing.B) {
	jwtAuth := func(iss *jwkstest.Issuer) (http.Handler, error) { return bench.JWTAuth(iss), nil }
	runCase(b, firstSeen, jwtAuth)
	runCase(b, repeated, jwtAuth)
}

// BenchmarkGoJWTMiddleware is auth0/go-jwt-middleware/v2 (go-jose v2) with
// the issuer's public key, iss and aud checked. It has no cache either.
func BenchmarkGoJWTMiddleware(b *testing.B) {
	runCase(b, firstSeen, bench.GoJWTMiddleware)
	runCase(b, repeated, bench.GoJWTMiddleware)
}

// TestStacks is the benchmarks' precondition as a test: every stack admits
// a good token and refuses a tampered, an expired and a foreign-audience
// one.
func TestStacks(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	good := iss.M2M("nightly-data-sync", "data:read")
	stacks, err := bench.Stacks(iss)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stacks {
		t.Run(s.Name, func(t *testing.T) {
			if code := serve(s.Handler, bearer(good)); code != http.StatusOK {
				t.Fatalf("good token: %d", code)
			}
			if s.Name == "no-auth" {
				return
			}
			for name, tok := range map[string]string{
				"tampered":       bench.Tamper(good),
				"expired":        iss.Expired("nightly-data-sync", "data:read"),
				"wrong audience": iss.WrongAudience("nightly-data-sync", "data:read"),
			} {
				if code := serve(s.Handler, bearer(tok)); code != http.StatusUnauthorized {
					t.Errorf("%s token: %d, want 401", name, code)
				}
			}
			if code := serve(s.Handler, nil); code == http.StatusOK {
				t.Errorf("no token: %d", code)
			}
		})
	}
}

func ExampleTamper() {
	fmt.Println(bench.Tamper("h.p.AAAA"), bench.Tamper("h.p.xyAz"))
	// Output: h.p.AABA h.p.xyBz
}
