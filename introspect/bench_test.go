package introspect_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/introspect"
	"github.com/olympus/aegis/jwks/jwkstest"
)

// BenchmarkIntrospectCacheHit measures a request whose token's answer is
// cached: a SHA-256 of the token, a map lookup and the local re-checks.
func BenchmarkIntrospectCacheHit(b *testing.B) {
	issuer := jwkstest.NewIssuer(b, jwkstest.Config{})
	client, err := introspect.New(introspect.Config{Endpoint: issuer.IntrospectionURL(), Issuer: issuer.URL, Audience: issuer.Audience})
	require.NoError(b, err)
	token := issuer.OpaqueM2M("nightly-data-sync", "data:read", "data:write")
	ctx := context.Background()
	_, err = client.Introspect(ctx, token)
	require.NoError(b, err)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := client.Introspect(ctx, token); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	require.Equal(b, int64(1), issuer.IntrospectionCalls())
}

// BenchmarkIntrospectCacheHitParallel is the same hit from every core.
func BenchmarkIntrospectCacheHitParallel(b *testing.B) {
	issuer := jwkstest.NewIssuer(b, jwkstest.Config{})
	client, err := introspect.New(introspect.Config{Endpoint: issuer.IntrospectionURL(), Issuer: issuer.URL, Audience: issuer.Audience})
	require.NoError(b, err)
	token := issuer.OpaqueM2M("nightly-data-sync", "data:read")
	_, err = client.Introspect(context.Background(), token)
	require.NoError(b, err)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := client.Introspect(context.Background(), token); err != nil {
				b.Error(err)
			}
		}
	})
}
