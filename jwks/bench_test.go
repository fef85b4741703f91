package jwks_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
)

// floorVerify is the least any validator must do: split the token, decode
// the signature and verify it with the standard library.
func floorVerify(alg string, pub crypto.PublicKey, token string) bool {
	last := strings.LastIndexByte(token, '.')
	sig, err := base64.RawURLEncoding.DecodeString(token[last+1:])
	if err != nil {
		return false
	}
	switch alg {
	case "RS256":
		h := sha256.Sum256([]byte(token[:last]))
		return rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.SHA256, h[:], sig) == nil
	case "ES256":
		h := sha256.Sum256([]byte(token[:last]))
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(pub.(*ecdsa.PublicKey), h[:], r, s)
	case "EdDSA":
		return ed25519.Verify(pub.(ed25519.PublicKey), []byte(token[:last]), sig)
	}
	return false
}

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
			require.True(b, floorVerify(alg, pub, token))
			b.ReportAllocs()
			for b.Loop() {
				if !floorVerify(alg, pub, token) {
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
