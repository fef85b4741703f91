package middleware_test

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/dpop"
	"github.com/olympus/aegis/scopes"
)

var dpopT0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func dpopClock() time.Time { return dpopT0 }

type dpopEnv struct {
	iss *jwkstest.Issuer
	key *jwkstest.Key
}

func newDPoPEnv(t *testing.T) *dpopEnv {
	t.Helper()
	return &dpopEnv{iss: jwkstest.NewIssuer(t, jwkstest.Config{Algorithm: jwks.ES256, Now: dpopClock}), key: jwkstest.NewKey(jwks.ES256)}
}

func (e *dpopEnv) guard(t *testing.T, mod func(c *middleware.Config)) *middleware.Guard {
	t.Helper()
	cfg := middleware.Config{Issuer: e.iss.URL, Audience: e.iss.Audience, Now: dpopClock, Logger: quietLogger()}
	if mod != nil {
		mod(&cfg)
	}
	g, err := middleware.New(cfg)
	require.NoError(t, err)
	return g
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func (e *dpopEnv) proof(target, token string, mod func(p *jwkstest.DPoPProof)) string {
	p := jwkstest.DPoPProof{Method: http.MethodGet, URL: target, AccessToken: token, IssuedAt: dpopT0}
	if mod != nil {
		mod(&p)
	}
	return e.key.DPoPProof(p)
}

// okDPoP answers 200 and whether the Principal proved a DPoP key.
var okDPoP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	p, _ := middleware.PrincipalFrom(r.Context())
	if p.DPoPBound() {
		_, _ = io.WriteString(w, "dpop")
		return
	}
	_, _ = io.WriteString(w, "bearer")
})

func dpopRequest(target, auth string, proofs ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	for _, p := range proofs {
		r.Header.Add("DPoP", p)
	}
	return r
}

func TestGuardDPoP(t *testing.T) {
	e := newDPoPEnv(t)
	const target = "https://api.test/data"
	bound := e.iss.DPoPBound("svc", e.key, "data:read")
	plain := e.iss.M2M("svc", "data:read")
	algs := `algs="RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA Ed25519"`
	allow := e.guard(t, nil)
	require := e.guard(t, func(c *middleware.Config) { c.DPoP.Policy = dpop.Require })
	off := e.guard(t, func(c *middleware.Config) { c.DPoP.Policy = dpop.Off })

	tests := []struct {
		name       string
		guard      *middleware.Guard
		req        func() *http.Request
		status     int
		body       string   // on 200
		code       string   // problem's error
		challenges []string // WWW-Authenticate values, in order
	}{
		{name: "DPoP-bound token with its proof", guard: allow, req: func() *http.Request {
			return dpopRequest(target+"?page=2", "DPoP "+bound, e.proof(target, bound, nil))
		}, status: 200, body: "dpop"},
		{name: "scheme in lower case", guard: allow, req: func() *http.Request { return dpopRequest(target, "dpop "+bound, e.proof(target, bound, nil)) },
			status: 200, body: "dpop"},
		{name: "plain Bearer token", guard: allow, req: func() *http.Request { return dpopRequest(target, "Bearer "+plain) }, status: 200, body: "bearer"},
		{name: "no token: both challenges, bare", guard: allow, req: func() *http.Request { return dpopRequest(target, "") }, status: 401,
			challenges: []string{`Bearer realm="api"`, `DPoP realm="api", ` + algs}},
		{name: "DPoP-bound token downgraded to Bearer", guard: allow, req: func() *http.Request { return dpopRequest(target, "Bearer "+bound) },
			status: 401, code: "invalid_token", challenges: []string{
				`Bearer realm="api", error="invalid_token", error_description="The access token is DPoP-bound: present it with the DPoP scheme and a proof"`,
				`DPoP realm="api", ` + algs}},
		{name: "DPoP without proof", guard: allow, req: func() *http.Request { return dpopRequest(target, "DPoP "+bound) },
			status: 401, code: "invalid_dpop_proof", challenges: []string{`Bearer realm="api"`,
				`DPoP realm="api", error="invalid_dpop_proof", error_description="The DPoP proof is invalid", ` + algs}},
		{name: "two DPoP headers", guard: allow, req: func() *http.Request {
			return dpopRequest(target, "DPoP "+bound, e.proof(target, bound, nil), e.proof(target, bound, nil))
		}, status: 401, code: "invalid_dpop_proof", challenges: []string{`Bearer realm="api"`,
			`DPoP realm="api", error="invalid_dpop_proof", error_description="The request has more than one DPoP header", ` + algs}},
		{name: "proof for another URI", guard: allow, req: func() *http.Request {
			return dpopRequest(target, "DPoP "+bound, e.proof("https://api.test/other", bound, nil))
		}, status: 401, code: "invalid_dpop_proof"},
		{name: "proof over plain http for an https htu", guard: allow, req: func() *http.Request {
			return dpopRequest("http://api.test/data", "DPoP "+bound, e.proof(target, bound, nil))
		}, status: 401, code: "invalid_dpop_proof"},
		{name: "proof for another method", guard: allow, req: func() *http.Request {
			return dpopRequest(target, "DPoP "+bound, e.proof(target, bound, func(p *jwkstest.DPoPProof) { p.Method = http.MethodPost }))
		}, status: 401, code: "invalid_dpop_proof"},
		{name: "garbage proof", guard: allow, req: func() *http.Request { return dpopRequest(target, "DPoP "+bound, "garbage") },
			status: 401, code: "invalid_dpop_proof"},
		{name: "require: plain Bearer token, DPoP challenge only", guard: require, req: func() *http.Request { return dpopRequest(target, "Bearer "+plain) },
			status: 401, code: "invalid_token", challenges: []string{
				`DPoP realm="api", error="invalid_token", error_description="Only DPoP-bound access tokens are accepted here", ` + algs}},
		{name: "require: DPoP-bound token with its proof", guard: require, req: func() *http.Request {
			return dpopRequest(target, "DPoP "+bound, e.proof(target, bound, nil))
		}, status: 200, body: "dpop"},
		{name: "off: DPoP-bound token with its proof, Bearer challenge only", guard: off, req: func() *http.Request {
			return dpopRequest(target, "DPoP "+bound, e.proof(target, bound, nil))
		}, status: 401, code: "invalid_token", challenges: []string{`Bearer realm="api", error="invalid_token", error_description="DPoP is not accepted here"`}},
		{name: "off: plain Bearer token", guard: off, req: func() *http.Request { return dpopRequest(target, "Bearer "+plain) }, status: 200, body: "bearer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := tt.req()
			tt.guard.Protect(okDPoP).ServeHTTP(rec, req)
			assert.Equal(t, tt.status, rec.Code)
			if tt.status == 200 {
				assert.Equal(t, tt.body, rec.Body.String())
				return
			}
			assert.Equal(t, tt.code, decodeProblem(t, rec).Error)
			if tt.challenges != nil {
				assert.Equal(t, tt.challenges, rec.Header().Values("WWW-Authenticate"))
			}
			for _, secret := range append([]string{req.Header.Get("Authorization")}, req.Header.Values("DPoP")...) {
				if len(secret) > 16 {
					assert.NotContains(t, rec.Body.String(), secret[8:])
				}
			}
		})
	}
}

func TestGuardDPoPReplayIsRefused(t *testing.T) {
	e := newDPoPEnv(t)
	g := e.guard(t, nil)
	bound := e.iss.DPoPBound("svc", e.key)
	p := e.proof("https://api.test/data", bound, nil)
	for i, want := range []int{200, 401} {
		rec := httptest.NewRecorder()
		g.Protect(okDPoP).ServeHTTP(rec, dpopRequest("https://api.test/data", "DPoP "+bound, p))
		assert.Equal(t, want, rec.Code, "request %d", i)
	}
}

func TestGuardWithDPoPPerRoute(t *testing.T) {
	e := newDPoPEnv(t)
	g := e.guard(t, nil)
	bound := e.iss.DPoPBound("svc", e.key, "data:read")
	plain := e.iss.M2M("svc", "data:read")
	strict := g.WithDPoP(dpop.Require)

	tests := []struct {
		name    string
		handler http.Handler
		req     func() *http.Request
		status  int
	}{
		{"strict route, Bearer token", strict.Protect(okDPoP), func() *http.Request { return dpopRequest("https://api.test/data", "Bearer "+plain) }, 401},
		{"strict route, DPoP", strict.Protect(okDPoP), func() *http.Request {
			return dpopRequest("https://api.test/data", "DPoP "+bound, e.proof("https://api.test/data", bound, nil))
		}, 200},
		{"lenient route, Bearer token", g.Protect(okDPoP), func() *http.Request { return dpopRequest("https://api.test/data", "Bearer "+plain) }, 200},
		// Authenticate admits under allow; the strict route then checks its
		// own policy against that admission without spending the proof again.
		{"authenticated, then strict route: Bearer token", g.Authenticate(strict.Require(scopes.All("data:read"))(okDPoP)),
			func() *http.Request { return dpopRequest("https://api.test/data", "Bearer "+plain) }, 401},
		{"authenticated, then strict route: DPoP", g.Authenticate(strict.Require(scopes.All("data:read"))(okDPoP)), func() *http.Request {
			return dpopRequest("https://api.test/data", "DPoP "+bound, e.proof("https://api.test/data", bound, nil))
		}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tt.handler.ServeHTTP(rec, tt.req())
			assert.Equal(t, tt.status, rec.Code, rec.Body.String())
		})
	}
	assert.Panics(t, func() { g.WithDPoP("sometimes") })
}

func TestGuardDPoPNonce(t *testing.T) {
	e := newDPoPEnv(t)
	v, err := dpop.New(dpop.Config{Nonce: &dpop.NonceConfig{}, Now: dpopClock})
	require.NoError(t, err)
	g := e.guard(t, func(c *middleware.Config) { c.DPoP.Verifier = v })
	bound := e.iss.DPoPBound("svc", e.key)
	const target = "https://api.test/data"

	rec := httptest.NewRecorder()
	g.Protect(okDPoP).ServeHTTP(rec, dpopRequest(target, "DPoP "+bound, e.proof(target, bound, nil)))
	assert.Equal(t, 401, rec.Code)
	nonce := rec.Header().Get("DPoP-Nonce")
	require.NotEmpty(t, nonce)
	assert.Contains(t, rec.Header().Values("WWW-Authenticate")[1], `error="use_dpop_nonce"`)

	rec = httptest.NewRecorder()
	g.Protect(okDPoP).ServeHTTP(rec, dpopRequest(target, "DPoP "+bound, e.proof(target, bound, func(p *jwkstest.DPoPProof) { p.Nonce = nonce })))
	assert.Equal(t, 200, rec.Code)
	assert.Equal(t, nonce, rec.Header().Get("DPoP-Nonce"))
}

func TestGuardDPoPBehindAProxy(t *testing.T) {
	e := newDPoPEnv(t)
	proxied := e.guard(t, func(c *middleware.Config) {
		c.Proxy = middleware.ProxyConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
			ProtoHeader: "X-Forwarded-Proto", HostHeader: "X-Forwarded-Host"}
	})
	direct := e.guard(t, nil)
	bound := e.iss.DPoPBound("svc", e.key)
	const external = "https://api.example.com/data"
	forwarded := func(peer string) *http.Request {
		r := dpopRequest("http://10.0.0.7:8080/data", "DPoP "+bound, e.proof(external, bound, nil))
		r.RemoteAddr = peer
		r.Header.Set("X-Forwarded-Proto", "https")
		r.Header.Set("X-Forwarded-Host", "evil.test, api.example.com")
		return r
	}
	tests := []struct {
		name   string
		guard  *middleware.Guard
		req    *http.Request
		status int
	}{
		{"trusted proxy", proxied, forwarded("192.0.2.10:5555"), 200},
		{"untrusted peer sending the same headers", proxied, forwarded("198.51.100.1:5555"), 401},
		{"headers never trusted by default", direct, forwarded("192.0.2.10:5555"), 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tt.guard.Protect(okDPoP).ServeHTTP(rec, tt.req)
			assert.Equal(t, tt.status, rec.Code)
		})
	}
}

func TestProxyConfigErrors(t *testing.T) {
	e := newDPoPEnv(t)
	for name, c := range map[string]middleware.ProxyConfig{
		"headers without proxies":            {ProtoHeader: "X-Forwarded-Proto"},
		"certificate header without proxies": {ClientCertHeader: "X-SSL-Client-Cert"},
		"unknown certificate format":         {TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, ClientCertHeader: "X", ClientCertFormat: "pem"},
		"proxies without headers":            {TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		"invalid prefix":                     {TrustedProxies: []netip.Prefix{{}}, HostHeader: "X-Forwarded-Host"},
	} {
		t.Run(name, func(t *testing.T) {
			g, err := middleware.New(middleware.Config{Issuer: e.iss.URL, Audience: e.iss.Audience, Proxy: c})
			assert.Nil(t, g)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "Config.Proxy")
		})
	}
}

// TestGuardCertificateBoundTokens runs a Guard behind real TLS on loopback
// (RFC 8705 §3): the token's cnf x5t#S256 must be the client certificate's.
func TestGuardCertificateBoundTokens(t *testing.T) {
	e := newDPoPEnv(t)
	g := e.guard(t, nil)
	srv := httptest.NewUnstartedServer(g.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := middleware.PrincipalFrom(r.Context())
		_, _ = io.WriteString(w, map[bool]string{true: "certificate-bound", false: "unbound"}[p.CertificateBound()])
	})))
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	mine, theirs := jwkstest.NewClientCertificate("svc"), jwkstest.NewClientCertificate("svc")
	bound := e.iss.MTLSBound("svc", mine.Leaf)
	client := func(certs ...tls.Certificate) *http.Client {
		tr := srv.Client().Transport.(*http.Transport).Clone()
		tr.TLSClientConfig.Certificates = certs
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}
	tests := []struct {
		name   string
		client *http.Client
		token  string
		status int
		body   string
	}{
		{"the token's certificate", client(mine), bound, 200, "certificate-bound"},
		{"no certificate", client(), bound, 401, ""},
		{"another certificate", client(theirs), bound, 401, ""},
		{"unbound token with a certificate", client(mine), e.iss.M2M("svc"), 200, "unbound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.URL+"/data", nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+tt.token)
			res, err := tt.client.Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			assert.Equal(t, tt.status, res.StatusCode)
			if tt.status == 200 {
				assert.Equal(t, tt.body, string(body))
				return
			}
			assert.Contains(t, res.Header.Get("WWW-Authenticate"), `error="invalid_token"`)
			assert.True(t, strings.Contains(string(body), `"error":"invalid_token"`))
		})
	}
}

// TestGuardCertificateFromAProxy reads the client certificate from the
// header a trusted proxy sets (RFC 8705 behind nginx or Envoy), in each
// format, and never from anyone else.
func TestGuardCertificateFromAProxy(t *testing.T) {
	e := newDPoPEnv(t)
	mine, theirs := jwkstest.NewClientCertificate("svc"), jwkstest.NewClientCertificate("svc")
	bound := e.iss.MTLSBound("svc", mine.Leaf)
	escaped := func(c tls.Certificate) string { return jwkstest.EscapedPEM(c.Leaf) }
	hexHash := func(c tls.Certificate) string {
		sum := sha256.Sum256(c.Leaf.Raw)
		return hex.EncodeToString(sum[:])
	}
	proxied := func(header string, format middleware.ClientCertFormat) *middleware.Guard {
		return e.guard(t, func(c *middleware.Config) {
			c.Proxy = middleware.ProxyConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
				ClientCertHeader: header, ClientCertFormat: format}
		})
	}
	nginx := proxied("X-SSL-Client-Cert", "")
	caddy := proxied("X-Client-Cert-DER", middleware.ClientCertBase64DER)
	envoy := proxied("X-Forwarded-Client-Cert", middleware.ClientCertXFCC)
	tests := []struct {
		name   string
		guard  *middleware.Guard
		peer   string
		header map[string][]string
		tls    *tls.Certificate
		status int
	}{
		{"nginx: the token's certificate", nginx, "192.0.2.1:1", map[string][]string{"X-SSL-Client-Cert": {escaped(mine)}}, nil, 200},
		{"nginx: another certificate", nginx, "192.0.2.1:1", map[string][]string{"X-SSL-Client-Cert": {escaped(theirs)}}, nil, 401},
		{"nginx: no header", nginx, "192.0.2.1:1", nil, nil, 401},
		{"nginx: unreadable header", nginx, "192.0.2.1:1", map[string][]string{"X-SSL-Client-Cert": {"%ZZ"}}, nil, 401},
		{"nginx: two headers", nginx, "192.0.2.1:1", map[string][]string{"X-SSL-Client-Cert": {escaped(mine), escaped(mine)}}, nil, 401},
		{"nginx: the header from an untrusted peer", nginx, "198.51.100.1:1", map[string][]string{"X-SSL-Client-Cert": {escaped(mine)}}, nil, 401},
		{"nginx: the proxy's own TLS certificate is not the client's", nginx, "192.0.2.1:1", nil, &mine, 401},
		{"untrusted peer: its own TLS certificate", nginx, "198.51.100.1:1", nil, &mine, 200},
		{"caddy: base64 DER", caddy, "192.0.2.1:1", map[string][]string{"X-Client-Cert-DER": {base64.StdEncoding.EncodeToString(mine.Leaf.Raw)}}, nil, 200},
		{"envoy: XFCC", envoy, "192.0.2.1:1", map[string][]string{"X-Forwarded-Client-Cert": {`Hash=` + hexHash(mine) + `;Cert="` + escaped(mine) + `";Subject="CN=svc"`}}, nil, 200},
		{"envoy: XFCC whose Hash is not its Cert's", envoy, "192.0.2.1:1", map[string][]string{"X-Forwarded-Client-Cert": {`Hash=` + hexHash(theirs) + `;Cert="` + escaped(mine) + `"`}}, nil, 401},
		{"envoy: XFCC with a second element", envoy, "192.0.2.1:1", map[string][]string{"X-Forwarded-Client-Cert": {`Hash=` + hexHash(theirs) + `;Cert="` + escaped(theirs) + `";URI=x,Hash=` + hexHash(mine) + `;Cert="` + escaped(mine) + `"`}}, nil, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/data", nil)
			r.RemoteAddr = tt.peer
			r.Header.Set("Authorization", "Bearer "+bound)
			for k, vs := range tt.header {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			if tt.tls != nil {
				r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{tt.tls.Leaf}}
			}
			rec := httptest.NewRecorder()
			tt.guard.Protect(okDPoP).ServeHTTP(rec, r)
			assert.Equal(t, tt.status, rec.Code)
			if tt.status == 401 {
				assert.Contains(t, rec.Header().Get("WWW-Authenticate"), `error="invalid_token"`)
			}
		})
	}
}
