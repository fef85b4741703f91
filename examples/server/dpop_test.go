package main

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
		assert.Equal(t, []string{`DPoP realm="api", error="invalid_token", error_description="Only DPoP-bound access tokens are accepted here", algs="RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA"`},
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
