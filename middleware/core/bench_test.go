package core_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/introspect"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware/core"
)

// BenchmarkCachedHit is a verified-cache hit with the cache where the
// README puts it: alone, inside Hybrid, inside ByIssuer inside Hybrid. A
// hit must cost the same in each: the token is not parsed first.
func BenchmarkCachedHit(b *testing.B) {
	iss := jwkstest.NewIssuer(b, jwkstest.Config{})
	jwt, err := core.NewJWT(core.JWTConfig{Issuer: iss.URL, Audience: iss.Audience})
	require.NoError(b, err)
	intro, err := core.NewIntrospection(introspect.Config{Issuer: iss.URL, Audience: iss.Audience, Endpoint: iss.IntrospectionURL()})
	require.NoError(b, err)
	cached := core.Cached(jwt, core.CacheConfig{})
	for _, c := range []struct {
		name string
		v    core.Validator
	}{
		{"Cached", cached},
		{"Hybrid(Cached)", core.Hybrid(cached, intro)},
		{"Hybrid(ByIssuer(Cached))", core.Hybrid(core.ByIssuer(map[string]core.Validator{iss.URL: cached}), intro)},
	} {
		b.Run(c.name, func(b *testing.B) {
			token := iss.M2M("worker", "data:read")
			_, err := c.v.Validate(context.Background(), token)
			require.NoError(b, err)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.v.Validate(context.Background(), token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
