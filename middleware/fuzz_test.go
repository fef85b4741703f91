package middleware_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/scopes"
)

// fuzzKey is deterministic so that committed corpus entries stay valid
// tokens: Ed25519 signatures are deterministic and unique.
func fuzzKey() *jwkstest.Key {
	seed := sha256.Sum256([]byte("aegis fuzz key"))
	return &jwkstest.Key{ID: "fuzz", Algorithm: "EdDSA", Private: ed25519.NewKeyFromSeed(seed[:])}
}

func fuzzToken(t testing.TB, claims map[string]any) string {
	k := fuzzKey()
	h, err := json.Marshal(map[string]any{"alg": "EdDSA", "kid": k.ID, "typ": "JWT"})
	require.NoError(t, err)
	c, err := json.Marshal(claims)
	require.NoError(t, err)
	return jwkstest.SignRaw(k, h, c)
}

func fuzzClaims() map[string]any {
	return map[string]any{
		"iss": "https://issuer.fuzz", "aud": []string{"https://api.fuzz"}, "sub": "worker", "client_id": "worker",
		"scp": []string{"data:read"}, "iat": t0.Unix(), "nbf": t0.Unix(), "exp": t0.Add(time.Hour).Unix(),
	}
}

func fuzzGuard(t testing.TB, tweak func(*setup)) *middleware.Guard {
	set, err := jwks.NewSet(jwks.Key{ID: "fuzz", Algorithm: "EdDSA", Public: fuzzKey().Public()})
	require.NoError(t, err)
	cfg := setup{Config: middleware.Config{Issuer: "https://issuer.fuzz", Audience: "https://api.fuzz", Now: fixedClock}, Keys: set}
	if tweak != nil {
		tweak(&cfg)
	}
	g := mustGuard(t, cfg)
	return g
}

// FuzzValidate feeds arbitrary tokens to the whole validation path. It must
// never panic, must refuse with a 4xx *Error, and may accept only the valid
// seed tokens themselves: no mutation of a token stays valid.
func FuzzValidate(f *testing.F) {
	valid := fuzzToken(f, fuzzClaims())
	user := fuzzClaims()
	user["sub"], user["ext"] = "user-1", map[string]any{"email": "a@b.c"}
	validUser := fuzzToken(f, user)
	accepted := map[string]bool{valid: true, validUser: true}
	expired := fuzzClaims()
	expired["exp"] = 0
	for _, s := range []string{valid, validUser, fuzzToken(f, expired), "a.b.c", "", strings.Repeat(".", 3),
		"eyJhbGciOiJub25lIn0.e30.", valid + "=", strings.ToUpper(valid)} {
		f.Add(s)
	}
	g := fuzzGuard(f, nil)
	for token := range accepted {
		_, err := g.Validate(context.Background(), token)
		require.NoError(f, err, "a valid seed must be accepted, or the fuzz target proves nothing")
	}
	f.Fuzz(func(t *testing.T, token string) {
		p, err := g.Validate(context.Background(), token)
		if err == nil {
			require.True(t, accepted[token], "accepted a token that is not a valid seed: %q", token)
			assert.NotEmpty(t, p.Subject)
			return
		}
		var r *aegis.Refusal
		require.ErrorAs(t, err, &r)
		e := middleware.ErrorFor(r)
		assert.True(t, e.Status >= 400 && e.Status < 500, "status %d", e.Status)
		assert.NotContains(t, e.Challenge("api"), "\n")
		if len(token) > 8 {
			assert.NotContains(t, err.Error(), token)
		}
	})
}

// FuzzExtract sends arbitrary Authorization headers, queries and form
// bodies through a Guard that accepts the query and the form: the answer is
// always 200, 400 or 401, and the challenge stays a clean header value.
func FuzzExtract(f *testing.F) {
	valid := fuzzToken(f, fuzzClaims())
	f.Add("Bearer "+valid, "", "")
	f.Add("bearer "+valid, "x=1", "")
	f.Add("", "access_token="+url.QueryEscape(valid), "")
	f.Add("", "", "access_token="+url.QueryEscape(valid))
	f.Add("Bearer "+valid, "access_token=x", "access_token=y")
	f.Add("Basic abc", "", "")
	f.Add("Bearer", "", "")
	f.Add("Bearer a\tb", "%zz", "%zz")
	g := fuzzGuard(f, func(c *setup) {
		c.Bearer.AllowQuery, c.Bearer.AllowFormBody, c.Bearer.MaxFormBytes = true, true, 4096
	})
	h := g.Require(scopes.All("data:read"))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	f.Fuzz(func(t *testing.T, authorization, query, body string) {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.URL.RawQuery = query
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if authorization != "" {
			req.Header["Authorization"] = []string{authorization}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		assert.Contains(t, []int{200, 400, 401, 403}, rec.Code)
		challenge := rec.Header().Get("WWW-Authenticate")
		if rec.Code != 200 {
			assert.True(t, strings.HasPrefix(challenge, `Bearer realm="api"`), challenge)
		}
		assert.NotContains(t, challenge, "\r")
		assert.NotContains(t, challenge, "\n")
	})
}
