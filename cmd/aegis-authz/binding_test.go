package main

import (
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/dpop"
)

// certHeader is the client certificate header of the tests' services.
const certHeader = "X-SSL-Client-Cert"

// dpopAlgs is the algs parameter of the Guard's DPoP challenge.
const dpopAlgs = `algs="RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA Ed25519"`

// newBindingService is a Service for iss's tokens over the issue's
// routes that reads the client certificate from certHeader (escaped PEM).
func newBindingService(t testing.TB, iss *jwkstest.Issuer, mod func(c *middleware.Config)) *Service {
	t.Helper()
	rules, err := ParseRoutes([]byte(issueRoutes))
	require.NoError(t, err)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := middleware.Config{Issuer: iss.URL, Audience: iss.Audience, Logger: log}
	if mod != nil {
		mod(&cfg)
	}
	guard, err := middleware.New(cfg)
	require.NoError(t, err)
	svc, err := NewService(ServiceConfig{Guard: guard, Rules: rules, Logger: log, ClientCertHeader: certHeader})
	require.NoError(t, err)
	return svc
}

// clientReq is a client's request as a gateway receives it.
type clientReq struct {
	// scheme and host are what the client addressed.
	scheme, host string
	method, uri  string
	auth         string
	proofs       []string
	// cert is the TLS client certificate the client presented.
	cert *x509.Certificate
}

// bindingTransport asks a Service about a client's request the way one
// kind of gateway does, passing on the scheme, host, DPoP proofs and
// client certificate.
type bindingTransport struct {
	name string
	ask  func(t *testing.T, c clientReq) answer
}

func bindingTransports(t *testing.T, svc *Service) []bindingTransport {
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	client := checkClient(t, svc)
	headers := func(h http.Header, c clientReq) {
		if c.auth != "" {
			h.Set("Authorization", c.auth)
		}
		for _, p := range c.proofs {
			h.Add("DPoP", p)
		}
		if c.cert != nil {
			h.Set(certHeader, jwkstest.EscapedPEM(c.cert))
		}
	}
	grpcAsk := func(t *testing.T, c clientReq) answer {
		h := http.Header{}
		headers(h, c)
		h.Del(certHeader)
		req := checkRequest(c.method, c.uri, h)
		req.Attributes.Request.Http.Scheme = c.scheme
		req.Attributes.Request.Http.Host = c.host
		req.Attributes.Request.Http.Headers[":authority"] = c.host
		if c.cert != nil {
			req.Attributes.Source = &authv3.AttributeContext_Peer{Certificate: jwkstest.EscapedPEM(c.cert)}
		}
		return checkGRPC(t, client, req)
	}
	return []bindingTransport{
		{"forwarded", func(t *testing.T, c clientReq) answer {
			req, err := http.NewRequest(http.MethodGet, srv.URL+"/auth", nil)
			require.NoError(t, err)
			headers(req.Header, c)
			req.Header.Set(HeaderForwardedMethod, c.method)
			req.Header.Set(HeaderForwardedURI, c.uri)
			req.Header.Set(HeaderForwardedProto, c.scheme)
			req.Header.Set(HeaderForwardedHost, c.host)
			return do(t, req)
		}},
		{"direct", func(t *testing.T, c clientReq) answer {
			req, err := http.NewRequest(c.method, srv.URL, nil)
			require.NoError(t, err)
			req.URL.Opaque = c.uri
			req.Host = c.host
			headers(req.Header, c)
			req.Header.Set(HeaderForwardedProto, c.scheme)
			return do(t, req)
		}},
		{"grpc", grpcAsk},
	}
}

// TestBoundTokens: DPoP-bound (RFC 9449) and certificate-bound (RFC 8705)
// tokens through forward auth, Envoy's HTTP ext_authz and Envoy's gRPC
// ext_authz: the proof must be for the URL the client addressed (the
// gateway's scheme and host), the certificate the one the client
// presented.
func TestBoundTokens(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	key := jwkstest.NewKey(jwks.ES256)
	mine, theirs := jwkstest.NewClientCertificate("svc").Leaf, jwkstest.NewClientCertificate("svc").Leaf
	dpopBound := iss.DPoPBound("dpop-client", key, "data:read")
	certBound := iss.MTLSBound("mtls-client", mine, "data:read")
	plain := iss.M2M("plain", "data:read")
	const external = "https://api.example.com/data"
	proof := func(method, htu string) string {
		return key.DPoPProof(jwkstest.DPoPProof{Method: method, URL: htu, AccessToken: dpopBound})
	}
	get := func(scheme string) clientReq {
		return clientReq{scheme: scheme, host: "api.example.com", method: "GET", uri: "/data?page=2"}
	}
	with := func(c clientReq, f func(c *clientReq)) clientReq { f(&c); return c }
	proofError := `DPoP realm="api", error="invalid_dpop_proof", error_description=`
	tests := []struct {
		name   string
		req    func() clientReq
		status int
		client string // X-Auth-Client-Id on 200
		// challenges are the WWW-Authenticate values: an exact value, or
		// a prefix ending in "=".
		challenges []string
	}{
		{name: "DPoP-bound token with a proof for the external URL", status: 200, client: "dpop-client",
			req: func() clientReq {
				return with(get("https"), func(c *clientReq) { c.auth, c.proofs = "DPoP "+dpopBound, []string{proof("GET", external)} })
			}},
		{name: "DPoP over http with a proof for http", status: 200, client: "dpop-client",
			req: func() clientReq {
				return with(get("http"), func(c *clientReq) {
					c.auth, c.proofs = "DPoP "+dpopBound, []string{proof("GET", "http://api.example.com/data")}
				})
			}},
		{name: "proof for http, request over https", status: 401, challenges: []string{proofError, `Bearer realm="api"`},
			req: func() clientReq {
				return with(get("https"), func(c *clientReq) {
					c.auth, c.proofs = "DPoP "+dpopBound, []string{proof("GET", "http://api.example.com/data")}
				})
			}},
		{name: "proof for https, request over http", status: 401, challenges: []string{proofError, `Bearer realm="api"`},
			req: func() clientReq {
				return with(get("http"), func(c *clientReq) { c.auth, c.proofs = "DPoP "+dpopBound, []string{proof("GET", external)} })
			}},
		{name: "proof for another host", status: 401, challenges: []string{proofError, `Bearer realm="api"`},
			req: func() clientReq {
				return with(get("https"), func(c *clientReq) {
					c.auth, c.proofs = "DPoP "+dpopBound, []string{proof("GET", "https://other.example.com/data")}
				})
			}},
		{name: "proof for another method", status: 401, challenges: []string{proofError, `Bearer realm="api"`},
			req: func() clientReq {
				return with(get("https"), func(c *clientReq) { c.auth, c.proofs = "DPoP "+dpopBound, []string{proof("POST", external)} })
			}},
		{name: "no proof", status: 401, challenges: []string{proofError, `Bearer realm="api"`},
			req: func() clientReq { return with(get("https"), func(c *clientReq) { c.auth = "DPoP " + dpopBound }) }},
		{name: "two proofs", status: 401, challenges: []string{proofError + `"The request has more than one DPoP header", ` + dpopAlgs, `Bearer realm="api"`},
			req: func() clientReq {
				return with(get("https"), func(c *clientReq) {
					c.auth, c.proofs = "DPoP "+dpopBound, []string{proof("GET", external), proof("GET", external)}
				})
			}},
		{name: "DPoP-bound token as Bearer", status: 401, challenges: []string{
			`Bearer realm="api", error="invalid_token", error_description="The access token is DPoP-bound: present it with the DPoP scheme and a proof"`,
			`DPoP realm="api", ` + dpopAlgs},
			req: func() clientReq { return with(get("https"), func(c *clientReq) { c.auth = "Bearer " + dpopBound }) }},
		{name: "no token: both challenges", status: 401, challenges: []string{`Bearer realm="api"`, `DPoP realm="api", ` + dpopAlgs},
			req: func() clientReq { return get("https") }},
		{name: "certificate-bound token with its certificate", status: 200, client: "mtls-client",
			req: func() clientReq {
				return with(get("https"), func(c *clientReq) { c.auth, c.cert = "Bearer "+certBound, mine })
			}},
		{name: "certificate-bound token with another certificate", status: 401, challenges: []string{`Bearer realm="api", error="invalid_token", error_description=`, `DPoP realm="api", ` + dpopAlgs},
			req: func() clientReq {
				return with(get("https"), func(c *clientReq) { c.auth, c.cert = "Bearer "+certBound, theirs })
			}},
		{name: "certificate-bound token without a certificate", status: 401, challenges: []string{`Bearer realm="api", error="invalid_token", error_description=`, `DPoP realm="api", ` + dpopAlgs},
			req: func() clientReq { return with(get("https"), func(c *clientReq) { c.auth = "Bearer " + certBound }) }},
		{name: "certificate-bound token over http: no certificate is read", status: 401,
			challenges: []string{`Bearer realm="api", error="invalid_token", error_description=`, `DPoP realm="api", ` + dpopAlgs},
			req: func() clientReq {
				return with(get("http"), func(c *clientReq) { c.auth, c.cert = "Bearer "+certBound, mine })
			}},
		{name: "unbound token with a certificate", status: 200, client: "plain",
			req: func() clientReq {
				return with(get("https"), func(c *clientReq) { c.auth, c.cert = "Bearer "+plain, mine })
			}},
	}
	svc := newBindingService(t, iss, nil)
	for _, tr := range bindingTransports(t, svc) {
		t.Run(tr.name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					a := tr.ask(t, tc.req())
					require.Equal(t, tc.status, a.status, a.body)
					if tc.status == 200 {
						assert.Equal(t, tc.client, a.header.Get(HeaderClientID))
						assert.Empty(t, a.header.Values("WWW-Authenticate"))
						return
					}
					got := a.header.Values("WWW-Authenticate")
					require.Len(t, got, len(tc.challenges), "%q", got)
					for i, want := range tc.challenges {
						if strings.HasSuffix(want, "=") {
							assert.True(t, strings.HasPrefix(got[i], want), "challenge %d: %q, want %q…", i, got[i], want)
						} else {
							assert.Equal(t, want, got[i], "challenge %d", i)
						}
					}
					var p middleware.Problem
					require.NoError(t, json.Unmarshal([]byte(a.body), &p), a.body)
					assert.Equal(t, 401, p.Status)
					assert.NotContains(t, a.body, dpopBound[10:])
				})
			}
			t.Run("replayed proof", func(t *testing.T) {
				c := with(get("https"), func(c *clientReq) { c.auth, c.proofs = "DPoP "+dpopBound, []string{proof("GET", external)} })
				require.Equal(t, 200, tr.ask(t, c).status)
				a := tr.ask(t, c)
				require.Equal(t, 401, a.status, a.body)
				got := a.header.Values("WWW-Authenticate")
				require.Len(t, got, 2)
				assert.True(t, strings.HasPrefix(got[0], proofError), got[0])
				assert.Equal(t, `Bearer realm="api"`, got[1])
			})
		})
	}
}

// TestDPoPNonce: with nonces demanded, the refusal of a proof without
// one carries DPoP-Nonce (through every transport: gRPC's denied_response
// too), and the allowed request's answer the current nonce (gRPC: in
// response_headers_to_add).
func TestDPoPNonce(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	key := jwkstest.NewKey(jwks.ES256)
	bound := iss.DPoPBound("dpop-client", key, "data:read")
	v, err := dpop.New(dpop.Config{Nonce: &dpop.NonceConfig{}})
	require.NoError(t, err)
	svc := newBindingService(t, iss, func(c *middleware.Config) { c.DPoP.Verifier = v })
	const external = "https://api.example.com/data"
	for _, tr := range bindingTransports(t, svc) {
		t.Run(tr.name, func(t *testing.T) {
			c := clientReq{scheme: "https", host: "api.example.com", method: "GET", uri: "/data", auth: "DPoP " + bound,
				proofs: []string{key.DPoPProof(jwkstest.DPoPProof{Method: "GET", URL: external, AccessToken: bound})}}
			a := tr.ask(t, c)
			require.Equal(t, 401, a.status, a.body)
			nonce := a.header.Get("DPoP-Nonce")
			require.NotEmpty(t, nonce)
			got := a.header.Values("WWW-Authenticate")
			require.Len(t, got, 2)
			assert.True(t, strings.HasPrefix(got[0], `DPoP realm="api", error="use_dpop_nonce"`), got[0])

			c.proofs = []string{key.DPoPProof(jwkstest.DPoPProof{Method: "GET", URL: external, AccessToken: bound, Nonce: nonce})}
			a = tr.ask(t, c)
			require.Equal(t, 200, a.status, a.body)
			assert.Equal(t, nonce, a.header.Get("DPoP-Nonce"))
			assert.Equal(t, "dpop-client", a.header.Get(HeaderClientID))
		})
	}
}

// TestDeniedResponseKeepsEveryChallenge: Envoy gets the second
// WWW-Authenticate value appended, not overwriting the first.
func TestDeniedResponseKeepsEveryChallenge(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	client := checkClient(t, newBindingService(t, iss, nil))
	resp, err := client.Check(t.Context(), checkRequest("GET", "/data", nil))
	require.NoError(t, err)
	var actions []string
	for _, o := range resp.GetDeniedResponse().GetHeaders() {
		if o.GetHeader().GetKey() == "www-authenticate" {
			actions = append(actions, o.GetAppendAction().String()+" "+o.GetHeader().GetValue())
		}
	}
	assert.Equal(t, []string{"OVERWRITE_IF_EXISTS_OR_ADD " + `Bearer realm="api"`, "APPEND_IF_EXISTS_OR_ADD " + `DPoP realm="api", ` + dpopAlgs}, actions)
}

// TestForwardedSchemeAndHost: X-Forwarded-Proto and X-Forwarded-Host are
// one valid value each, else 400; a certificate header that cannot be read
// is no certificate.
func TestForwardedSchemeAndHost(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	svc := newBindingService(t, iss, nil)
	reader := "Bearer " + iss.M2M("reader", "data:read")
	certBound := "Bearer " + iss.MTLSBound("mtls-client", jwkstest.NewClientCertificate("svc").Leaf, "data:read")
	tests := []struct {
		name   string
		direct bool // Envoy's HTTP ext_authz: no X-Forwarded-Uri
		header http.Header
		status int
		detail string
	}{
		{name: "https", header: http.Header{HeaderForwardedProto: {"https"}, HeaderForwardedHost: {"api.example.com:8443"}}, status: 200},
		{name: "HTTP in capitals", header: http.Header{HeaderForwardedProto: {"HTTP"}}, status: 200},
		{name: "WebSocket schemes (Traefik)", header: http.Header{HeaderForwardedProto: {"wss"}}, status: 200},
		{name: "IPv6 host", header: http.Header{HeaderForwardedHost: {"[2001:db8::1]:443"}}, status: 200},
		{name: "two X-Forwarded-Proto", header: http.Header{HeaderForwardedProto: {"http", "https"}}, status: 400,
			detail: "The request has more than one X-Forwarded-Proto header"},
		{name: "a list in X-Forwarded-Proto", header: http.Header{HeaderForwardedProto: {"https, http"}}, status: 400,
			detail: "The forwarded scheme (X-Forwarded-Proto) is malformed: it is neither http nor https"},
		{name: "another scheme", header: http.Header{HeaderForwardedProto: {"ftp"}}, status: 400},
		{name: "empty scheme", header: http.Header{HeaderForwardedProto: {""}}, status: 400},
		{name: "two X-Forwarded-Host", header: http.Header{HeaderForwardedHost: {"a.example", "b.example"}}, status: 400,
			detail: "The request has more than one X-Forwarded-Host header"},
		{name: "host with a path", header: http.Header{HeaderForwardedHost: {"api.example.com/evil"}}, status: 400,
			detail: "The forwarded host (X-Forwarded-Host) is malformed: the host holds a character a host name does not"},
		{name: "host with userinfo", header: http.Header{HeaderForwardedHost: {"user@api.example.com"}}, status: 400},
		{name: "host list", header: http.Header{HeaderForwardedHost: {"a.example, b.example"}}, status: 400},
		{name: "empty host", header: http.Header{HeaderForwardedHost: {""}}, status: 400},
		{name: "port not a number", header: http.Header{HeaderForwardedHost: {"api.example.com:x"}}, status: 400},
		{name: "two ports", header: http.Header{HeaderForwardedHost: {"api.example.com:1:2"}}, status: 400},
		{name: "empty port", header: http.Header{HeaderForwardedHost: {"api.example.com:"}}, status: 400},
		{name: "unclosed IPv6", header: http.Header{HeaderForwardedHost: {"[2001:db8::1"}}, status: 400},
		{name: "IPv4 in brackets", header: http.Header{HeaderForwardedHost: {"[192.0.2.1]"}}, status: 400},
		{name: "direct: two X-Forwarded-Proto", direct: true, header: http.Header{HeaderForwardedProto: {"http", "https"}}, status: 400},
		{name: "direct: X-Forwarded-Host is not read", direct: true, header: http.Header{HeaderForwardedHost: {"a b"}}, status: 200},
		{name: "unreadable certificate: unbound token passes", header: http.Header{HeaderForwardedProto: {"https"}, certHeader: {"%ZZ"}}, status: 200},
		{name: "unreadable certificate: bound token refused", header: http.Header{HeaderForwardedProto: {"https"}, certHeader: {"%ZZ"}, "Authorization": {certBound}}, status: 401},
		{name: "two certificates: none", header: http.Header{HeaderForwardedProto: {"https"}, certHeader: {"a", "b"}, "Authorization": {certBound}}, status: 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ask := func(dpopProof bool) answer {
				req := httptest.NewRequest(http.MethodGet, "/data", nil) // RequestURI "/data", as a server reads it
				if !tc.direct {
					req = forwarded("GET", "/data", "")
				}
				for k, v := range tc.header {
					req.Header[k] = v
				}
				if req.Header.Get("Authorization") == "" {
					req.Header.Set("Authorization", reader)
				}
				if dpopProof {
					req.Header.Set("DPoP", "a-proof")
				}
				rec := newRecorder()
				svc.ServeHTTP(rec, req)
				return answer{status: rec.status, body: string(rec.body)}
			}
			if tc.status != 400 {
				a := ask(false)
				assert.Equal(t, tc.status, a.status, a.body)
				return
			}
			// A malformed scheme or host refuses a request with a DPoP
			// proof, whose htu it would be; any other ignores it.
			a := ask(true)
			require.Equal(t, 400, a.status, a.body)
			var p middleware.Problem
			require.NoError(t, json.Unmarshal([]byte(a.body), &p))
			assert.Equal(t, "invalid_request", p.Error)
			if tc.detail != "" {
				assert.Equal(t, tc.detail, p.Detail)
			}
			a = ask(false)
			assert.Equal(t, 200, a.status, "without DPoP or a certificate, the forwarded scheme and host do not matter: %s", a.body)
		})
	}
}

// TestCheckSchemeAndHost: Envoy's scheme and host must be valid too, for a
// request that presents a DPoP proof or a certificate; any other ignores
// them.
func TestCheckSchemeAndHost(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	client := checkClient(t, newBindingService(t, iss, nil))
	reader := bearer(iss.M2M("reader", "data:read"))
	tests := []struct {
		name, scheme, host string
		status             int
	}{
		{"https", "https", "api.example.com", 200},
		{"no scheme is http", "", "api.example.com:8080", 200},
		{"another scheme", "ftp", "api.example.com", 400},
		{"no host", "https", "", 400},
		{"host with a path", "https", "api.example.com/x", 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ask := func(h http.Header) answer {
				req := checkRequest("GET", "/data", h)
				req.Attributes.Request.Http.Scheme, req.Attributes.Request.Http.Host = tc.scheme, tc.host
				return checkGRPC(t, client, req)
			}
			withProof := reader.Clone()
			withProof.Set("DPoP", "a-proof")
			a := ask(withProof)
			assert.Equal(t, tc.status, a.status, a.body)
			if tc.status == 400 {
				a = ask(reader)
				assert.Equal(t, 200, a.status, "without DPoP, Envoy's scheme and host do not matter: %s", a.body)
			}
		})
	}
}

// TestRulesDPoPPolicy: a rule's "dpop" policy applies to its requests
// alone, through every transport: only DPoP under "require", bound tokens
// refused under "off", the service's default (allow) elsewhere.
func TestRulesDPoPPolicy(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	key := jwkstest.NewKey(jwks.ES256)
	rules, err := ParseRoutes([]byte(`{"routes": [
		{"methods": ["POST"], "path": "/payments", "dpop": "require"},
		{"path": "/legacy", "dpop": "off"},
		{"path": "/data"}
	]}`))
	require.NoError(t, err)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	guard, err := middleware.New(middleware.Config{Issuer: iss.URL, Audience: iss.Audience, Logger: log})
	require.NoError(t, err)
	svc, err := NewService(ServiceConfig{Guard: guard, Rules: rules, Logger: log})
	require.NoError(t, err)
	bound, plain := iss.DPoPBound("bound", key), iss.M2M("plain")
	withProof := func(method, path string) clientReq {
		return clientReq{scheme: "https", host: "api.example.com", method: method, uri: path, auth: "DPoP " + bound,
			proofs: []string{key.DPoPProof(jwkstest.DPoPProof{Method: method, URL: "https://api.example.com" + path, AccessToken: bound})}}
	}
	asBearer := func(method, path, token string) clientReq {
		return clientReq{scheme: "https", host: "api.example.com", method: method, uri: path, auth: "Bearer " + token}
	}
	tests := []struct {
		name      string
		req       func() clientReq
		status    int
		challenge string // the first WWW-Authenticate value's prefix
	}{
		{"require: DPoP passes", func() clientReq { return withProof("POST", "/payments") }, 200, ""},
		{"require: Bearer refused", func() clientReq { return asBearer("POST", "/payments", plain) }, 401, `DPoP realm="api", error="invalid_token"`},
		{"off: bound token refused", func() clientReq { return withProof("GET", "/legacy") }, 401, `Bearer realm="api", error="invalid_token", error_description="DPoP is not accepted here"`},
		{"off: Bearer passes", func() clientReq { return asBearer("GET", "/legacy", plain) }, 200, ""},
		{"default allow: Bearer passes", func() clientReq { return asBearer("GET", "/data", plain) }, 200, ""},
		{"default allow: DPoP passes", func() clientReq { return withProof("GET", "/data") }, 200, ""},
	}
	for _, tr := range bindingTransports(t, svc) {
		for _, tt := range tests {
			t.Run(tr.name+"/"+tt.name, func(t *testing.T) {
				a := tr.ask(t, tt.req())
				assert.Equal(t, tt.status, a.status, a.body)
				if tt.challenge != "" {
					require.NotEmpty(t, a.header.Values("WWW-Authenticate"))
					assert.True(t, strings.HasPrefix(a.header.Values("WWW-Authenticate")[0], tt.challenge), a.header.Values("WWW-Authenticate"))
				}
			})
		}
	}
}

// TestCheckIgnoresCertificateHeaders: over gRPC, the client certificate is
// attributes.source.certificate alone. Envoy passes the client's own
// headers on, so a certificate in -client-cert-header's header is one the
// client made up, even when the service reads that header over HTTP.
func TestCheckIgnoresCertificateHeaders(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	client := checkClient(t, newBindingService(t, iss, nil))
	victim := jwkstest.NewClientCertificate("svc").Leaf
	h := bearer(iss.MTLSBound("victim", victim, "data:read"))
	h.Set(certHeader, jwkstest.EscapedPEM(victim))
	req := checkRequest("GET", "/data", h)
	req.Attributes.Request.Http.Scheme, req.Attributes.Request.Http.Host = "https", "api.example.com"
	a := checkGRPC(t, client, req)
	assert.Equal(t, 401, a.status, a.body)
	assert.Contains(t, a.header.Values("WWW-Authenticate")[0], `error="invalid_token"`)

	req.Attributes.Source = &authv3.AttributeContext_Peer{Certificate: jwkstest.EscapedPEM(victim)}
	assert.Equal(t, 200, checkGRPC(t, client, req).status, "from Envoy's own attribute")
}
