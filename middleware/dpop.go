package middleware

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/internal/clientcert"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/middleware/dpop"
	"github.com/olympus/aegis/scopes"
)

// DPoPConfig configures DPoP-bound tokens (RFC 9449); see core.DPoPConfig.
// The zero value is dpop.Allow: a token bound to a key (cnf.jkt) needs
// "Authorization: DPoP <token>" and one DPoP header with a proof of that
// key; tokens bound to nothing pass as Bearer tokens.
type DPoPConfig = core.DPoPConfig

// RFC 9449 §7.1 and §8 error codes, in the DPoP challenge.
const (
	CodeInvalidDPoPProof = "invalid_dpop_proof"
	CodeUseDPoPNonce     = "use_dpop_nonce"
)

// ProxyConfig says what a trusted reverse proxy in front of the Guard
// tells it about the client's request: the URL the client addressed (a
// DPoP proof's htu) and the TLS client certificate it presented (RFC 8705
// certificate-bound tokens), when the proxy terminates TLS. By default the
// request itself says it: https when the Guard's server terminates TLS,
// else http, the Host header, and the TLS peer certificate. Headers are
// read only from TrustedProxies; a header a client sent itself is never
// believed.
type ProxyConfig struct {
	// TrustedProxies are the peers (the address of r.RemoteAddr) whose
	// headers are believed.
	TrustedProxies []netip.Prefix
	// ProtoHeader names the header that carries the scheme the client
	// used, such as "X-Forwarded-Proto"; HostHeader the host (and port) it
	// addressed, such as "X-Forwarded-Host". Of a list, the last value is
	// read: the one the nearest proxy, the trusted one, set. Configure that
	// proxy to overwrite the header rather than append to it.
	ProtoHeader, HostHeader string
	// ClientCertHeader names the header that carries the client's TLS
	// certificate, such as "X-SSL-Client-Cert" (nginx:
	// proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert) or
	// "X-Forwarded-Client-Cert" (Envoy). From a trusted proxy, this header
	// alone says which certificate the client presented (none, without
	// it): the proxy's own TLS certificate is never taken for the
	// client's. A value that cannot be read counts as no certificate.
	ClientCertHeader string
	// ClientCertFormat is how ClientCertHeader carries the certificate;
	// default ClientCertEscapedPEM.
	ClientCertFormat ClientCertFormat
}

// ClientCertFormat is how a proxy's header carries a client certificate.
type ClientCertFormat string

// The formats of ProxyConfig.ClientCertHeader.
const (
	// ClientCertEscapedPEM is a URL-escaped PEM certificate, as nginx's
	// $ssl_client_escaped_cert.
	ClientCertEscapedPEM ClientCertFormat = ClientCertFormat(clientcert.EscapedPEM)
	// ClientCertBase64DER is the DER certificate in standard base64, as
	// Caddy's {http.request.tls.client.certificate_der_base64}.
	ClientCertBase64DER ClientCertFormat = ClientCertFormat(clientcert.Base64DER)
	// ClientCertXFCC is Envoy's x-forwarded-client-cert as Envoy sets it
	// with forward_client_cert_details SANITIZE_SET and
	// set_current_client_cert_details cert: true: exactly one element,
	// whose Cert has the element's Hash (anything else is no certificate:
	// Envoy writes the SANs of a client's certificate unescaped, so a
	// certificate could otherwise smuggle in another).
	ClientCertXFCC ClientCertFormat = ClientCertFormat(clientcert.XFCC)
)

func (c ProxyConfig) problems() []error {
	var errs []error
	headers := c.ProtoHeader != "" || c.HostHeader != "" || c.ClientCertHeader != ""
	if headers && len(c.TrustedProxies) == 0 {
		errs = append(errs, errors.New("Config.Proxy names headers but no TrustedProxies: they would never be read"))
	}
	if !headers && len(c.TrustedProxies) > 0 {
		errs = append(errs, errors.New("Config.Proxy.TrustedProxies is set without ProtoHeader, HostHeader or ClientCertHeader"))
	}
	for _, p := range c.TrustedProxies {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("Config.Proxy.TrustedProxies holds an invalid prefix %v", p))
		}
	}
	if _, err := clientcert.ParseFormat(string(c.ClientCertFormat)); err != nil {
		errs = append(errs, fmt.Errorf("Config.Proxy.ClientCertFormat: %w", err))
	}
	return errs
}

// WithDPoP returns a Guard for routes with their own DPoP policy: it shares
// g's Checker (its validator, caches, replay store, rate limits) and
// differs only in policy. It panics at route setup for a policy that is
// not dpop.Allow, dpop.Require or dpop.Off.
//
//	r.With(guard.WithDPoP(dpop.Require).Require(scopes.All("payments:write"))).Post("/payments", pay)
func (g *Guard) WithDPoP(p dpop.Policy) *Guard {
	if _, err := dpop.ParsePolicy(string(p)); err != nil {
		panic("aegis: WithDPoP: " + err.Error())
	}
	c := *g
	c.dpopPolicy = p
	return &c
}

// dpopHeader is the header that carries the proof, by its canonical key
// (textproto spells "DPoP" so), read without canonicalizing per request.
const dpopHeader = "Dpop"

var errTwoProofs = func() *aegis.Refusal {
	r := aegis.Refuse(aegis.ReasonInvalidDPoPProof, dpop.ErrMissing)
	r.Description = "The request has more than one DPoP header"
	return r
}()

// credential is the binding evidence of r, without its token: its scheme,
// its DPoP proof, its TLS client certificate and, for DPoP, its external
// URL. More than one DPoP header is a refusal.
func (g *Guard) credential(r *http.Request) (core.Credential, *aegis.Refusal) {
	cred := core.Credential{Method: r.Method, URL: r.URL, DPoP: g.dpopPolicy, PeerCertificate: g.clientCertificate(r)}
	if hasDPoPScheme(r) {
		cred.Scheme = core.SchemeDPoP
	}
	proofs := r.Header[dpopHeader]
	switch len(proofs) {
	case 0:
		return cred, nil
	case 1:
		cred.Proof = proofs[0]
	default:
		return cred, errTwoProofs
	}
	if cred.Scheme == core.SchemeDPoP {
		cred.URL = g.externalURL(r)
	}
	return cred, nil
}

// clientCertificate is the TLS certificate r's client presented: the one
// a trusted proxy names in its header, when one is configured, else the
// TLS peer's.
func (g *Guard) clientCertificate(r *http.Request) *x509.Certificate {
	if h := g.proxy.ClientCertHeader; h != "" && g.trustsPeer(r) {
		v := r.Header.Values(h)
		if len(v) != 1 {
			return nil
		}
		c, err := clientcert.Parse(clientcert.Format(g.proxy.ClientCertFormat), v[0])
		if err != nil {
			g.logger.DebugContext(r.Context(), "aegis: client certificate header unreadable", slog.String("header", h), slog.String("error", err.Error()))
			return nil
		}
		return c
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return r.TLS.PeerCertificates[0]
	}
	return nil
}

// externalURL is the absolute URL the client addressed (query dropped).
func (g *Guard) externalURL(r *http.Request) *url.URL {
	u := &url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath}
	if r.TLS != nil {
		u.Scheme = "https"
	}
	if !g.trustsPeer(r) {
		return u
	}
	if h := g.proxy.ProtoHeader; h != "" {
		if v := lastValue(r.Header.Values(h)); v != "" {
			u.Scheme = strings.ToLower(v)
		}
	}
	if h := g.proxy.HostHeader; h != "" {
		if v := lastValue(r.Header.Values(h)); v != "" {
			u.Host = v
		}
	}
	return u
}

func (g *Guard) trustsPeer(r *http.Request) bool {
	if len(g.proxy.TrustedProxies) == 0 {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, p := range g.proxy.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// lastValue is the last element of a header's comma-separated values.
func lastValue(values []string) string {
	if len(values) == 0 {
		return ""
	}
	v := values[len(values)-1]
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return strings.TrimSpace(v)
}

// reauthorize checks a Principal the Guard's Checker admitted earlier in
// the request against this route's DPoP policy and requirements.
func (g *Guard) reauthorize(r *http.Request, p *Principal, reqs []scopes.Requirement) *aegis.Refusal {
	cred := credential(r)
	cred.DPoP = g.dpopPolicy
	// Under dpop.Allow, what admitted p admits it here too.
	if g.checker.DPoPPolicy(g.dpopPolicy) != dpop.Allow {
		if ref := g.checker.AuthorizeBinding(r.Context(), cred, p); ref != nil {
			return ref
		}
	}
	return g.checker.Authorize(r.Context(), cred, p, reqs...)
}

// setNonce sends the server's current DPoP nonce to requests that use DPoP
// or were refused for want of one.
func (g *Guard) setNonce(w http.ResponseWriter, cred core.Credential, ref *aegis.Refusal) {
	if cred.Scheme != core.SchemeDPoP && (ref == nil || ref.Reason != aegis.ReasonUseDPoPNonce) {
		return
	}
	if n := g.checker.DPoPVerifier().Nonce(); n != "" {
		w.Header().Set("DPoP-Nonce", n)
	}
}

// setChallenges sets the WWW-Authenticate challenges of e (see
// Challenges.Of).
func (g *Guard) setChallenges(w http.ResponseWriter, r *http.Request, e *Error) {
	scheme := core.SchemeBearer
	if hasDPoPScheme(r) {
		scheme = core.SchemeDPoP
	}
	if c := g.challenges.Of(e, g.checker.DPoPPolicy(g.dpopPolicy), scheme); c != nil {
		w.Header()["Www-Authenticate"] = c
	}
}

// Challenges renders the WWW-Authenticate challenges of refusals, the same
// for every transport: the Guard's HTTP answers, and the gRPC and gateway
// adapters built on the core. Make one with NewChallenges.
type Challenges struct {
	realm string
	// algs is the DPoP challenge's algs parameter, with its separator.
	algs string
	// bareBearer and bareDPoP are the challenges without an error.
	bareBearer, bareDPoP string
}

// NewChallenges returns the Challenges of a resource with the given realm,
// RFC 9728 metadata URL ("" for none) and DPoP proof algorithms
// (dpop.Verifier.Algorithms).
func NewChallenges(realm, metadataURL string, algs []string) Challenges {
	c := Challenges{realm: realm, algs: `, algs="` + quotable(strings.Join(algs, " ")) + `"`}
	c.bareBearer = (&Error{Status: http.StatusUnauthorized, ResourceMetadata: metadataURL}).Challenge(realm)
	c.bareDPoP = "DPoP" + c.bareBearer[len("Bearer"):] + c.algs
	return c
}

// Of returns the challenges of e, the refusal of a request that presented
// its token under scheme, on a route whose DPoP policy is policy (a
// Checker's DPoPPolicy; dpop.PolicyDefault is taken for dpop.Allow): the
// Bearer challenge under dpop.Off, the DPoP one under dpop.Require, both
// under dpop.Allow (RFC 9449 §7.1), Bearer first. The error goes in the challenge of the
// scheme the request used (DPoP for a proof's own errors); the other is
// bare. Nil for refusals that carry no challenge (rate limits,
// unavailability).
func (c Challenges) Of(e *Error, policy dpop.Policy, scheme core.Scheme) []string {
	bearer := e.Challenge(c.realm)
	if bearer == "" {
		return nil
	}
	switch policy {
	case dpop.Off:
		return []string{bearer}
	case dpop.PolicyDefault:
		policy = dpop.Allow
	}
	dpopHas := e.Code == CodeInvalidDPoPProof || e.Code == CodeUseDPoPNonce || scheme == core.SchemeDPoP
	dpopChallenge := c.bareDPoP
	if dpopHas || policy == dpop.Require {
		dpopChallenge = "DPoP" + bearer[len("Bearer"):] + c.algs
	}
	switch {
	case policy != dpop.Allow:
		return []string{dpopChallenge}
	case dpopHas:
		return []string{c.bareBearer, dpopChallenge}
	default:
		return []string{bearer, dpopChallenge}
	}
}

// hasDPoPScheme reports whether r's one Authorization header uses the DPoP
// scheme.
func hasDPoPScheme(r *http.Request) bool {
	v := r.Header["Authorization"]
	if len(v) != 1 {
		return false
	}
	auth := v[0]
	return len(auth) > 5 && auth[4] == ' ' && strings.EqualFold(auth[:4], "DPoP")
}
