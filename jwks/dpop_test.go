package jwks_test

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
)

// proofKeys holds one key per algorithm: RSA keys are slow to make.
var proofKeys = map[string]*jwkstest.Key{}

func proofKey(alg string) *jwkstest.Key {
	if k, ok := proofKeys[alg]; ok {
		return k
	}
	k := jwkstest.NewKey(alg)
	proofKeys[alg] = k
	return k
}

var proofTime = time.Unix(1_800_000_000, 0)

func baseProof() jwkstest.DPoPProof {
	return jwkstest.DPoPProof{Method: "GET", URL: "https://api.test/data", AccessToken: "token", IssuedAt: proofTime}
}

func TestParseProofAcceptsEveryAllowedAlgorithm(t *testing.T) {
	for _, alg := range jwks.DefaultAlgorithms() {
		t.Run(alg, func(t *testing.T) {
			k := proofKey(alg)
			p, err := jwks.ParseProof(k.DPoPProof(baseProof()), nil, 0)
			require.NoError(t, err)
			assert.Equal(t, alg, p.Algorithm)
			assert.Equal(t, k.Thumbprint(), p.Thumbprint, "RFC 7638 thumbprint agrees with jwx's")
			assert.Equal(t, "GET", p.Method)
			assert.Equal(t, "https://api.test/data", p.URI)
			assert.Equal(t, jwkstest.AccessTokenHash("token"), p.TokenHash)
			assert.True(t, p.IssuedAt.Equal(proofTime))
			assert.NotEmpty(t, p.ID)
			assert.Empty(t, p.Key.ID)
		})
	}
}

// publicJWK returns k's public JWK as a map, to tamper with.
func publicJWK(t *testing.T, k *jwkstest.Key) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(k.JWK(), &m))
	delete(m, "kid")
	return m
}

func TestParseProofRefuses(t *testing.T) {
	es := proofKey(jwks.ES256)
	other := jwkstest.NewKey(jwks.ES256)
	withPrivate := publicJWK(t, es)
	withPrivate["d"] = "AAAA"
	upperCase := publicJWK(t, es)
	upperCase["KTY"] = "EC"
	oct := map[string]any{"kty": "oct", "k": "c2VjcmV0"}
	wrongAlg := publicJWK(t, es)
	wrongAlg["alg"] = "ES384"

	valid := es.DPoPProof(baseProof())
	parts := strings.Split(valid, ".")
	header, _ := base64.RawURLEncoding.DecodeString(parts[0])

	with := func(mod func(p *jwkstest.DPoPProof)) string {
		p := baseProof()
		mod(&p)
		return es.DPoPProof(p)
	}
	tests := []struct {
		name       string
		proof      string
		algorithms []string
		maxLength  int
	}{
		{name: "empty", proof: ""},
		{name: "two parts", proof: parts[0] + "." + parts[1]},
		{name: "four parts", proof: valid + ".x"},
		{name: "empty payload", proof: parts[0] + ".." + parts[2]},
		{name: "empty signature", proof: parts[0] + "." + parts[1] + "."},
		{name: "padded header", proof: parts[0] + "=." + parts[1] + "." + parts[2]},
		{name: "standard base64 header", proof: strings.NewReplacer("-", "+", "_", "/").Replace(base64.RawURLEncoding.EncodeToString(header)) + "+/." + parts[1] + "." + parts[2]},
		{name: "newline in header", proof: parts[0][:4] + "\n" + parts[0][4:] + "." + parts[1] + "." + parts[2]},
		{name: "too long", proof: valid, maxLength: len(valid) - 1},
		{name: "typ missing", proof: with(func(p *jwkstest.DPoPProof) { p.Header = map[string]any{"typ": nil} })},
		{name: "typ JWT", proof: with(func(p *jwkstest.DPoPProof) { p.Header = map[string]any{"typ": "JWT"} })},
		{name: "typ in other case", proof: with(func(p *jwkstest.DPoPProof) { p.Header = map[string]any{"typ": "DPoP+JWT"} })},
		{name: "typ with application/", proof: with(func(p *jwkstest.DPoPProof) { p.Header = map[string]any{"typ": "application/dpop+jwt"} })},
		{name: "typ not a string", proof: with(func(p *jwkstest.DPoPProof) { p.Header = map[string]any{"typ": 1} })},
		{name: "alg not allowed here", proof: valid, algorithms: []string{jwks.RS256}},
		{name: "alg none", proof: with(func(p *jwkstest.DPoPProof) { p.Header = map[string]any{"alg": "none"} })},
		{name: "alg HS256", proof: with(func(p *jwkstest.DPoPProof) { p.Header = map[string]any{"alg": "HS256"} })},
		{name: "alg of another key type", proof: with(func(p *jwkstest.DPoPProof) { p.Header = map[string]any{"alg": "RS256"} })},
		{name: "jwk missing", proof: with(func(p *jwkstest.DPoPProof) { p.Header = map[string]any{"jwk": nil} })},
		{name: "jwk not an object", proof: with(func(p *jwkstest.DPoPProof) { p.Header = map[string]any{"jwk": "key"} })},
		{name: "jwk with private member", proof: with(func(p *jwkstest.DPoPProof) { p.Header = map[string]any{"jwk": withPrivate} })},
		{name: "jwk member in other case", proof: with(func(p *jwkstest.DPoPProof) { p.Header = map[string]any{"jwk": upperCase} })},
		{name: "jwk symmetric", proof: with(func(p *jwkstest.DPoPProof) { p.Header = map[string]any{"jwk": oct} })},
		{name: "jwk alg differs from header alg", proof: with(func(p *jwkstest.DPoPProof) { p.Header = map[string]any{"jwk": wrongAlg} })},
		{name: "jwk of another key", proof: with(func(p *jwkstest.DPoPProof) { p.Header = map[string]any{"jwk": publicJWK(t, other)} })},
		{name: "kid header", proof: with(func(p *jwkstest.DPoPProof) { p.Header = map[string]any{"kid": "k1"} })},
		{name: "jku header", proof: with(func(p *jwkstest.DPoPProof) { p.Header = map[string]any{"jku": "https://attacker.test/jwks"} })},
		{name: "x5c header", proof: with(func(p *jwkstest.DPoPProof) { p.Header = map[string]any{"x5c": []string{"MIIB"}} })},
		{name: "crit header", proof: with(func(p *jwkstest.DPoPProof) { p.Header = map[string]any{"crit": []string{"exp"}} })},
		{name: "jti missing", proof: with(func(p *jwkstest.DPoPProof) { p.Claims = map[string]any{"jti": nil} })},
		{name: "jti empty", proof: with(func(p *jwkstest.DPoPProof) { p.Claims = map[string]any{"jti": ""} })},
		{name: "jti not a string", proof: with(func(p *jwkstest.DPoPProof) { p.Claims = map[string]any{"jti": 7} })},
		{name: "htm missing", proof: with(func(p *jwkstest.DPoPProof) { p.Claims = map[string]any{"htm": nil} })},
		{name: "htu missing", proof: with(func(p *jwkstest.DPoPProof) { p.Claims = map[string]any{"htu": nil} })},
		{name: "htu not a string", proof: with(func(p *jwkstest.DPoPProof) { p.Claims = map[string]any{"htu": []string{"https://api.test/data"}} })},
		{name: "iat missing", proof: with(func(p *jwkstest.DPoPProof) { p.Claims = map[string]any{"iat": nil} })},
		{name: "iat a string", proof: with(func(p *jwkstest.DPoPProof) { p.Claims = map[string]any{"iat": "1800000000"} })},
		{name: "ath not a string", proof: with(func(p *jwkstest.DPoPProof) { p.Claims = map[string]any{"ath": 1} })},
		{name: "nonce not a string", proof: with(func(p *jwkstest.DPoPProof) { p.Claims = map[string]any{"nonce": true} })},
		{name: "signature of another message", proof: parts[0] + "." + strings.Split(with(func(p *jwkstest.DPoPProof) { p.Method = "POST" }), ".")[1] + "." + parts[2]},
		{name: "duplicate header member", proof: jwkstest.SignRaw(es, []byte(`{"typ":"dpop+jwt","typ":"dpop+jwt","alg":"ES256","jwk":`+string(mustJSON(t, publicJWK(t, es)))+`}`), []byte(`{"jti":"a","htm":"GET","htu":"https://api.test/","iat":1800000000}`))},
		{name: "duplicate claim", proof: jwkstest.SignRaw(es, []byte(`{"typ":"dpop+jwt","alg":"ES256","jwk":`+string(mustJSON(t, publicJWK(t, es)))+`}`), []byte(`{"jti":"a","htm":"GET","htm":"POST","htu":"https://api.test/","iat":1800000000}`))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := jwks.ParseProof(tt.proof, tt.algorithms, tt.maxLength)
			require.Error(t, err)
			assert.Nil(t, p)
			assert.ErrorIs(t, err, jwks.ErrProof)
			var r *aegis.Refusal
			require.ErrorAs(t, err, &r)
			assert.Equal(t, aegis.ReasonInvalidDPoPProof, r.Reason)
			assert.Equal(t, aegis.ClassInvalid, r.Class)
			if tt.proof != "" {
				assert.NotContains(t, err.Error(), tt.proof, "the proof never appears in the error")
			}
		})
	}
}

// TestThumbprintRFC7638 checks the example of RFC 7638 §3.1.
func TestThumbprintRFC7638(t *testing.T) {
	n, err := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	require.NoError(t, err)
	got, err := jwks.Thumbprint(&rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537})
	require.NoError(t, err)
	assert.Equal(t, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", got)
}

func TestThumbprintAgreesWithJWX(t *testing.T) {
	for _, alg := range []string{jwks.RS256, jwks.ES256, jwks.ES384, jwks.ES512, jwks.EdDSA} {
		t.Run(alg, func(t *testing.T) {
			for range 8 { // P-521 coordinates often have leading zero bytes
				k := jwkstest.NewKey(alg)
				got, err := jwks.Thumbprint(k.Public())
				require.NoError(t, err)
				assert.Equal(t, k.Thumbprint(), got)
				if alg == jwks.RS256 {
					break
				}
			}
		})
	}
}

func TestThumbprintRefusesIncompleteKeys(t *testing.T) {
	for name, pub := range map[string]any{"nil": nil, "empty RSA": &rsa.PublicKey{}, "string": "key"} {
		t.Run(name, func(t *testing.T) {
			tp, err := jwks.Thumbprint(pub)
			assert.Error(t, err)
			assert.Empty(t, tp)
		})
	}
}

func FuzzParseProof(f *testing.F) {
	k := jwkstest.NewKey(jwks.ES256)
	f.Add(k.DPoPProof(baseProof()))
	f.Add("a.b.c")
	f.Add("")
	f.Add("eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.AA")
	pp := jwks.NewProofParser(jwks.ProofParserConfig{})
	f.Fuzz(func(t *testing.T, proof string) {
		p, err := jwks.ParseProof(proof, nil, 0)
		// A ProofParser, remembering keys across inputs, agrees.
		pp1, err1 := pp.Parse(proof)
		pp2, err2 := pp.Parse(proof)
		assert.Equal(t, err == nil, err1 == nil)
		assert.Equal(t, err == nil, err2 == nil)
		if err != nil {
			assert.Nil(t, p)
			assert.ErrorIs(t, err, jwks.ErrProof)
			return
		}
		assert.Equal(t, p, pp1)
		assert.Equal(t, p, pp2)
		assert.NotEmpty(t, p.Thumbprint)
		assert.NotEmpty(t, p.ID)
	})
}

// TestProofParserRemembersKeysNotVerdicts: a ProofParser reads a key once,
// but checks every proof as ParseProof does: a proof that carries a
// remembered key's jwk verbatim and is signed by another key, or names an
// algorithm that does not fit the key, is refused; a key whose proof did
// not verify is not remembered.
func TestProofParserRemembersKeysNotVerdicts(t *testing.T) {
	for _, maxKeys := range []int{0, 1, -1} {
		pp := jwks.NewProofParser(jwks.ProofParserConfig{MaxKeys: maxKeys})
		mine, theirs := proofKey(jwks.ES256), jwkstest.NewKey(jwks.ES256)
		withMyJWK := func(signer *jwkstest.Key, alg string) string {
			p := baseProof()
			p.Header = map[string]any{"jwk": publicJWK(t, mine), "alg": alg}
			return signer.DPoPProof(p)
		}
		// Forged first (not remembered), then genuine (remembered), then
		// forged again (refused all the same).
		tests := []struct {
			name  string
			proof string
			ok    bool
		}{
			{"another key's signature over my jwk", withMyJWK(theirs, jwks.ES256), false},
			{"my proof", withMyJWK(mine, jwks.ES256), true},
			{"my proof again", withMyJWK(mine, jwks.ES256), true},
			{"another key's signature over my remembered jwk", withMyJWK(theirs, jwks.ES256), false},
			{"my remembered jwk under an alg it does not fit", withMyJWK(mine, jwks.ES384), false},
			{"another key of its own", theirs.DPoPProof(baseProof()), true},
			{"my proof after another key", withMyJWK(mine, jwks.ES256), true},
		}
		for _, tt := range tests {
			t.Run(fmt.Sprintf("MaxKeys %d/%s", maxKeys, tt.name), func(t *testing.T) {
				want, wantErr := jwks.ParseProof(tt.proof, nil, 0)
				got, err := pp.Parse(tt.proof)
				if !tt.ok {
					assert.ErrorIs(t, err, jwks.ErrProof)
					assert.ErrorIs(t, wantErr, jwks.ErrProof)
					assert.Nil(t, got)
					return
				}
				require.NoError(t, err)
				require.NoError(t, wantErr)
				assert.Equal(t, want, got)
			})
		}
	}
}
