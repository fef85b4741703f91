package middleware_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/internal/testutil"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/core"
)

// Memory as work grows (issue 15, goal 3): however many distinct valid
// tokens pass a Guard, its heap is bounded by its caches' configured
// entries, not by the traffic.

// userMinter mints distinct valid user tokens, shaped like Ory Hydra's, for
// an issuer's EdDSA key (signing a million RS256 tokens would take an
// hour): token i is person i's, and no two are alike (sub and jti carry i).
type userMinter struct {
	key      *jwkstest.Key
	header   []byte
	iss, aud string
	iat, exp int64
}

func newUserMinter(iss *jwkstest.Issuer, key *jwkstest.Key, now time.Time) *userMinter {
	header, err := json.Marshal(map[string]string{"alg": key.Algorithm, "kid": key.ID, "typ": "JWT"})
	if err != nil {
		panic(err)
	}
	issuer, err := json.Marshal(iss.URL)
	if err != nil {
		panic(err)
	}
	return &userMinter{key: key, header: header, iss: string(issuer), aud: strconv.Quote(iss.Audience),
		iat: now.Unix(), exp: now.Add(time.Hour).Unix()}
}

// mint signs token i. It is not remembered by the issuer (jwkstest.SignRaw),
// so minting a million keeps nothing.
func (m *userMinter) mint(i int) string {
	claims := fmt.Appendf(nil, `{"aud":[%s],"client_id":"5d6c1b0a-2f3e-4d5c-8b7a-69f0e1d2c3b4",`+
		`"exp":%d,"ext":{"email":"user.%07d@example.com","name":"User %07d","roles":["reader","writer"],"tenant":"olympus-prod"},`+
		`"iat":%d,"iss":%s,"jti":"a1b2c3d4-e5f6-4a7b-8c9d-%012x","nbf":%d,`+
		`"scp":["openid","offline_access","profile","email","data:read","data:write"],"sub":"3f2a9c1e-7b4d-4e8a-9c61-%012x"}`,
		m.aud, m.exp, i, i, m.iat, m.iss, i, m.iat, i)
	return jwkstest.SignRaw(m.key, m.header, claims)
}

// traffic is distinct tokens sent through a Guard, with the live heap read
// at checkpoints.
type traffic struct {
	g    *middleware.Guard
	m    *userMinter
	sent int
	// minting and validating are the time spent in each, over all workers.
	minting, validating atomic.Int64
}

// sendUpTo sends tokens sent..n-1 from one worker per core, each token a
// first-seen one that the Guard must accept; it returns the first failure.
func (tr *traffic) sendUpTo(n int) error {
	var first atomic.Pointer[error]
	fail := func(err error) { first.CompareAndSwap(nil, &err) }
	workers := runtime.GOMAXPROCS(0)
	from := tr.sent
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			ctx := context.Background()
			var minting, validating time.Duration
			for i := from + w; i < n && first.Load() == nil; i += workers {
				start := time.Now()
				token := tr.m.mint(i)
				minted := time.Now()
				p, err := tr.g.Validate(ctx, token)
				validating += time.Since(minted)
				minting += minted.Sub(start)
				switch {
				case err != nil:
					fail(fmt.Errorf("token %d refused: %w", i, err))
				case p.Cached():
					fail(fmt.Errorf("token %d served from the cache: the tokens are not distinct", i))
				}
			}
			tr.minting.Add(int64(minting))
			tr.validating.Add(int64(validating))
		})
	}
	wg.Wait()
	tr.sent = n
	if err := first.Load(); err != nil {
		return *err
	}
	return nil
}

// checkpoint is the live heap above the baseline once sent tokens passed.
type checkpoint struct {
	sent int
	heap int64
}

// run sends tokens up to each checkpoint in turn and reads the live heap
// above base there.
func (tr *traffic) run(tb testing.TB, base uint64, at ...int) []checkpoint {
	tb.Helper()
	out := make([]checkpoint, 0, len(at))
	for _, n := range at {
		require.NoError(tb, tr.sendUpTo(n))
		out = append(out, checkpoint{sent: n, heap: int64(testutil.LiveHeap()) - int64(base)})
	}
	return out
}

// maxBytesPerEntry is a ceiling on the heap one verified-cache entry holds
// for these tokens: BenchmarkVerifiedCacheBytesPerEntry
// (middleware/core) measures about 3.4 KB for EdDSA user tokens of 749
// bytes; the ceiling leaves more than twice that for a small cache's
// slabs and for the race detector.
const maxBytesPerEntry = 8 << 10

// TestHeapBoundedByCacheNotTraffic sends ten times as many distinct valid
// user tokens through a Guard as its verified cache holds: the heap grows
// while the cache fills, stays under its entries times a ceiling per
// entry, and stops growing once the cache is full.
func TestHeapBoundedByCacheNotTraffic(t *testing.T) {
	for _, tc := range []struct {
		name       string
		maxEntries int
	}{
		{"500 entries", 500},
		{"1,000 entries", 1_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iss := jwkstest.NewIssuer(t, jwkstest.Config{Algorithm: "EdDSA", Now: fixedClock})
			k := iss.CurrentKey()
			set, err := jwks.NewSet(jwks.Key{ID: k.ID, Algorithm: k.Algorithm, Public: k.Public()})
			require.NoError(t, err)
			g := mustGuard(t, setup{Config: middleware.Config{Issuer: iss.URL, Audience: iss.Audience, Logger: quiet(), Now: fixedClock},
				Keys: set, VerifiedCache: cacheSetup{MaxEntries: tc.maxEntries}})
			tr := &traffic{g: g, m: newUserMinter(iss, k, t0)}
			base := testutil.LiveHeap()
			n := tc.maxEntries
			points := tr.run(t, base, n, 2*n, 5*n, 10*n)
			for _, p := range points {
				t.Logf("%6d tokens: heap %+8.1f KiB (%.0f bytes per cache entry)", p.sent, float64(p.heap)/1024,
					float64(p.heap)/float64(tc.maxEntries))
			}

			full := points[0].heap
			assert.Greater(t, full, int64(tc.maxEntries)*512, "the filled cache shows on the heap")
			ceiling := int64(tc.maxEntries)*maxBytesPerEntry + 1<<20
			slack := max(full/10, 256<<10)
			for _, p := range points[1:] {
				assert.LessOrEqual(t, p.heap, ceiling, "after %d tokens: within MaxEntries × %d bytes + 1 MiB", p.sent, maxBytesPerEntry)
				assert.LessOrEqual(t, p.heap, full+slack,
					"after %d tokens the heap grew by more than a tenth of a full cache's since the cache filled", p.sent)
			}
		})
	}
}

// BenchmarkGuardMillionUsers sends 1,000,000 distinct valid user tokens
// through a Guard with its default limits (middleware.New with Issuer and
// Audience: keys discovered from the jwkstest issuer, the verified cache
// of core.DefaultCacheMaxEntries entries) and reports the live heap above
// the baseline at 10,000 (the cache full), 100,000, 250,000, 500,000 and
// 1,000,000 tokens, and the time spent minting and validating a token. It
// fails if the heap at 1,000,000 is more than the default cache's entries
// times maxBytesPerEntry. It takes a minute or more on two cores: it runs
// only with AEGIS_MEMORY_1M=1, once (-benchtime=1x).
func BenchmarkGuardMillionUsers(b *testing.B) {
	if os.Getenv("AEGIS_MEMORY_1M") == "" {
		b.Skip("set AEGIS_MEMORY_1M=1 to send 1,000,000 tokens through a Guard")
	}
	for b.Loop() {
		iss := jwkstest.NewIssuer(b, jwkstest.Config{Algorithm: "EdDSA", Now: fixedClock})
		g, err := middleware.New(middleware.Config{Issuer: iss.URL, Audience: iss.Audience, Now: fixedClock})
		require.NoError(b, err)
		tr := &traffic{g: g, m: newUserMinter(iss, iss.CurrentKey(), t0)}
		// Discover the issuer and fetch its keys before the baseline.
		require.NoError(b, tr.sendUpTo(1))
		base := testutil.LiveHeap()
		points := tr.run(b, base, core.DefaultCacheMaxEntries, 100_000, 250_000, 500_000, 1_000_000)
		for _, p := range points {
			b.ReportMetric(float64(p.heap)/(1<<20), fmt.Sprintf("MiB-%04dk", p.sent/1000))
		}
		b.ReportMetric(float64(tr.minting.Load())/float64(tr.sent)/1e3, "mint-us/token")
		b.ReportMetric(float64(tr.validating.Load())/float64(tr.sent)/1e3, "validate-us/token")
		full, last := points[0].heap, points[len(points)-1].heap
		require.LessOrEqual(b, last, int64(core.DefaultCacheMaxEntries)*maxBytesPerEntry+1<<20,
			"the heap after 1,000,000 tokens is bounded by the default cache")
		require.LessOrEqual(b, last, full+max(full/10, 1<<20), "the heap stopped growing once the cache was full")
	}
}
