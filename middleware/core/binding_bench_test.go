package core_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware/core"
)

// BenchmarkBoundRepeatToken is a DPoP-bound token presented again: a hit
// of the verified-token cache (no signature check of the token), then its
// proof's checks (parse, signature with the proof's key, htm, htu, iat,
// ath, jkt) and the replay store's insert. Every iteration has a proof of
// its own, made before the timer starts. Bearer is the same token path
// for an unbound token, for comparison.
func BenchmarkBoundRepeatToken(b *testing.B) {
	for _, alg := range []string{jwks.ES256, jwks.EdDSA, jwks.RS256} {
		b.Run("DPoP/"+alg, func(b *testing.B) {
			f := benchFixture(b)
			key := jwkstest.NewKey(alg)
			c, err := core.New(core.Config{Validator: f.validator, Logger: quiet(), Now: fixedClock})
			require.NoError(b, err)
			token := f.iss.DPoPBound("worker", key, "data:read")
			proofs := make([]string, b.N+1)
			for i := range proofs {
				proofs[i] = f.proof(key, token)
			}
			v := c.Check(context.Background(), cred(token, core.SchemeDPoP, proofs[b.N]))
			require.Nil(b, v.Refusal)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				v := c.Check(context.Background(), cred(token, core.SchemeDPoP, proofs[i]))
				if v.Refusal != nil || !v.Principal.Cached() {
					b.Fatal(v.Refusal)
				}
			}
		})
	}
	b.Run("Bearer", func(b *testing.B) {
		f := benchFixture(b)
		c, err := core.New(core.Config{Validator: f.validator, Logger: quiet(), Now: fixedClock})
		require.NoError(b, err)
		token := f.iss.M2M("worker", "data:read")
		require.Nil(b, c.Check(context.Background(), cred(token, core.SchemeBearer, "")).Refusal)
		b.ReportAllocs()
		for b.Loop() {
			if v := c.Check(context.Background(), cred(token, core.SchemeBearer, "")); v.Refusal != nil {
				b.Fatal(v.Refusal)
			}
		}
	})
}

func benchFixture(b *testing.B) *bindingFixture {
	iss := jwkstest.NewIssuer(b, jwkstest.Config{Algorithm: jwks.ES256, Now: fixedClock})
	jwt, err := core.NewJWT(core.JWTConfig{Issuer: iss.URL, Audience: iss.Audience, Now: fixedClock})
	require.NoError(b, err)
	return &bindingFixture{iss: iss, validator: core.Cached(jwt, core.CacheConfig{Now: fixedClock})}
}
