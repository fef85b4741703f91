package jwkstest_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
)

func decodePart(t *testing.T, token string, i int) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[i])
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	return m
}

func TestDPoPProofHelper(t *testing.T) {
	k := jwkstest.NewKey(jwks.ES256)
	at := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name  string
		proof jwkstest.DPoPProof
		check func(t *testing.T, header, claims map[string]any)
	}{
		{"defaults", jwkstest.DPoPProof{Method: "GET", URL: "https://api.test/x"}, func(t *testing.T, h, c map[string]any) {
			assert.Equal(t, "dpop+jwt", h["typ"])
			assert.Equal(t, "ES256", h["alg"])
			assert.NotContains(t, h["jwk"], "d")
			assert.NotEmpty(t, c["jti"])
			assert.NotContains(t, c, "ath")
			assert.NotContains(t, c, "nonce")
		}},
		{"token, nonce, id, time", jwkstest.DPoPProof{Method: "POST", URL: "https://api.test/x", AccessToken: "tok", Nonce: "n1", ID: "j1", IssuedAt: at},
			func(t *testing.T, h, c map[string]any) {
				sum := sha256.Sum256([]byte("tok"))
				assert.Equal(t, base64.RawURLEncoding.EncodeToString(sum[:]), c["ath"])
				assert.Equal(t, "n1", c["nonce"])
				assert.Equal(t, "j1", c["jti"])
				assert.InDelta(t, float64(at.Unix()), c["iat"], 0)
			}},
		{"overrides", jwkstest.DPoPProof{Method: "GET", URL: "https://api.test/x", Header: map[string]any{"typ": nil, "kid": "k"}, Claims: map[string]any{"htm": nil, "extra": 1}},
			func(t *testing.T, h, c map[string]any) {
				assert.NotContains(t, h, "typ")
				assert.Equal(t, "k", h["kid"])
				assert.NotContains(t, c, "htm")
				assert.InDelta(t, 1, c["extra"], 0)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := k.DPoPProof(tt.proof)
			tt.check(t, decodePart(t, p, 0), decodePart(t, p, 1))
		})
	}
	t.Run("verifies with Aegis", func(t *testing.T) {
		p, err := jwks.ParseProof(k.DPoPProof(jwkstest.DPoPProof{Method: "GET", URL: "https://api.test/x"}), nil, 0)
		require.NoError(t, err)
		assert.Equal(t, k.Thumbprint(), p.Thumbprint)
	})
	t.Run("each proof has its own jti", func(t *testing.T) {
		a := decodePart(t, k.DPoPProof(jwkstest.DPoPProof{Method: "GET", URL: "https://api.test/x"}), 1)
		b := decodePart(t, k.DPoPProof(jwkstest.DPoPProof{Method: "GET", URL: "https://api.test/x"}), 1)
		assert.NotEqual(t, a["jti"], b["jti"])
	})
}

func TestBoundTokens(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	k := jwkstest.NewKey(jwks.EdDSA)
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "c"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	sum := sha256.Sum256(der)

	tests := []struct {
		name  string
		token string
		cnf   map[string]any
	}{
		{"DPoPBound", iss.DPoPBound("svc", k, "s"), map[string]any{"jkt": k.Thumbprint()}},
		{"MTLSBound", iss.MTLSBound("svc", cert, "s"), map[string]any{"x5t#S256": base64.RawURLEncoding.EncodeToString(sum[:])}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := decodePart(t, tt.token, 1)
			assert.Equal(t, tt.cnf, c["cnf"])
			assert.Equal(t, "svc", c["client_id"])
		})
	}
	assert.Equal(t, base64.RawURLEncoding.EncodeToString(sum[:]), jwkstest.CertificateThumbprint(cert))
	assert.True(t, strings.HasPrefix(iss.OpaqueDPoPBound("svc", k), "ory_at_"))
}
