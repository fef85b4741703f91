package rediscache_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/internal/redistest"
	"github.com/olympus/aegis/introspect"
	"github.com/olympus/aegis/introspect/rediscache"
	"github.com/olympus/aegis/jwks/jwkstest"
)

// BenchmarkIntrospect compares the three ways an introspection client
// answers a token it has been asked about before: from its own cache, from
// the cache shared through Redis (one round trip), and by calling the
// endpoint (a loopback jwkstest issuer, so the fastest a call gets).
func BenchmarkIntrospect(b *testing.B) {
	iss := jwkstest.NewIssuer(b, jwkstest.Config{})
	client := redistest.Shared(b)()
	prefix := testPrefix(b)
	cache, err := rediscache.New(rediscache.Config{Client: client, Prefix: prefix, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(b, err)
	b.Cleanup(func() { _ = cache.Close() })
	newClient := func(shared introspect.SharedCache, c introspect.CacheConfig) *introspect.Client {
		cl, err := introspect.New(introspect.Config{Endpoint: iss.IntrospectionURL(), Issuer: iss.URL, Audience: iss.Audience,
			Shared: shared, Cache: c, Logger: slog.New(slog.DiscardHandler)})
		require.NoError(b, err)
		return cl
	}
	token := iss.OpaqueM2M("worker", "data:read")
	ctx := context.Background()
	warm := newClient(cache, introspect.CacheConfig{TTL: time.Hour})
	_, err = warm.Introspect(ctx, token) // the answer is now local to warm and in Redis
	require.NoError(b, err)
	for _, tc := range []struct {
		name   string
		client *introspect.Client
	}{
		{"local-hit", warm},
		// No local cache of active answers: every lookup goes to Redis.
		{"shared-hit", newClient(cache, introspect.CacheConfig{TTL: -1})},
		{"endpoint-call", newClient(nil, introspect.CacheConfig{TTL: -1, NegativeTTL: -1})},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tc.client.Introspect(ctx, token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
