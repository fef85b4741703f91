package jwks_test

import (
	"github.com/olympus/aegis"

	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
)

func TestNewSignatureVerifierAllowsOnlyAsymmetricAlgorithms(t *testing.T) {
	for _, alg := range jwks.DefaultAlgorithms() {
		v, err := jwks.NewSignatureVerifier(alg)
		require.NoError(t, err, alg)
		assert.Equal(t, alg, v.Algorithm())
	}
	for _, alg := range []string{"", "none", "None", "HS256", "HS384", "HS512", "rs256", "ES256K", "ed25519", "Ed448", "RSA1_5", "ES521", "RS256 "} {
		v, err := jwks.NewSignatureVerifier(alg)
		assert.ErrorIs(t, err, jwks.ErrAlgorithm, "%q", alg)
		assert.Nil(t, v, "%q", alg)
	}
}

// splitToken returns a compact JWS's signing input and decoded signature.
func splitToken(t *testing.T, token string) (input, sig []byte) {
	t.Helper()
	last := strings.LastIndexByte(token, '.')
	sig, err := base64.RawURLEncoding.DecodeString(token[last+1:])
	require.NoError(t, err)
	return []byte(token[:last]), sig
}

func flipLastBit(b []byte) []byte {
	c := append([]byte(nil), b...)
	c[len(c)-1] ^= 1
	return c
}

// derSignature re-encodes a raw r||s ECDSA signature as ASN.1 DER, the
// encoding JWS does not use.
func derSignature(t *testing.T, raw []byte) []byte {
	t.Helper()
	half := len(raw) / 2
	der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(raw[:half]), new(big.Int).SetBytes(raw[half:])})
	require.NoError(t, err)
	return der
}

func TestSignatureVerifierVerify(t *testing.T) {
	rsaKey := jwkstest.NewKey("RS256")
	keys := map[string]*jwkstest.Key{"EdDSA": jwkstest.NewKey("EdDSA"), "Ed25519": jwkstest.NewKey("Ed25519")}
	for _, alg := range []string{"ES256", "ES384", "ES512"} {
		keys[alg] = jwkstest.NewKey(alg)
	}
	for _, alg := range []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"} {
		keys[alg] = &jwkstest.Key{ID: "rsa", Algorithm: alg, Private: rsaKey.Private}
	}
	key := func(alg string) jwks.Key { return jwks.Key{Public: keys[alg].Public()} }
	type signed struct{ input, sig []byte }
	sigs := map[string]signed{}
	for alg, k := range keys {
		input, sig := splitToken(t, jwkstest.SignRaw(k, []byte(`{"alg":"`+alg+`"}`), []byte(`{"sub":"a"}`)))
		sigs[alg] = signed{input, sig}
	}

	type tc struct {
		name  string
		alg   string
		key   jwks.Key
		input []byte
		sig   []byte
		want  error // nil: accepted
	}
	var tests []tc
	for _, alg := range jwks.DefaultAlgorithms() {
		s := sigs[alg]
		tests = append(tests,
			tc{name: alg + " valid", alg: alg, key: key(alg), input: s.input, sig: s.sig},
			tc{name: alg + " valid, key names its alg", alg: alg, key: jwks.Key{Algorithm: alg, Public: keys[alg].Public()}, input: s.input, sig: s.sig},
			tc{name: alg + " signature changed", alg: alg, key: key(alg), input: s.input, sig: flipLastBit(s.sig), want: jwks.ErrSignature},
			tc{name: alg + " message changed", alg: alg, key: key(alg), input: flipLastBit(s.input), sig: s.sig, want: jwks.ErrSignature},
			tc{name: alg + " signature truncated", alg: alg, key: key(alg), input: s.input, sig: s.sig[:len(s.sig)-1], want: jwks.ErrSignature},
			tc{name: alg + " signature extended", alg: alg, key: key(alg), input: s.input, sig: append(append([]byte(nil), s.sig...), 0), want: jwks.ErrSignature},
			tc{name: alg + " empty signature", alg: alg, key: key(alg), input: s.input, sig: nil, want: jwks.ErrSignature},
			tc{name: alg + " key without public key", alg: alg, key: jwks.Key{}, input: s.input, sig: s.sig, want: jwks.ErrAlgorithm},
		)
	}
	tests = append(tests,
		tc{name: "PS256 salt of 0 bytes", alg: "PS256", key: key("PS256"), input: sigs["PS256"].input, sig: pssSign(t, rsaKey, crypto.SHA256, sigs["PS256"].input, 0), want: jwks.ErrSignature},
		tc{name: "PS256 salt of 33 bytes", alg: "PS256", key: key("PS256"), input: sigs["PS256"].input, sig: pssSign(t, rsaKey, crypto.SHA256, sigs["PS256"].input, 33), want: jwks.ErrSignature},
		tc{name: "PS256 salt of maximal length", alg: "PS256", key: key("PS256"), input: sigs["PS256"].input, sig: pssSign(t, rsaKey, crypto.SHA256, sigs["PS256"].input, rsa.PSSSaltLengthAuto), want: jwks.ErrSignature},
		tc{name: "PS256 salt of 32 bytes, signed here", alg: "PS256", key: key("PS256"), input: sigs["PS256"].input, sig: pssSign(t, rsaKey, crypto.SHA256, sigs["PS256"].input, 32)},
		tc{name: "PS512 salt of 32 bytes", alg: "PS512", key: key("PS512"), input: sigs["PS512"].input, sig: pssSign(t, rsaKey, crypto.SHA512, sigs["PS512"].input, 32), want: jwks.ErrSignature},
		tc{name: "PS384 signature with MGF1 and salt of PS256", alg: "PS384", key: key("PS384"), input: sigs["PS256"].input, sig: sigs["PS256"].sig, want: jwks.ErrSignature},
		tc{name: "RS256 signature checked as PS256", alg: "PS256", key: key("PS256"), input: sigs["RS256"].input, sig: sigs["RS256"].sig, want: jwks.ErrSignature},
		tc{name: "PS256 signature checked as RS256", alg: "RS256", key: key("RS256"), input: sigs["PS256"].input, sig: sigs["PS256"].sig, want: jwks.ErrSignature},
		tc{name: "RS256 signature checked as RS384", alg: "RS384", key: key("RS384"), input: sigs["RS256"].input, sig: sigs["RS256"].sig, want: jwks.ErrSignature},
		tc{name: "key for RS256 only, verifier PS256", alg: "PS256", key: jwks.Key{Algorithm: "RS256", Public: rsaKey.Public()}, input: sigs["PS256"].input, sig: sigs["PS256"].sig, want: jwks.ErrAlgorithm},
		tc{name: "RSA key, verifier ES256", alg: "ES256", key: key("RS256"), input: sigs["ES256"].input, sig: sigs["ES256"].sig, want: jwks.ErrAlgorithm},
		tc{name: "P-384 key, verifier ES256", alg: "ES256", key: key("ES384"), input: sigs["ES256"].input, sig: sigs["ES256"].sig, want: jwks.ErrAlgorithm},
		tc{name: "P-256 key, verifier ES512", alg: "ES512", key: key("ES256"), input: sigs["ES256"].input, sig: sigs["ES256"].sig, want: jwks.ErrAlgorithm},
		tc{name: "Ed25519 key, verifier ES256", alg: "ES256", key: key("EdDSA"), input: sigs["ES256"].input, sig: sigs["ES256"].sig, want: jwks.ErrAlgorithm},
		tc{name: "EC key, verifier EdDSA", alg: "EdDSA", key: key("ES256"), input: sigs["EdDSA"].input, sig: sigs["EdDSA"].sig, want: jwks.ErrAlgorithm},
		tc{name: "ES256 signature in DER", alg: "ES256", key: key("ES256"), input: sigs["ES256"].input, sig: derSignature(t, sigs["ES256"].sig), want: jwks.ErrSignature},
		tc{name: "ES512 signature in DER", alg: "ES512", key: key("ES512"), input: sigs["ES512"].input, sig: derSignature(t, sigs["ES512"].sig), want: jwks.ErrSignature},
		tc{name: "ES256 r and s swapped", alg: "ES256", key: key("ES256"), input: sigs["ES256"].input, sig: append(append([]byte(nil), sigs["ES256"].sig[32:]...), sigs["ES256"].sig[:32]...), want: jwks.ErrSignature},
		tc{name: "ES256 high-S twin", alg: "ES256", key: key("ES256"), input: sigs["ES256"].input, sig: highS(sigs["ES256"].sig, keys["ES256"].Public().(*ecdsa.PublicKey)), want: nil},
		tc{name: "ES256 all zero", alg: "ES256", key: key("ES256"), input: sigs["ES256"].input, sig: make([]byte, 64), want: jwks.ErrSignature},
		tc{name: "EdDSA all zero", alg: "EdDSA", key: key("EdDSA"), input: sigs["EdDSA"].input, sig: make([]byte, ed25519.SignatureSize), want: jwks.ErrSignature},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := jwks.NewSignatureVerifier(tt.alg)
			require.NoError(t, err)
			input, sig := append([]byte(nil), tt.input...), append([]byte(nil), tt.sig...)
			err = v.Verify(tt.key, tt.input, tt.sig)
			if tt.want == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tt.want)
				var ve *aegis.Refusal
				require.ErrorAs(t, err, &ve, "a refusal is an *aegis.Refusal")
				other := jwks.ErrSignature
				if tt.want == jwks.ErrSignature {
					other = jwks.ErrAlgorithm
				}
				assert.NotErrorIs(t, err, other)
			}
			assert.Equal(t, input, tt.input, "Verify must not modify the signing input")
			assert.Equal(t, sig, tt.sig, "Verify must not modify the signature")
		})
	}
}

// pssSign signs input with RSASSA-PSS (MGF1 with the same hash) and the
// given salt length.
func pssSign(t *testing.T, k *jwkstest.Key, h crypto.Hash, input []byte, saltLength int) []byte {
	t.Helper()
	d := h.New()
	d.Write(input)
	sig, err := rsa.SignPSS(rand.Reader, k.Private.(*rsa.PrivateKey), h, d.Sum(nil), &rsa.PSSOptions{SaltLength: saltLength})
	require.NoError(t, err)
	return sig
}

// highS returns the other valid ECDSA signature of the same message,
// (r, n-s): ECDSA signatures are malleable and JWS does not forbid it.
func highS(raw []byte, pub *ecdsa.PublicKey) []byte {
	half := len(raw) / 2
	n := pub.Curve.Params().N
	s := new(big.Int).Sub(n, new(big.Int).SetBytes(raw[half:]))
	out := append([]byte(nil), raw[:half]...)
	return append(out, s.FillBytes(make([]byte, half))...)
}

// The Validator verifies through the same SignatureVerifier: a token whose
// signature SignatureVerifier refuses is refused by Validate with the same
// reason.
func TestValidatorAndSignatureVerifierAgree(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Algorithm: "ES256", Now: fixedClock})
	k := iss.CurrentKey()
	key := jwks.Key{ID: k.ID, Algorithm: "ES256", Public: k.Public()}
	set, err := jwks.NewSet(key)
	require.NoError(t, err)
	v, err := jwks.NewValidator(jwks.ValidatorConfig{Issuer: iss.URL, Audience: iss.Audience, Keys: set, Now: fixedClock})
	require.NoError(t, err)
	sv, err := jwks.NewSignatureVerifier("ES256")
	require.NoError(t, err)

	good := iss.M2M("c")
	last := strings.LastIndexByte(good, '.')
	input, sig := splitToken(t, good)
	bad := good[:last+1] + base64.RawURLEncoding.EncodeToString(flipLastBit(sig))

	require.NoError(t, sv.Verify(key, input, sig))
	_, err = v.Validate(t.Context(), good)
	require.NoError(t, err)

	_, badSig := splitToken(t, bad)
	require.ErrorIs(t, sv.Verify(key, input, badSig), jwks.ErrSignature)
	_, err = v.Validate(t.Context(), bad)
	require.ErrorIs(t, err, jwks.ErrSignature)
}

// RFC 7518 §3.5: the PSS salt is as long as the hash. jwx alone accepts any
// salt length; Aegis does not.
func TestValidatorRefusesPSSSaltOfOtherLength(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Algorithm: "PS256", Now: fixedClock})
	k := iss.CurrentKey()
	set, err := jwks.NewSet(jwks.Key{ID: k.ID, Algorithm: "PS256", Public: k.Public()})
	require.NoError(t, err)
	v, err := jwks.NewValidator(jwks.ValidatorConfig{Issuer: iss.URL, Audience: iss.Audience, Keys: set, Now: fixedClock})
	require.NoError(t, err)

	good := iss.M2M("c")
	_, err = v.Validate(t.Context(), good)
	require.NoError(t, err, "jwx signs PS256 with a 32-byte salt")

	input, _ := splitToken(t, good)
	for _, salt := range []int{0, 20, 31, 33, 64, rsa.PSSSaltLengthAuto} {
		token := string(input) + "." + base64.RawURLEncoding.EncodeToString(pssSign(t, k, crypto.SHA256, input, salt))
		_, err = v.Validate(t.Context(), token)
		require.ErrorIs(t, err, jwks.ErrSignature, "salt length %d", salt)
	}
}

// Checking a detached signature with the primitive under Validator.
func ExampleSignatureVerifier() {
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)) // a fixed key, for the example only
	key := jwks.Key{ID: "k1", Algorithm: jwks.EdDSA, Public: priv.Public()}
	input := []byte("eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhIn0")
	sig := ed25519.Sign(priv, input)

	v, err := jwks.NewSignatureVerifier(jwks.EdDSA)
	if err != nil {
		panic(err)
	}
	fmt.Println(v.Verify(key, input, sig))
	sig[0] ^= 1
	fmt.Println(errors.Is(v.Verify(key, input, sig), jwks.ErrSignature))

	_, err = jwks.NewSignatureVerifier("HS256")
	fmt.Println(errors.Is(err, jwks.ErrAlgorithm))
	// Output:
	// <nil>
	// true
	// true
}

// TestSignatureVerifierMalformedKeys: a hand-built Key that NewSet would
// refuse gives an error, never a panic.
func TestSignatureVerifierMalformedKeys(t *testing.T) {
	input, sig := []byte("a.b"), make([]byte, 64)
	tests := []struct {
		alg string
		key jwks.Key
	}{
		{"EdDSA", jwks.Key{Public: ed25519.PublicKey{1, 2, 3}}},
		{"EdDSA", jwks.Key{Public: ed25519.PublicKey(nil)}},
		{"RS256", jwks.Key{Public: &rsa.PublicKey{}}},
		{"RS256", jwks.Key{Public: (*rsa.PublicKey)(nil)}},
		{"PS256", jwks.Key{Public: &rsa.PublicKey{N: big.NewInt(0), E: 65537}}},
		{"ES256", jwks.Key{Public: &ecdsa.PublicKey{}}},
		{"ES256", jwks.Key{Public: &ecdsa.PublicKey{Curve: elliptic.P256()}}},
		{"ES256", jwks.Key{Public: (*ecdsa.PublicKey)(nil)}},
		{"ES256", jwks.Key{}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %T", tt.alg, tt.key.Public), func(t *testing.T) {
			v, err := jwks.NewSignatureVerifier(tt.alg)
			require.NoError(t, err)
			assert.NotPanics(t, func() {
				err = v.Verify(tt.key, input, sig)
			})
			assert.Error(t, err)
		})
	}
}
