package core

import (
	"crypto/x509"
	"net/url"

	"github.com/olympus/aegis/middleware/dpop"
)

// Credential is what a transport presents for a decision: the access token
// and the evidence a sender-constrained token may be bound to.
type Credential struct {
	// Token is the access token, as presented (already taken out of its
	// header or metadata).
	Token string
	// Method is the request's method (an HTTP method; POST for gRPC). It
	// also names the request in decision logs.
	Method string
	// URL is the request's target. Its path names the request in decision
	// logs.
	URL *url.URL
	// Proof is a proof-of-possession header presented with the token
	// (a DPoP proof, RFC 9449), if any.
	Proof string
	// PeerCertificate is the client's TLS certificate, if any (RFC 8705).
	PeerCertificate *x509.Certificate
	// Scheme is the scheme Token came under: SchemeBearer (or empty) or
	// SchemeDPoP.
	Scheme Scheme
	// DPoP is the route's DPoP policy; dpop.PolicyDefault means the
	// Checker's (Config.DPoP.Policy).
	DPoP dpop.Policy
}
