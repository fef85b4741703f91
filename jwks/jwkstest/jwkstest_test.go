package jwkstest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
)

func fetchSet(t *testing.T, iss *jwkstest.Issuer) *jwks.Set {
	t.Helper()
	resp, err := http.Get(iss.JWKSURL())
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	var doc json.RawMessage
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
	set, _, err := jwks.ParseSet(doc)
	require.NoError(t, err)
	return set
}

func TestIssuerKeys(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Algorithm: "ES384"})
	first := iss.CurrentKey()
	second := iss.Rotate("EdDSA")
	assert.Equal(t, second, iss.CurrentKey())
	set := fetchSet(t, iss)
	assert.Equal(t, 2, set.Len())
	assert.Len(t, set.Lookup(first.ID), 1)

	iss.Unpublish(first.ID)
	iss.PublishRawJWK(json.RawMessage(`{"kty":"oct","kid":"hmac","k":"c2VjcmV0"}`))
	set = fetchSet(t, iss)
	assert.Equal(t, 1, set.Len())
	assert.Empty(t, set.Lookup(first.ID))
	assert.Equal(t, int64(2), iss.JWKSFetches())

	iss.ServeJWKSWith(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	resp, err := http.Get(iss.JWKSURL())
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusTeapot, resp.StatusCode)
	assert.Equal(t, int64(3), iss.JWKSFetches())
}

func TestIssuerMetadata(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	resp, err := iss.Client().Get(iss.URL + "/.well-known/openid-configuration")
	require.NoError(t, err)
	defer resp.Body.Close()
	var meta map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&meta))
	assert.Equal(t, iss.URL, meta["issuer"])
	assert.Equal(t, iss.JWKSURL(), meta["jwks_uri"])
	assert.Equal(t, iss.TokenURL(), meta["token_endpoint"])
}

func TestTokenEndpoint(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	iss.AddClient(jwkstest.Client{ID: "c", Secret: "s", Scopes: []string{"a", "b"}})
	tests := []struct {
		name   string
		form   url.Values
		basic  bool
		status int
		scope  string
	}{
		{name: "basic auth, all scopes", form: url.Values{"grant_type": {"client_credentials"}}, basic: true, status: 200, scope: "a b"},
		{name: "post auth, one scope", form: url.Values{"grant_type": {"client_credentials"}, "client_id": {"c"}, "client_secret": {"s"}, "scope": {"a"}}, status: 200, scope: "a"},
		{name: "scope not allowed", form: url.Values{"grant_type": {"client_credentials"}, "scope": {"c"}}, basic: true, status: 400},
		{name: "wrong grant", form: url.Values{"grant_type": {"password"}}, basic: true, status: 400},
		{name: "bad secret", form: url.Values{"grant_type": {"client_credentials"}, "client_id": {"c"}, "client_secret": {"x"}}, status: 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, iss.TokenURL(), strings.NewReader(tc.form.Encode()))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.basic {
				req.SetBasicAuth("c", "s")
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, tc.status, resp.StatusCode)
			var body map[string]any
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			if tc.status == 200 {
				assert.Equal(t, tc.scope, body["scope"])
				assert.Equal(t, float64(3600), body["expires_in"])
				assert.NotEmpty(t, body["access_token"])
			} else {
				assert.NotEmpty(t, body["error"])
			}
		})
	}
}
