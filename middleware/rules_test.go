package middleware_test

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks/jwkstest"
)

const challengePrefix = `Bearer realm="api", error="invalid_token", error_description="`

func enc(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// TestVerificationRulesOverHTTP replays each verification rule (RFC 8725,
// RFC 9068 §4) through the Guard and asserts the answer a client sees. The
// same rules are compared with jwx's own verdict in jwks/validator_test.go.
func TestVerificationRulesOverHTTP(t *testing.T) {
	type row struct {
		name        string
		tweak       func(*setup)
		token       func(t *testing.T, e *env) string
		description string // empty: accepted
	}
	claims := func(e *env) map[string]any { return e.iss.Claims("worker", "worker", "data:read") }
	marshal := func(t *testing.T, v any) []byte {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		return b
	}
	rows := []row{
		{name: "genuine token", token: func(t *testing.T, e *env) string { return e.iss.Sign(claims(e)) }},
		{name: "genuine signature under a header alg that differs from the key's", token: func(t *testing.T, e *env) string {
			k := e.iss.CurrentKey()
			return e.iss.SignWith(&jwkstest.Key{ID: k.ID, Algorithm: "PS256", Private: k.Private}, nil, claims(e))
		}, description: "The access token's signing algorithm is not accepted"},
		{name: "alg none", token: func(t *testing.T, e *env) string {
			return enc([]byte(`{"alg":"none"}`)) + "." + enc(marshal(t, claims(e))) + ".AA"
		}, description: "The access token's signing algorithm is not accepted"},
		{name: "HS256 keyed with the public key", token: func(t *testing.T, e *env) string {
			input := enc(marshal(t, map[string]any{"alg": "HS256", "kid": e.iss.CurrentKey().ID})) + "." + enc(marshal(t, claims(e)))
			mac := hmac.New(sha256.New, e.iss.CurrentKey().JWK())
			mac.Write([]byte(input))
			return input + "." + enc(mac.Sum(nil))
		}, description: "The access token's signing algorithm is not accepted"},
		{name: "unknown crit", token: func(t *testing.T, e *env) string {
			return e.iss.SignWith(e.iss.CurrentKey(), map[string]any{"crit": []string{"x-ext"}, "x-ext": 1}, claims(e))
		}, description: "The access token is malformed"},
		{name: "jku header", token: func(t *testing.T, e *env) string {
			return e.iss.SignWith(e.iss.CurrentKey(), map[string]any{"jku": "http://127.0.0.1:1/keys"}, claims(e))
		}, description: "The access token is malformed"},
		{name: "JSON serialization", token: func(t *testing.T, e *env) string {
			p := strings.Split(e.iss.Sign(claims(e)), ".")
			return string(marshal(t, map[string]string{"protected": p[0], "payload": p[1], "signature": p[2]}))
		}, description: "The access token is malformed"},
		{name: "padded base64url", token: func(t *testing.T, e *env) string {
			p := strings.Split(e.iss.Sign(claims(e)), ".")
			// A 256-byte RSA signature encodes to 342 characters: padded, 344.
			return p[0] + "." + p[1] + "." + p[2] + "=="
		}, description: "The access token is malformed"},
		{name: "exp zero", token: func(t *testing.T, e *env) string {
			c := claims(e)
			c["exp"] = 0
			return e.iss.Sign(c)
		}, description: "The access token expired"},
		{name: "exp as a string", token: func(t *testing.T, e *env) string {
			c := claims(e)
			c["exp"] = fmt.Sprint(t0.Add(time.Hour).Unix())
			return e.iss.Sign(c)
		}, description: "The access token's claims are invalid"},
		{name: "exp missing", token: func(t *testing.T, e *env) string {
			c := claims(e)
			delete(c, "exp")
			return e.iss.Sign(c)
		}, description: "The access token's claims are invalid"},
		{name: "iat in the future", token: func(t *testing.T, e *env) string {
			c := claims(e)
			c["iat"] = t0.Add(10 * time.Minute).Unix()
			return e.iss.Sign(c)
		}, description: "The access token is not valid yet"},
		{name: "nbf beyond a configured leeway", tweak: func(c *setup) { c.Leeway = 5 * time.Second }, token: func(t *testing.T, e *env) string {
			c := claims(e)
			c["nbf"] = t0.Add(10 * time.Second).Unix()
			return e.iss.Sign(c)
		}, description: "The access token is not valid yet"},
		{name: "nbf within the default leeway", token: func(t *testing.T, e *env) string {
			c := claims(e)
			c["nbf"] = t0.Add(10 * time.Second).Unix()
			return e.iss.Sign(c)
		}},
		{name: "aud as a string", token: func(t *testing.T, e *env) string {
			c := claims(e)
			c["aud"] = e.iss.Audience
			return e.iss.Sign(c)
		}},
		{name: "aud array without the audience", token: func(t *testing.T, e *env) string { return e.iss.WrongAudience("worker", "data:read") },
			description: "The access token is not meant for this API"},
		{name: "iss of another issuer", token: func(t *testing.T, e *env) string {
			c := claims(e)
			c["iss"] = e.iss.URL + "/"
			return e.iss.Sign(c)
		}, description: "The access token is not from a trusted issuer"},
		{name: "empty sub", token: func(t *testing.T, e *env) string {
			c := claims(e)
			c["sub"] = ""
			return e.iss.Sign(c)
		}, description: "The access token's claims are invalid"},
		{name: "client_id missing", token: func(t *testing.T, e *env) string {
			c := claims(e)
			delete(c, "client_id")
			return e.iss.Sign(c)
		}, description: "The access token's claims are invalid"},
		{name: "an OpenID Connect ID token from the same issuer", token: func(t *testing.T, e *env) string {
			c := claims(e)
			c["nonce"] = "abc"
			return e.iss.Sign(c)
		}, description: "The token is not a JWT access token"},
		{name: "typ JWT when at+jwt is required", tweak: func(c *setup) { c.RequireJWTAccessTokenType = true },
			token:       func(t *testing.T, e *env) string { return e.iss.Sign(claims(e)) },
			description: "The token is not a JWT access token"},
		{name: "typ application/at+jwt when required", tweak: func(c *setup) { c.RequireJWTAccessTokenType = true },
			token: func(t *testing.T, e *env) string {
				return e.iss.SignWith(e.iss.CurrentKey(), map[string]any{"typ": "application/AT+JWT"}, claims(e))
			}},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.tweak)
			rec := e.do(t, get("/data", "Bearer "+tc.token(t, e)))
			if tc.description == "" {
				assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
				assert.Empty(t, rec.Header().Get("WWW-Authenticate"))
				return
			}
			require.Equal(t, http.StatusUnauthorized, rec.Code)
			assert.Equal(t, challengePrefix+tc.description+`"`, rec.Header().Get("WWW-Authenticate"))
		})
	}
}

// TestUnfitKeysInTheJWKS publishes an oct key and a 1024-bit RSA key beside
// the good one: the good key keeps working, tokens naming the others fail.
func TestUnfitKeysInTheJWKS(t *testing.T) {
	e := newEnv(t, nil)
	e.iss.PublishRawJWK(json.RawMessage(`{"kty":"oct","kid":"hmac","alg":"HS256","k":"` + enc([]byte("shared-secret")) + `"}`))
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	e.iss.PublishRawJWK(json.RawMessage(`{"kty":"RSA","kid":"weak","alg":"RS256","use":"sig","n":"` + enc(weak.N.Bytes()) +
		`","e":"` + enc(big.NewInt(int64(weak.E)).Bytes()) + `"}`))

	rec := e.do(t, get("/data", "Bearer "+e.iss.M2M("worker", "data:read")))
	assert.Equal(t, http.StatusOK, rec.Code, "the good key survives beside unfit ones")

	forged, err := json.Marshal(e.iss.Claims("admin", "admin", "data:read"))
	require.NoError(t, err)
	input := enc([]byte(`{"alg":"HS256","kid":"hmac"}`)) + "." + enc(forged)
	mac := hmac.New(sha256.New, []byte("shared-secret"))
	mac.Write([]byte(input))
	rec = e.do(t, get("/data", "Bearer "+input+"."+enc(mac.Sum(nil))))
	require.Equal(t, http.StatusUnauthorized, rec.Code)
	assert.Equal(t, challengePrefix+`The access token's signing algorithm is not accepted"`, rec.Header().Get("WWW-Authenticate"))

	weakKey := &jwkstest.Key{ID: "weak", Algorithm: "RS256", Private: weak}
	rec = e.do(t, get("/data", "Bearer "+e.iss.SignWith(weakKey, nil, e.iss.Claims("w", "w", "data:read"))))
	require.Equal(t, http.StatusUnauthorized, rec.Code)
	assert.Equal(t, challengePrefix+`The access token is signed by an unknown key"`, rec.Header().Get("WWW-Authenticate"))
}

// TestConcurrentUnknownKIDs sends 1,000 concurrent requests whose tokens
// name unknown kids: each gets 401, and the key set is fetched once for the
// first use and at most once more within the cooldown.
func TestConcurrentUnknownKIDs(t *testing.T) {
	e := newEnv(t, nil)
	require.Equal(t, http.StatusOK, e.do(t, get("/data", "Bearer "+e.iss.M2M("w", "data:read"))).Code)
	require.Equal(t, int64(1), e.iss.JWKSFetches())

	stranger := jwkstest.NewKey("ES256")
	tokens := make([]string, 1000)
	for i := range tokens {
		k := &jwkstest.Key{ID: fmt.Sprintf("unknown-%d", i), Algorithm: "ES256", Private: stranger.Private}
		tokens[i] = e.iss.SignWith(k, nil, e.iss.Claims("w", "w", "data:read"))
	}
	var wg sync.WaitGroup
	codes := make([]int, len(tokens))
	challenges := make([]string, len(tokens))
	for i, tok := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := httptest.NewRecorder()
			e.router.ServeHTTP(rec, get("/data", "Bearer "+tok))
			codes[i], challenges[i] = rec.Code, rec.Header().Get("WWW-Authenticate")
		}()
	}
	wg.Wait()
	for i := range tokens {
		require.Equal(t, http.StatusUnauthorized, codes[i])
		require.Equal(t, challengePrefix+`The access token is signed by an unknown key"`, challenges[i])
	}
	assert.Equal(t, int64(2), e.iss.JWKSFetches(), "one refetch for 1,000 unknown kids (the clock is fixed, so within one cooldown)")
}
