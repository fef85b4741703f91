package jwkstest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// DPoPProof describes a DPoP proof (RFC 9449 §4.2) for Key.DPoPProof.
// The zero value of a field is a sensible default; Header and Claims let a
// test build proofs no well-behaved client would.
type DPoPProof struct {
	// Method is htm, such as "GET". Required.
	Method string
	// URL is htu, such as "https://api.test/data". Required.
	URL string
	// AccessToken, when set, is hashed into ath.
	AccessToken string
	// Nonce, when set, is the nonce claim (the server's DPoP-Nonce).
	Nonce string
	// ID is jti; default a new random value.
	ID string
	// IssuedAt is iat; default time.Now().
	IssuedAt time.Time
	// Header members override or extend the proof's header
	// {"typ":"dpop+jwt","alg":…,"jwk":…}; a nil value removes a member.
	Header map[string]any
	// Claims override or extend the claims; a nil value removes a member.
	Claims map[string]any
}

// DPoPProof returns a DPoP proof signed with k, whose header carries k's
// public key: the value of the DPoP request header for one request. Each
// call makes a new jti unless p.ID is set.
//
//	req.Header.Set("Authorization", "DPoP "+token)
//	req.Header.Set("DPoP", key.DPoPProof(jwkstest.DPoPProof{Method: "GET", URL: "https://api.test/data", AccessToken: token}))
func (k *Key) DPoPProof(p DPoPProof) string {
	pub, err := jwk.FromRaw(k.Public())
	if err != nil {
		panic(fmt.Sprintf("jwkstest: %v", err))
	}
	h := map[string]any{"typ": "dpop+jwt", "alg": k.Algorithm, "jwk": pub}
	override(h, p.Header)
	iat := p.IssuedAt
	if iat.IsZero() {
		iat = time.Now()
	}
	id := p.ID
	if id == "" {
		id = newID("proof")
	}
	c := map[string]any{"jti": id, "htm": p.Method, "htu": p.URL, "iat": iat.Unix()}
	if p.AccessToken != "" {
		c["ath"] = AccessTokenHash(p.AccessToken)
	}
	if p.Nonce != "" {
		c["nonce"] = p.Nonce
	}
	override(c, p.Claims)
	hj, err := json.Marshal(h)
	if err != nil {
		panic(fmt.Sprintf("jwkstest: header: %v", err))
	}
	cj, err := json.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("jwkstest: claims: %v", err))
	}
	return SignRaw(k, hj, cj)
}

func override(m, with map[string]any) {
	for name, v := range with {
		if v == nil {
			delete(m, name)
			continue
		}
		m[name] = v
	}
}

// Thumbprint returns the RFC 7638 SHA-256 thumbprint of k's public key,
// base64url: the cnf.jkt of tokens bound to it. It is computed by jwx,
// independently of Aegis's own jwks.Thumbprint.
func (k *Key) Thumbprint() string {
	pub, err := jwk.FromRaw(k.Public())
	if err != nil {
		panic(fmt.Sprintf("jwkstest: %v", err))
	}
	sum, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		panic(fmt.Sprintf("jwkstest: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(sum)
}

// AccessTokenHash is a proof's ath for token: base64url(SHA-256(token)).
func AccessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// CertificateThumbprint is the x5t#S256 of cert (RFC 8705 §3.1):
// base64url(SHA-256(DER)).
func CertificateThumbprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// NewClientCertificate makes a self-signed TLS client certificate (an
// ECDSA P-256 key) whose subject is cn, valid from an hour ago for a day,
// with its Leaf set: what a client presents over TLS, and what MTLSBound
// binds a token to.
func NewClientCertificate(cn string) tls.Certificate {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(fmt.Sprintf("jwkstest: generating a key: %v", err))
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(idCounter.Add(1)), Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		panic(fmt.Sprintf("jwkstest: making a certificate: %v", err))
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		panic(fmt.Sprintf("jwkstest: %v", err))
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k, Leaf: leaf}
}

// EscapedPEM is cert as a TLS-terminating proxy forwards it in a header:
// PEM, every byte but unreserved characters percent-encoded, as nginx's
// $ssl_client_escaped_cert and Envoy's source.certificate carry it.
func EscapedPEM(cert *x509.Certificate) string {
	p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	return strings.ReplaceAll(url.QueryEscape(string(p)), "+", "%20")
}

// DPoPBound mints an M2M token bound to key (cnf.jkt, RFC 9449 §6.1).
func (i *Issuer) DPoPBound(clientID string, key *Key, scopes ...string) string {
	c := i.Claims(clientID, clientID, scopes...)
	c["cnf"] = map[string]any{"jkt": key.Thumbprint()}
	return i.Sign(c)
}

// OpaqueDPoPBound mints an opaque M2M token bound to key: introspection
// answers with its cnf.jkt (RFC 9449 §6.2).
func (i *Issuer) OpaqueDPoPBound(clientID string, key *Key, scopes ...string) string {
	c := i.Claims(clientID, clientID, scopes...)
	c["cnf"] = map[string]any{"jkt": key.Thumbprint()}
	return i.Opaque(c)
}

// MTLSBound mints an M2M token bound to the client certificate cert
// (cnf x5t#S256, RFC 8705 §3.1).
func (i *Issuer) MTLSBound(clientID string, cert *x509.Certificate, scopes ...string) string {
	c := i.Claims(clientID, clientID, scopes...)
	c["cnf"] = map[string]any{"x5t#S256": CertificateThumbprint(cert)}
	return i.Sign(c)
}
