package jwks_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/internal/floor"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
)

func benchSetup(b *testing.B, alg string) (*jwks.Validator, *jwkstest.Issuer, string) {
	iss := jwkstest.NewIssuer(b, jwkstest.Config{Algorithm: alg, Now: fixedClock})
	k := iss.CurrentKey()
	set, err := jwks.NewSet(jwks.Key{ID: k.ID, Algorithm: alg, Public: k.Public()})
	require.NoError(b, err)
	v, err := jwks.NewValidator(jwks.ValidatorConfig{Issuer: iss.URL, Audience: iss.Audience, Keys: set, Now: fixedClock})
	require.NoError(b, err)
	return v, iss, iss.M2M("nightly-data-sync", "data:read", "data:write")
}

// BenchmarkFloor is the standard-library verify on the same token.
func BenchmarkFloor(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		b.Run(alg, func(b *testing.B) {
			_, iss, token := benchSetup(b, alg)
			pub := iss.CurrentKey().Public()
			require.True(b, floor.Verify(alg, pub, token))
			b.ReportAllocs()
			for b.Loop() {
				if !floor.Verify(alg, pub, token) {
					b.Fatal("floor refused")
				}
			}
		})
	}
}

// BenchmarkValidate is Aegis's full validation of a token (no cache yet).
func BenchmarkValidate(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		b.Run(alg, func(b *testing.B) {
			v, _, token := benchSetup(b, alg)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Validate(ctx, token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
