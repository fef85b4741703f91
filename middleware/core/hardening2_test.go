package core_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/ratelimit"
)

// keyRecorder is a rate-limit store that remembers the keys it is asked to
// charge, deciding with a memory store.
type keyRecorder struct {
	ratelimit.Store
	mu   sync.Mutex
	keys []string
}

func (k *keyRecorder) Allow(ctx context.Context, key string, l ratelimit.Limit) (ratelimit.Decision, error) {
	k.mu.Lock()
	k.keys = append(k.keys, key)
	k.mu.Unlock()
	return k.Store.Allow(ctx, key, l)
}

// Hardening, round 2, point 7: two callers whose client or subject differ
// never share a quota, whatever their IDs spell.
func TestHardening2_RateLimitKeysNeverCollide(t *testing.T) {
	type caller struct{ clientID, subject string }
	tests := []struct {
		name       string
		perSubject bool
		a, b       caller
	}{
		{name: "a client named sub:alice and alice's answer without client_id",
			a: caller{clientID: "sub:alice", subject: "sub:alice"}, b: caller{subject: "alice"}},
		{name: "the same, per subject",
			perSubject: true, a: caller{clientID: "sub:alice", subject: "sub:alice"}, b: caller{subject: "alice"}},
		{name: "a NUL moved from the client ID to the subject", perSubject: true,
			a: caller{clientID: "app\x00bob", subject: "eve"}, b: caller{clientID: "app", subject: "bob\x00eve"}},
		{name: "a client named like another's per-subject key", perSubject: true,
			a: caller{clientID: "app", subject: "bob"}, b: caller{clientID: "app\x00bob", subject: "app\x00bob"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			callers := map[string]caller{"a": tc.a, "b": tc.b}
			v := core.ValidatorFunc(func(_ context.Context, token string) (*core.Principal, error) {
				c := callers[token]
				return core.NewPrincipal(core.Principal{ClientID: c.clientID, Subject: c.subject}, nil), nil
			})
			store := &keyRecorder{Store: ratelimit.NewMemoryStore(ratelimit.MemoryConfig{Now: fixedClock})}
			checker, err := core.New(core.Config{Validator: v, Now: fixedClock,
				RateLimit: &core.RateLimitConfig{Default: 1, Store: store, PerSubject: tc.perSubject}})
			require.NoError(t, err)
			for _, token := range []string{"a", "b"} {
				verdict := checker.Check(context.Background(), core.Credential{Token: token})
				require.Nil(t, verdict.Refusal, "caller %s is charged to its own quota", token)
				require.NotNil(t, verdict.RateLimit)
				assert.True(t, verdict.RateLimit.Allowed)
			}
			require.Len(t, store.keys, 2)
			assert.NotEqual(t, store.keys[0], store.keys[1])
		})
	}

	// Printable IDs give printable keys (Redis keeps them under a
	// prefix), and a client alone is charged under its ID, as before.
	for _, c := range []struct {
		perSubject      bool
		clientID, sub   string
		wantKeyIsClient bool
	}{
		{clientID: "worker", sub: "worker", wantKeyIsClient: true},
		{clientID: "web-app", sub: "alice", wantKeyIsClient: true},
		{perSubject: true, clientID: "web-app", sub: "alice"},
		{sub: "alice"},
		{clientID: "~odd", sub: "~odd"},
	} {
		store := &keyRecorder{Store: ratelimit.NewMemoryStore(ratelimit.MemoryConfig{Now: fixedClock})}
		v := core.ValidatorFunc(func(context.Context, string) (*core.Principal, error) {
			return core.NewPrincipal(core.Principal{ClientID: c.clientID, Subject: c.sub}, nil), nil
		})
		checker, err := core.New(core.Config{Validator: v, Now: fixedClock,
			RateLimit: &core.RateLimitConfig{Default: 10, Store: store, PerSubject: c.perSubject}})
		require.NoError(t, err)
		require.Nil(t, checker.Check(context.Background(), core.Credential{Token: "t"}).Refusal)
		require.Len(t, store.keys, 1)
		key := store.keys[0]
		if c.wantKeyIsClient {
			assert.Equal(t, c.clientID, key)
		}
		for _, r := range key {
			assert.True(t, unicode.IsPrint(r), "key %q is printable", key)
		}
	}
}

// TestHardening2_MaxLifetimeThroughJWTConfig: the optional maximum token
// lifetime of point 9 is a JWTConfig field, off by default.
func TestHardening2_MaxLifetimeThroughJWTConfig(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{TokenLifetime: 2 * time.Hour})
	tests := []struct {
		name        string
		maxLifetime time.Duration
		reason      aegis.Reason // empty: accepted
	}{
		{"off by default", 0, ""},
		{"within the bound", 3 * time.Hour, ""},
		{"over the bound", time.Hour, aegis.ReasonClaimsInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jwt, err := core.NewJWT(core.JWTConfig{Issuer: iss.URL, Audience: iss.Audience, MaxLifetime: tt.maxLifetime})
			require.NoError(t, err)
			_, err = jwt.Validate(context.Background(), iss.M2M("worker"))
			if tt.reason == "" {
				assert.NoError(t, err)
				return
			}
			var r *aegis.Refusal
			require.ErrorAs(t, err, &r)
			assert.Equal(t, tt.reason, r.Reason)
		})
	}
}

// movingClock is a clock a test moves by hand.
type movingClock struct{ ns atomic.Int64 }

func newMovingClock() *movingClock {
	c := &movingClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *movingClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *movingClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// TestHardening2_VerifiedCacheOutlivesItsKey (point 3): a cached verified
// token is served only while its key set holds the very key that verified
// it (its material, not its kid), and hits alone let the key set refresh,
// so a removal is noticed within the refresh interval.
func TestHardening2_VerifiedCacheOutlivesItsKey(t *testing.T) {
	tests := []struct {
		name string
		// mint signs the token under test.
		mint func(iss *jwkstest.Issuer) string
		// change alters the issuer's published key set.
		change func(iss *jwkstest.Issuer, signer *jwkstest.Key)
		reason aegis.Reason
	}{
		{
			name: "a token without kid, its key unpublished",
			mint: func(iss *jwkstest.Issuer) string {
				return iss.SignWith(iss.CurrentKey(), map[string]any{"kid": nil}, iss.Claims("worker", "worker"))
			},
			change: func(iss *jwkstest.Issuer, signer *jwkstest.Key) {
				iss.Rotate("RS256")
				iss.Unpublish(signer.ID)
			},
			reason: aegis.ReasonSignatureInvalid,
		},
		{
			name: "the same kid republished with new material",
			mint: func(iss *jwkstest.Issuer) string { return iss.M2M("worker") },
			change: func(iss *jwkstest.Issuer, signer *jwkstest.Key) {
				k := jwkstest.NewKey("RS256")
				k.ID = signer.ID
				iss.Unpublish(signer.ID)
				iss.PublishRawJWK(k.JWK())
			},
			reason: aegis.ReasonSignatureInvalid,
		},
		{
			name: "a key unpublished while every request is a hit",
			mint: func(iss *jwkstest.Issuer) string { return iss.M2M("worker") },
			change: func(iss *jwkstest.Issuer, signer *jwkstest.Key) {
				iss.Rotate("RS256")
				iss.Unpublish(signer.ID)
			},
			reason: aegis.ReasonKeyUnknown,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newMovingClock()
			iss := jwkstest.NewIssuer(t, jwkstest.Config{Now: clock.Now})
			jwt, err := core.NewJWT(core.JWTConfig{Issuer: iss.URL, Audience: iss.Audience, Now: clock.Now,
				JWKS: jwks.Config{RefreshInterval: time.Minute, MinRefreshInterval: time.Minute, Now: clock.Now}})
			require.NoError(t, err)
			seen := &cacheHits{}
			checker, err := core.New(core.Config{Observer: seen, Now: clock.Now,
				Validator: core.Cached(jwt, core.CacheConfig{TTL: time.Hour, Now: clock.Now})})
			require.NoError(t, err)

			signer := iss.CurrentKey()
			token := tt.mint(iss)
			for range 2 { // verified, then served from the cache
				_, err := checker.Validate(context.Background(), token)
				require.NoError(t, err)
			}
			require.Equal(t, int64(1), seen.hits.Load())

			tt.change(iss, signer)
			clock.Advance(2 * time.Minute) // past the key set's refresh interval
			fetches := iss.JWKSFetches()
			var r *aegis.Refusal
			require.Eventually(t, func() bool {
				_, err := checker.Validate(context.Background(), token)
				return errors.As(err, &r)
			}, 5*time.Second, 10*time.Millisecond, "the token is refused once its key is gone")
			assert.Equal(t, tt.reason, r.Reason)
			assert.Greater(t, iss.JWKSFetches(), fetches, "hits let the key set refresh")
		})
	}
}
