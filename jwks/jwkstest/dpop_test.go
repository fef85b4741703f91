package jwkstest_test

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/url"
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
	cert := jwkstest.NewClientCertificate("c").Leaf
	sum := sha256.Sum256(cert.Raw)

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

// TestNewClientCertificate: a self-signed client certificate whose key is
// the certificate's, and its escaped PEM as nginx forwards it.
func TestNewClientCertificate(t *testing.T) {
	c := jwkstest.NewClientCertificate("worker")
	require.NotNil(t, c.Leaf)
	assert.Equal(t, "worker", c.Leaf.Subject.CommonName)
	assert.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, c.Leaf.ExtKeyUsage)
	assert.Equal(t, c.Certificate[0], c.Leaf.Raw)
	assert.NoError(t, c.Leaf.CheckSignature(c.Leaf.SignatureAlgorithm, c.Leaf.RawTBSCertificate, c.Leaf.Signature), "self-signed")
	assert.True(t, c.PrivateKey.(*ecdsa.PrivateKey).PublicKey.Equal(c.Leaf.PublicKey))
	assert.NotEqual(t, c.Leaf.Raw, jwkstest.NewClientCertificate("worker").Leaf.Raw)

	escaped := jwkstest.EscapedPEM(c.Leaf)
	assert.NotContains(t, escaped, "\n")
	assert.NotContains(t, escaped, "+")
	assert.NotContains(t, escaped, " ")
	text, err := url.PathUnescape(escaped)
	require.NoError(t, err)
	block, rest := pem.Decode([]byte(text))
	require.NotNil(t, block)
	assert.Equal(t, "CERTIFICATE", block.Type)
	assert.Equal(t, c.Leaf.Raw, block.Bytes)
	assert.Empty(t, rest)
}
