package grpcguard

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/url"
	"strings"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/core"
)

// nonceKey is the metadata key of the server's DPoP nonce (RFC 9449 §8's
// DPoP-Nonce header).
const nonceKey = "dpop-nonce"

// authorityKey is the incoming metadata key of the call's :authority
// pseudo-header, which gRPC's server transport puts there.
const authorityKey = ":authority"

// parseBaseURI checks Config.BaseURI: "" (derive from each call), or an
// absolute http or https URL with a host and nothing after it but "/".
func parseBaseURI(s string) (*url.URL, error) {
	if s == "" {
		return nil, nil
	}
	bad := func(why string) error {
		return fmt.Errorf("Config.BaseURI %q %s: give the scheme and host clients address, such as \"https://api.example.com\"", s, why)
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, bad("is not a URL")
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme != "https" && scheme != "http":
		return nil, bad("is not an http or https URL")
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return nil, bad("has no host")
	case u.User != nil:
		return nil, bad("has user information")
	case u.Path != "" && u.Path != "/":
		return nil, bad("has a path (the method's full name is the path of htu)")
	case u.RawQuery != "" || u.ForceQuery:
		return nil, bad("has a query")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return nil, bad("has a fragment")
	}
	return &url.URL{Scheme: scheme, Host: u.Host}, nil
}

// htuOf is the absolute URL of method under base.
func htuOf(base *url.URL, method string) *url.URL {
	return &url.URL{Scheme: base.Scheme, Host: base.Host, Path: method}
}

// htu is the URL a DPoP proof of a call to method must name: the method's
// under Config.BaseURI or, without it, under the scheme of the transport
// (https over TLS) and the call's :authority. An unusable :authority
// leaves the host empty, and the proof is refused.
func (g *Guard) htu(ctx context.Context, method string, r *rule, overTLS bool) *url.URL {
	if r.htu != nil {
		return r.htu
	}
	if g.base != nil {
		return htuOf(g.base, method)
	}
	u := &url.URL{Scheme: "http", Path: method}
	if overTLS {
		u.Scheme = "https"
	}
	if a := metadata.ValueFromIncomingContext(ctx, authorityKey); len(a) == 1 && validAuthority(a[0]) {
		u.Host = a[0]
	}
	return u
}

// validAuthority reports whether a is a host[:port] and nothing else: no
// user information, path, query, fragment, space or control character.
func validAuthority(a string) bool {
	if a == "" {
		return false
	}
	for i := 0; i < len(a); i++ {
		switch c := a[i]; {
		case c <= ' ' || c >= 0x7f, c == '/', c == '?', c == '#', c == '@', c == '\\':
			return false
		}
	}
	return true
}

// peerCertificate returns the client's TLS certificate, if it presented
// one, and whether the call came over TLS at all.
func peerCertificate(ctx context.Context) (*x509.Certificate, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, false
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return nil, false
	}
	if len(info.State.PeerCertificates) == 0 {
		return nil, true
	}
	return info.State.PeerCertificates[0], true
}

// nonce is the server's current DPoP nonce, for calls that use DPoP or
// were refused for want of one; "" when none is to be sent.
func (g *Guard) nonce(cred core.Credential, r *aegis.Refusal) string {
	if cred.Scheme != core.SchemeDPoP && (r == nil || r.Reason != aegis.ReasonUseDPoPNonce) {
		return ""
	}
	return g.checker.DPoPVerifier().Nonce()
}

// challengesOf returns the www-authenticate values of r, as
// middleware.Guard sends them (middleware.Challenges.Of); nil for
// refusals that carry no challenge (rate limited, unavailable).
func (g *Guard) challengesOf(cred core.Credential, r *aegis.Refusal) []string {
	return g.challenges.Of(middleware.ErrorFor(r), g.checker.DPoPPolicy(cred.DPoP), cred.Scheme)
}
