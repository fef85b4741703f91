package middleware_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/internal/testutil"
	"github.com/olympus/aegis/introspect"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
)

// countingKeys is a key set that counts lookups (one per verification)
// and can drop a key.
type countingKeys struct {
	mu      sync.Mutex
	set     *jwks.Set
	lookups atomic.Int64
}

func (c *countingKeys) LookupKeys(ctx context.Context, kid string) ([]jwks.Key, error) {
	c.lookups.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.set.LookupKeys(ctx, kid)
}

func (c *countingKeys) Holds(k jwks.Key, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.set.Holds(k, now)
}

func (c *countingKeys) drop(t *testing.T) {
	set, err := jwks.NewSet()
	require.NoError(t, err)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.set = set
}

func cachedGuard(t *testing.T, tweak func(*setup)) (*jwkstest.Issuer, *middleware.Guard, *countingKeys, *testutil.Clock) {
	t.Helper()
	clk := testutil.NewClock(t0)
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Now: fixedClock})
	k := iss.CurrentKey()
	set, err := jwks.NewSet(jwks.Key{ID: k.ID, Algorithm: k.Algorithm, Public: k.Public()})
	require.NoError(t, err)
	keys := &countingKeys{set: set}
	// core.Cached around core.NewJWT, as the setup composes it.
	cfg := setup{Config: middleware.Config{Issuer: iss.URL, Audience: iss.Audience, Now: clk.Now, Logger: quiet()}, Keys: keys}
	if tweak != nil {
		tweak(&cfg)
	}
	g := mustGuard(t, cfg)
	return iss, g, keys, clk
}

func TestVerifiedCacheServesRepeatTokens(t *testing.T) {
	iss, g, keys, _ := cachedGuard(t, nil)
	token := iss.User("user-42", "web-app", "alice@example.com", "data:read")
	first, err := g.Validate(context.Background(), token)
	require.NoError(t, err)
	for range 5 {
		p, err := g.Validate(context.Background(), token)
		require.NoError(t, err)
		assert.Equal(t, first.Subject, p.Subject)
		assert.Equal(t, first.Email, p.Email)
		assert.Equal(t, first.Kind, p.Kind)
		assert.Equal(t, first.Scopes.Strings(), p.Scopes.Strings())
		assert.Equal(t, middleware.MethodJWT, p.Method)
		assert.NotSame(t, first, p, "each request gets its own Principal")
		ext, err := middleware.ClaimAs[map[string]string](p, "ext")
		require.NoError(t, err)
		assert.Equal(t, "alice@example.com", ext["email"])
	}
	assert.Equal(t, int64(1), keys.lookups.Load(), "verified once")

	// A different token (even for the same client) is verified on its own.
	_, err = g.Validate(context.Background(), iss.User("user-42", "web-app", "alice@example.com", "data:read"))
	require.NoError(t, err)
	assert.Equal(t, int64(2), keys.lookups.Load())
}

func TestVerifiedCacheLifetime(t *testing.T) {
	tests := []struct {
		name      string
		tweak     func(*setup)
		exp       time.Duration // after t0
		advance   time.Duration
		wantErr   string // reason after advancing, "" for accepted
		reverifed bool
	}{
		{name: "within the TTL", exp: time.Hour, advance: 4 * time.Minute},
		{name: "past the TTL: verified again", exp: time.Hour, advance: 6 * time.Minute, reverifed: true},
		{name: "configured TTL", tweak: func(c *setup) { c.VerifiedCache.TTL = time.Minute }, exp: time.Hour, advance: 61 * time.Second, reverifed: true},
		{name: "never past exp plus leeway", exp: 10 * time.Second, advance: 41 * time.Second, wantErr: "token_expired", reverifed: true},
		{name: "exp without leeway", tweak: func(c *setup) { c.Leeway = -1 }, exp: 10 * time.Second, advance: 10 * time.Second, wantErr: "token_expired", reverifed: true},
		{name: "within exp plus leeway", exp: 10 * time.Second, advance: 39 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iss, g, keys, clk := cachedGuard(t, tc.tweak)
			c := iss.Claims("w", "w")
			c["exp"] = t0.Add(tc.exp).Unix()
			token := iss.Sign(c)
			_, err := g.Validate(context.Background(), token)
			require.NoError(t, err)
			clk.Advance(tc.advance)
			_, err = g.Validate(context.Background(), token)
			if tc.wantErr == "" {
				require.NoError(t, err)
			} else {
				var e *aegis.Refusal
				require.ErrorAs(t, err, &e)
				assert.Equal(t, tc.wantErr, string(e.Reason))
			}
			want := int64(1)
			if tc.reverifed {
				want = 2
			}
			assert.Equal(t, want, keys.lookups.Load())
		})
	}
}

func TestVerifiedCacheDropsTokensWhoseKeyLeft(t *testing.T) {
	iss, g, keys, _ := cachedGuard(t, nil)
	token := iss.M2M("w")
	_, err := g.Validate(context.Background(), token)
	require.NoError(t, err)
	keys.drop(t)
	_, err = g.Validate(context.Background(), token)
	var e *aegis.Refusal
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "key_unknown", string(e.Reason))
}

func TestVerifiedCacheIsBounded(t *testing.T) {
	iss, g, keys, _ := cachedGuard(t, func(c *setup) { c.VerifiedCache.MaxEntries = 32 })
	tokens := make([]string, 200)
	for i := range tokens {
		tokens[i] = iss.M2M(fmt.Sprintf("w%d", i))
		_, err := g.Validate(context.Background(), tokens[i])
		require.NoError(t, err)
	}
	before := keys.lookups.Load()
	for _, tok := range tokens {
		_, err := g.Validate(context.Background(), tok)
		require.NoError(t, err)
	}
	hits := int(int64(len(tokens)) - (keys.lookups.Load() - before))
	assert.LessOrEqual(t, hits, 32+16, "no more than the bound stays cached (a shard may round up)")
}

func TestVerifiedCacheCanBeDisabled(t *testing.T) {
	iss, g, keys, _ := cachedGuard(t, func(c *setup) { c.VerifiedCache.Disabled = true })
	token := iss.M2M("w")
	for range 3 {
		_, err := g.Validate(context.Background(), token)
		require.NoError(t, err)
	}
	assert.Equal(t, int64(3), keys.lookups.Load())
}

func TestVerifiedCacheConcurrent(t *testing.T) {
	iss, g, _, _ := cachedGuard(t, nil)
	tokens := []string{iss.M2M("a", "x"), iss.User("u", "app", "u@x", "y"), iss.M2M("b")}
	h := g.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := middleware.PrincipalFrom(r.Context())
		_, _ = w.Write([]byte(p.Subject))
	}))
	var wg sync.WaitGroup
	for i := range 300 {
		wg.Go(func() {
			tok := tokens[i%len(tokens)]
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, get("/", "Bearer "+tok))
			assert.Equal(t, 200, rec.Code)
			assert.Equal(t, []string{"a", "u", "b"}[i%3], rec.Body.String())
		})
	}
	wg.Wait()
}

// TestIntrospectedTokensAreNotCachedHere: revocation stays the
// introspection cache's business.
func TestIntrospectedTokensAreNotCachedHere(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	g := mustGuard(t, setup{Config: middleware.Config{Issuer: iss.URL, Audience: iss.Audience, Logger: quiet()}, Mode: modeIntrospect,
		Introspection: introspect.Config{Endpoint: iss.IntrospectionURL(), Cache: introspect.CacheConfig{TTL: -1}}})
	token := iss.M2M("w")
	_, err := g.Validate(context.Background(), token)
	require.NoError(t, err)
	iss.Revoke(token)
	_, err = g.Validate(context.Background(), token)
	require.Error(t, err)
}
