package jwkstest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/scopes"
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

// TestFixtures: every M2M fixture has a user variant, each refused (or
// admitted) for the reason its name says, the user ones classified as a
// person's (issue 14, point 6).
func TestFixtures(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	jwt, err := core.NewJWT(core.JWTConfig{Issuer: iss.URL, Audience: iss.Audience})
	require.NoError(t, err)
	checker, err := core.New(core.Config{Validator: jwt})
	require.NoError(t, err)
	const email = "alice@example.com"
	tests := []struct {
		name   string
		token  string
		reason aegis.Reason // empty: admitted
		kind   core.Kind
	}{
		{"M2M", iss.M2M("worker", "data:read"), "", core.KindM2M},
		{"User", iss.User("alice", "web-app", email, "data:read"), "", core.KindUser},
		{"M2M missing the scope", iss.M2M("worker", "reports:read"), aegis.ReasonInsufficientScope, core.KindM2M},
		{"User missing the scope", iss.User("alice", "web-app", email, "reports:read"), aegis.ReasonInsufficientScope, core.KindUser},
		{"Expired", iss.Expired("worker", "data:read"), aegis.ReasonTokenExpired, ""},
		{"UserExpired", iss.UserExpired("alice", "web-app", email, "data:read"), aegis.ReasonTokenExpired, ""},
		{"WrongAudience", iss.WrongAudience("worker", "data:read"), aegis.ReasonAudienceMismatch, ""},
		{"UserWrongAudience", iss.UserWrongAudience("alice", "web-app", email, "data:read"), aegis.ReasonAudienceMismatch, ""},
		{"OtherIssuer", iss.OtherIssuer("worker", "data:read"), aegis.ReasonIssuerMismatch, ""},
		{"UserOtherIssuer", iss.UserOtherIssuer("alice", "web-app", email, "data:read"), aegis.ReasonIssuerMismatch, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := checker.Check(context.Background(), core.Credential{Token: tt.token}, scopes.All("data:read"))
			if tt.reason == "" {
				require.Nil(t, v.Refusal)
				assert.Equal(t, tt.kind, v.Principal.Kind)
				return
			}
			require.NotNil(t, v.Refusal)
			assert.Equal(t, tt.reason, v.Refusal.Reason)
		})
	}
	p, err := checker.Validate(context.Background(), iss.User("alice", "web-app", email))
	require.NoError(t, err)
	assert.Equal(t, email, p.Email, "User puts the email under ext, as Hydra does")
}
