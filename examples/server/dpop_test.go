package main

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/internal/redistest"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
)

// callDPoP sends GET url with "Authorization: DPoP <token>" and a proof of
// key for it.
func callDPoP(t *testing.T, url, token string, key *jwkstest.Key, nonce string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "DPoP "+token)
	req.Header.Set("DPoP", key.DPoPProof(jwkstest.DPoPProof{Method: http.MethodGet, URL: url, AccessToken: token, Nonce: nonce}))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestServerDPoP: -dpop allow (the default) admits DPoP-bound tokens with
// their proofs and plain Bearer tokens; -dpop require only the former;
// -dpop-nonce asks for a server nonce first (RFC 9449 §8).
func TestServerDPoP(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	key := jwkstest.NewKey(jwks.ES256)
	bound := iss.DPoPBound("worker", key, "data:read")
	plain := iss.M2M("worker", "data:read")
	args := []string{"-addr", "127.0.0.1:0", "-issuer", iss.URL, "-audience", iss.Audience}

	t.Run("allow", func(t *testing.T) {
		base, _ := startServer(t, args, nil)
		assert.Equal(t, http.StatusOK, callDPoP(t, base+"/data", bound, key, "").StatusCode)
		resp, _ := call(t, "GET", base+"/data", plain)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		resp, _ = call(t, "GET", base+"/data", bound)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a DPoP-bound token as Bearer")
	})
	t.Run("require", func(t *testing.T) {
		base, _ := startServer(t, append(args, "-dpop", "require"), nil)
		assert.Equal(t, http.StatusOK, callDPoP(t, base+"/data", bound, key, "").StatusCode)
		resp, _ := call(t, "GET", base+"/data", plain)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		assert.Equal(t, []string{`DPoP realm="api", error="invalid_token", error_description="Only DPoP-bound access tokens are accepted here", algs="RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA Ed25519"`},
			resp.Header.Values("WWW-Authenticate"))
	})
	t.Run("nonce", func(t *testing.T) {
		base, _ := startServer(t, append(args, "-dpop-nonce"), nil)
		resp := callDPoP(t, base+"/data", bound, key, "")
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		nonce := resp.Header.Get("DPoP-Nonce")
		require.NotEmpty(t, nonce)
		assert.Contains(t, resp.Header.Values("WWW-Authenticate")[1], `error="use_dpop_nonce"`)
		assert.Equal(t, http.StatusOK, callDPoP(t, base+"/data", bound, key, nonce).StatusCode)
	})
}

// TestServerReplicasShareDPoP: two instances given one -redis-url are
// replicas behind one load balancer: a proof used at one is refused at the
// other (the replay store is in Redis) and, with -dpop-nonce, a nonce one
// hands out is accepted by the other (the secret is kept in Redis).
func TestServerReplicasShareDPoP(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	key := jwkstest.NewKey(jwks.ES256)
	bound := iss.DPoPBound("worker", key, "data:read")
	redisURL := "redis://" + redistest.Start(t).Addr() + "/0"
	args := []string{"-addr", "127.0.0.1:0", "-issuer", iss.URL, "-audience", iss.Audience, "-redis-url", redisURL}
	// send sends the proof, made for url, to base instead: both replicas
	// stand for one external URL, the proof's htu.
	send := func(t *testing.T, base, url, proof string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, base+"/data", nil)
		require.NoError(t, err)
		req.Host = strings.TrimPrefix(url, "http://")
		req.Header.Set("Authorization", "DPoP "+bound)
		req.Header.Set("DPoP", proof)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	const external = "http://api.test"
	proof := func(nonce string) string {
		return key.DPoPProof(jwkstest.DPoPProof{Method: http.MethodGet, URL: external + "/data", AccessToken: bound, Nonce: nonce})
	}

	tests := []struct {
		name  string
		flags []string
	}{
		{name: "replays", flags: nil},
		{name: "replays with nonces", flags: []string{"-dpop-nonce"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := startServer(t, append(slices.Clone(args), tt.flags...), nil)
			b, _ := startServer(t, append(slices.Clone(args), tt.flags...), nil)
			nonce := ""
			if slices.Contains(tt.flags, "-dpop-nonce") {
				resp := send(t, a, external, proof(""))
				require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
				nonce = resp.Header.Get("DPoP-Nonce")
				require.NotEmpty(t, nonce, "A hands out a nonce")
			}
			p := proof(nonce)
			assert.Equal(t, http.StatusOK, send(t, b, external, p).StatusCode, "first use, at B (with A's nonce, if any)")
			resp := send(t, a, external, p)
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the same proof at A")
			assert.Contains(t, strings.Join(resp.Header.Values("WWW-Authenticate"), "\n"), `error="invalid_dpop_proof"`)
			resp = send(t, b, external, p)
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the same proof again at B")
			assert.Equal(t, http.StatusOK, send(t, a, external, proof(nonce)).StatusCode, "a fresh proof at A")
			if nonce != "" {
				assert.Equal(t, nonce, resp.Header.Get("DPoP-Nonce"), "both replicas hand out the same nonce")
			}
		})
	}
}

// TestServerBehindAProxy runs the server behind a proxy it trusts by
// -trusted-proxies: the external URL of DPoP proofs and the client
// certificate of certificate-bound tokens come from the proxy's headers,
// and only from it.
func TestServerBehindAProxy(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	key := jwkstest.NewKey(jwks.ES256)
	cert := jwkstest.NewClientCertificate("worker").Leaf
	bound := iss.DPoPBound("worker", key, "data:read")
	certBound := iss.MTLSBound("worker", cert, "data:read")
	escaped := jwkstest.EscapedPEM(cert)
	proxyFlags := []string{"-forwarded-proto-header", "X-Forwarded-Proto", "-forwarded-host-header", "X-Forwarded-Host", "-client-cert-header", "X-SSL-Client-Cert"}
	base := []string{"-addr", "127.0.0.1:0", "-issuer", iss.URL, "-audience", iss.Audience}
	trusted, _ := startServer(t, append(append(base, "-trusted-proxies", "127.0.0.1/32,::1"), proxyFlags...), nil)
	untrusted, _ := startServer(t, append(append(base, "-trusted-proxies", "192.0.2.0/24"), proxyFlags...), nil)
	const external = "https://api.example.com/data"
	tests := []struct {
		name   string
		server string
		token  string
		proof  bool
		header map[string]string
		status int
	}{
		{"DPoP: the proxy's external URL", trusted, bound, true, map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example.com"}, 200},
		{"DPoP: without the proxy's headers", trusted, bound, true, nil, 401},
		{"DPoP: headers from an untrusted peer", untrusted, bound, true, map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example.com"}, 401},
		{"mTLS: the proxy's certificate header", trusted, certBound, false, map[string]string{"X-SSL-Client-Cert": escaped}, 200},
		{"mTLS: no certificate", trusted, certBound, false, nil, 401},
		{"mTLS: the header from an untrusted peer", untrusted, certBound, false, map[string]string{"X-SSL-Client-Cert": escaped}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, tt.server+"/data", nil)
			require.NoError(t, err)
			scheme := "Bearer "
			if tt.proof {
				scheme = "DPoP "
				req.Header.Set("DPoP", key.DPoPProof(jwkstest.DPoPProof{Method: "GET", URL: external, AccessToken: tt.token}))
			}
			req.Header.Set("Authorization", scheme+tt.token)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			assert.Equal(t, tt.status, resp.StatusCode)
			switch {
			case tt.status != 401:
			case tt.proof: // the proof's htu is not the URL the server sees
				assert.Contains(t, resp.Header.Values("WWW-Authenticate")[1], `error="invalid_dpop_proof"`)
			default:
				assert.Contains(t, resp.Header.Values("WWW-Authenticate")[0], `error="invalid_token"`)
			}
		})
	}
}
