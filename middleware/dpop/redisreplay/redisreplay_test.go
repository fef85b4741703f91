package redisreplay_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/internal/redistest"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/dpop"
	"github.com/olympus/aegis/middleware/dpop/redisreplay"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return t0 }

func withTimeout(o *redis.Options) { o.ContextTimeoutEnabled = true }

func newStore(t *testing.T, c redis.UniversalClient) *redisreplay.Store {
	t.Helper()
	s, err := redisreplay.New(redisreplay.Config{Client: c, Now: clock})
	require.NoError(t, err)
	return s
}

func TestSeen(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv.Client(withTimeout))
	tests := []struct {
		name string
		key  string
		seen bool
	}{
		{"first use", "k1", false},
		{"second use", "k1", true},
		{"another key", "k2", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen, err := s.Seen(context.Background(), tt.key, t0.Add(time.Minute))
			require.NoError(t, err)
			assert.Equal(t, tt.seen, seen)
		})
	}
	ttl, err := srv.Client().PTTL(context.Background(), redisreplay.DefaultPrefix+"k1").Result()
	require.NoError(t, err)
	assert.InDelta(t, float64(time.Minute), float64(ttl), float64(2*time.Second), "the key expires with its proof's window")
}

func TestStoreDownIsAnError(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv.Client(withTimeout))
	srv.Stop()
	seen, err := s.Seen(context.Background(), "k", t0.Add(time.Minute))
	assert.Error(t, err)
	assert.False(t, seen)
}

func TestNewRefusesBadConfig(t *testing.T) {
	s, err := redisreplay.New(redisreplay.Config{Timeout: -time.Second})
	assert.Nil(t, s)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Client is required")
	assert.Contains(t, err.Error(), "Timeout")
}

// TestTwoGuardsShareRedis: two Guards (two replicas) with their own
// Verifiers on one Redis: a proof used at one is refused at the other, and
// with Redis down a proof is refused as unavailable (503), never accepted.
func TestTwoGuardsShareRedis(t *testing.T) {
	srv := redistest.Start(t)
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Algorithm: jwks.ES256, Now: clock})
	key := jwkstest.NewKey(jwks.ES256)
	guard := func() *middleware.Guard {
		v, err := dpop.New(dpop.Config{Replay: newStore(t, srv.Client(withTimeout)), Now: clock})
		require.NoError(t, err)
		g, err := middleware.New(middleware.Config{Issuer: iss.URL, Audience: iss.Audience, DPoP: middleware.DPoPConfig{Verifier: v},
			Now: clock, Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		return g
	}
	a, b := guard(), guard()
	token := iss.DPoPBound("svc", key)
	const target = "https://api.test/data"
	serve := func(g *middleware.Guard, proof string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		req.Header.Set("Authorization", "DPoP "+token)
		req.Header.Set("DPoP", proof)
		rec := httptest.NewRecorder()
		g.Protect(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(rec, req)
		return rec
	}
	proof := func() string {
		return key.DPoPProof(jwkstest.DPoPProof{Method: http.MethodGet, URL: target, AccessToken: token, IssuedAt: t0})
	}

	p := proof()
	assert.Equal(t, http.StatusOK, serve(a, p).Code, "first use, at A")
	rec := serve(b, p)
	assert.Equal(t, http.StatusUnauthorized, rec.Code, "replay at B")
	assert.Contains(t, rec.Header().Values("WWW-Authenticate")[1], `error="invalid_dpop_proof"`)
	assert.Equal(t, http.StatusOK, serve(b, proof()).Code, "a fresh proof at B")

	srv.Stop()
	rec = serve(a, proof())
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code, "Redis down: no decision")
	assert.NotEmpty(t, rec.Header().Get("Retry-After"))
}

// TestNonceSecret: replicas on one Redis and prefix get one secret, the
// first one stored; another prefix gets its own; a short value or a Redis
// that cannot answer is an error.
func TestNonceSecret(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	first, err := newStore(t, srv.Client(withTimeout)).NonceSecret(ctx)
	require.NoError(t, err)
	require.Len(t, first, redisreplay.NonceSecretSize)
	other, err := redisreplay.New(redisreplay.Config{Client: srv.Client(withTimeout), Prefix: "other:"})
	require.NoError(t, err)
	require.NoError(t, srv.Client().Set(ctx, "short:nonce-secret", "tiny", 0).Err())
	short, err := redisreplay.New(redisreplay.Config{Client: srv.Client(withTimeout), Prefix: "short:"})
	require.NoError(t, err)

	tests := []struct {
		name  string
		store *redisreplay.Store
		same  bool   // the first replica's secret
		err   string // when it fails
	}{
		{name: "another replica, same prefix", store: newStore(t, srv.Client(withTimeout)), same: true},
		{name: "another prefix", store: other},
		{name: "a value too short", store: short, err: "fewer than 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.store.NonceSecret(ctx)
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			assert.Len(t, got, redisreplay.NonceSecretSize)
			if tt.same {
				assert.Equal(t, first, got)
			} else {
				assert.NotEqual(t, first, got)
			}
		})
	}
	ttl, err := srv.Client().TTL(ctx, redisreplay.DefaultPrefix+"nonce-secret").Result()
	require.NoError(t, err)
	assert.Equal(t, time.Duration(-1), ttl, "the secret never expires")

	srv.Stop()
	_, err = newStore(t, srv.Client(withTimeout)).NonceSecret(ctx)
	assert.Error(t, err, "Redis down")
}
