package jwks_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/olympus/aegis"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return t0 }

type fixture struct {
	iss       *jwkstest.Issuer
	validator *jwks.Validator
	keys      *jwks.Remote
	jwxSet    jwk.Set
}

func newFixture(t *testing.T, alg string, tweak func(*jwks.ValidatorConfig)) *fixture {
	t.Helper()
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Algorithm: alg, Now: fixedClock})
	remote, err := jwks.NewRemote(jwks.Config{Issuer: iss.URL, Now: fixedClock})
	require.NoError(t, err)
	cfg := jwks.ValidatorConfig{Issuer: iss.URL, Audience: iss.Audience, Keys: remote, Now: fixedClock}
	if tweak != nil {
		tweak(&cfg)
	}
	v, err := jwks.NewValidator(cfg)
	require.NoError(t, err)
	return &fixture{iss: iss, validator: v, keys: remote}
}

// jwxAccepts reports whether jwx v2's jwt.Parse, given the same key set,
// issuer, audience, skew and clock, accepts the token on its own.
func (f *fixture) jwxAccepts(t *testing.T, token string) bool {
	t.Helper()
	resp, err := http.Get(f.iss.JWKSURL())
	require.NoError(t, err)
	defer resp.Body.Close()
	var doc json.RawMessage
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
	set, err := jwk.Parse(doc, jwk.WithIgnoreParseError(true))
	require.NoError(t, err)
	_, err = jwt.Parse([]byte(token),
		jwt.WithKeySet(set),
		jwt.WithIssuer(f.iss.URL),
		jwt.WithAudience(f.iss.Audience),
		jwt.WithAcceptableSkew(aegis.DefaultLeeway),
		jwt.WithClock(jwt.ClockFunc(fixedClock)),
	)
	return err == nil
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func hmacToken(t *testing.T, secret []byte, header, payload []byte) string {
	t.Helper()
	input := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	signer, err := jws.NewSigner(jwa.HS256)
	require.NoError(t, err)
	sig, err := signer.Sign([]byte(input), secret)
	require.NoError(t, err)
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// TestValidatorRules holds one row per verification rule of RFC 8725 and
// RFC 9068 §4. Each row records what Aegis does and what jwx's jwt.Parse
// does on its own with the same keys, issuer, audience and clock: the rows
// where jwx accepts are the reason Aegis does its own checks.
func TestValidatorRules(t *testing.T) {
	type row struct {
		name      string
		alg       string
		tweak     func(*jwks.ValidatorConfig)
		token     func(t *testing.T, f *fixture) string
		want      error // nil: accepted
		jwxAccept bool
	}
	m2m := func(f *fixture) map[string]any { return f.iss.Claims("worker", "worker", "data:read") }
	rows := []row{
		{name: "genuine RS256 token", token: func(t *testing.T, f *fixture) string { return f.iss.Sign(m2m(f)) }, jwxAccept: true},
		{name: "genuine ES256 token", alg: "ES256", token: func(t *testing.T, f *fixture) string { return f.iss.Sign(m2m(f)) }, jwxAccept: true},
		{name: "genuine EdDSA token", alg: "EdDSA", token: func(t *testing.T, f *fixture) string { return f.iss.Sign(m2m(f)) }, jwxAccept: true},
		{name: "genuine PS256 token", alg: "PS256", token: func(t *testing.T, f *fixture) string { return f.iss.Sign(m2m(f)) }, jwxAccept: true},

		// Algorithms (RFC 8725 §3.1, §3.2).
		{name: "alg none without signature", want: jwks.ErrMalformed, token: func(t *testing.T, f *fixture) string {
			return b64(`{"alg":"none","typ":"JWT"}`) + "." + b64(string(mustJSON(t, m2m(f)))) + "."
		}},
		{name: "alg none with a signature", want: jwks.ErrAlgorithm, token: func(t *testing.T, f *fixture) string {
			return b64(`{"alg":"none"}`) + "." + b64(string(mustJSON(t, m2m(f)))) + ".c2ln"
		}},
		{name: "alg NoNe spelling", want: jwks.ErrAlgorithm, token: func(t *testing.T, f *fixture) string {
			return b64(`{"alg":"NoNe"}`) + "." + b64(string(mustJSON(t, m2m(f)))) + ".c2ln"
		}},
		{name: "HS256 keyed with the RSA public key PEM (key confusion)", want: jwks.ErrAlgorithm, token: func(t *testing.T, f *fixture) string {
			der, err := x509.MarshalPKIXPublicKey(f.iss.CurrentKey().Public())
			require.NoError(t, err)
			secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
			h := mustJSON(t, map[string]any{"alg": "HS256", "kid": f.iss.CurrentKey().ID})
			return hmacToken(t, secret, h, mustJSON(t, m2m(f)))
		}},
		{name: "HS256 keyed with the JWK (key confusion)", want: jwks.ErrAlgorithm, token: func(t *testing.T, f *fixture) string {
			h := mustJSON(t, map[string]any{"alg": "HS256", "kid": f.iss.CurrentKey().ID})
			return hmacToken(t, f.iss.CurrentKey().JWK(), h, mustJSON(t, m2m(f)))
		}},
		{name: "alg outside the configured allowlist", want: jwks.ErrAlgorithm,
			tweak: func(c *jwks.ValidatorConfig) { c.Algorithms = []string{jwks.ES256} },
			token: func(t *testing.T, f *fixture) string { return f.iss.Sign(m2m(f)) }, jwxAccept: true},
		{name: "genuine signature under a header alg that differs from the key's", want: jwks.ErrAlgorithm, token: func(t *testing.T, f *fixture) string {
			// The JWK says RS256; the same RSA key signs PS256 and the header says PS256.
			k := f.iss.CurrentKey()
			other := &jwkstest.Key{ID: k.ID, Algorithm: "PS256", Private: k.Private}
			return f.iss.SignWith(other, nil, m2m(f))
		}, jwxAccept: false},
		{name: "alg ES256 with an RS256 kid", want: jwks.ErrAlgorithm, token: func(t *testing.T, f *fixture) string {
			ec := jwkstest.NewKey("ES256")
			ec.ID = f.iss.CurrentKey().ID
			return f.iss.SignWith(ec, nil, m2m(f))
		}},
		{name: "unknown kid", want: jwks.ErrUnknownKey, token: func(t *testing.T, f *fixture) string {
			return f.iss.SignWith(jwkstest.NewKey("RS256"), nil, m2m(f))
		}},
		{name: "signature by a key the issuer never published, under its kid", want: jwks.ErrSignature, token: func(t *testing.T, f *fixture) string {
			k := jwkstest.NewKey("RS256")
			k.ID = f.iss.CurrentKey().ID
			return f.iss.SignWith(k, nil, m2m(f))
		}},
		{name: "no kid: tried against the fitting keys", token: func(t *testing.T, f *fixture) string {
			return f.iss.SignWith(f.iss.CurrentKey(), map[string]any{"kid": nil}, m2m(f))
		}, jwxAccept: false},
		{name: "truncated signature", want: jwks.ErrSignature, token: func(t *testing.T, f *fixture) string {
			parts := strings.Split(f.iss.Sign(m2m(f)), ".")
			sig, err := base64.RawURLEncoding.DecodeString(parts[2])
			require.NoError(t, err)
			return parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig[:len(sig)/2])
		}},
		{name: "empty signature", want: jwks.ErrMalformed, token: func(t *testing.T, f *fixture) string {
			tok := f.iss.Sign(m2m(f))
			return tok[:strings.LastIndexByte(tok, '.')+1]
		}},
		{name: "tampered payload", want: jwks.ErrSignature, token: func(t *testing.T, f *fixture) string {
			tok := f.iss.Sign(m2m(f))
			parts := strings.Split(tok, ".")
			c := m2m(f)
			c["scp"] = []string{"admin"}
			return parts[0] + "." + b64(string(mustJSON(t, c))) + "." + parts[2]
		}},

		// Serialization (RFC 8725 §3.11, RFC 7515 §7.1).
		{name: "JSON serialization", want: jwks.ErrMalformed, token: func(t *testing.T, f *fixture) string {
			parts := strings.Split(f.iss.Sign(m2m(f)), ".")
			return string(mustJSON(t, map[string]any{"payload": parts[1], "protected": parts[0], "signature": parts[2]}))
		}, jwxAccept: false},
		{name: "padded base64url", want: jwks.ErrMalformed, token: func(t *testing.T, f *fixture) string {
			k := f.iss.CurrentKey()
			c := m2m(f)
			c["pad"] = "x" // make the payload length need padding
			for n := 0; ; n++ {
				payload := mustJSON(t, c)
				if len(payload)%3 != 0 {
					h := mustJSON(t, map[string]any{"alg": k.Algorithm, "kid": k.ID})
					tok := jwkstest.SignRaw(k, h, payload)
					parts := strings.Split(tok, ".")
					return parts[0] + "." + parts[1] + strings.Repeat("=", 4-len(parts[1])%4) + "." + parts[2]
				}
				c["pad"] = strings.Repeat("x", n)
			}
		}, jwxAccept: true},
		{name: "non-canonical base64url (stray low bits)", want: jwks.ErrMalformed, token: func(t *testing.T, f *fixture) string {
			tok := f.iss.Sign(m2m(f))
			parts := strings.Split(tok, ".")
			sig := []byte(parts[2])
			// RSA-2048 signature: 256 bytes, last char carries 4 unused bits.
			sig[len(sig)-1] = nonCanonical(sig[len(sig)-1])
			return parts[0] + "." + parts[1] + "." + string(sig)
		}, jwxAccept: true},
		{name: "standard base64 alphabet", want: jwks.ErrMalformed, token: func(t *testing.T, f *fixture) string {
			return strings.Replace(f.iss.Sign(m2m(f)), "e", "+", 1)
		}},
		{name: "four parts", want: jwks.ErrMalformed, token: func(t *testing.T, f *fixture) string { return f.iss.Sign(m2m(f)) + ".x" }},
		{name: "JWE-shaped", want: jwks.ErrMalformed, token: func(t *testing.T, f *fixture) string { return "a.b.c.d.e" }},
		{name: "duplicate claim", want: jwks.ErrMalformed, token: func(t *testing.T, f *fixture) string {
			k := f.iss.CurrentKey()
			body := mustJSON(t, m2m(f))
			dup := append([]byte(`{"sub":"admin",`), body[1:]...)
			return jwkstest.SignRaw(k, mustJSON(t, map[string]any{"alg": k.Algorithm, "kid": k.ID}), dup)
		}, jwxAccept: true},
		{name: "duplicate header member", want: jwks.ErrMalformed, token: func(t *testing.T, f *fixture) string {
			k := f.iss.CurrentKey()
			h := []byte(`{"alg":"` + k.Algorithm + `","kid":"` + k.ID + `","alg":"none"}`)
			return jwkstest.SignRaw(k, h, mustJSON(t, m2m(f)))
		}, jwxAccept: true},
		{name: "claims not an object", want: jwks.ErrMalformed, token: func(t *testing.T, f *fixture) string {
			k := f.iss.CurrentKey()
			return jwkstest.SignRaw(k, mustJSON(t, map[string]any{"alg": k.Algorithm, "kid": k.ID}), []byte(`["sub"]`))
		}},

		// Header parameters (RFC 7515 §4.1.11, RFC 8725 §3.10).
		{name: "unknown crit", want: jwks.ErrMalformed, token: func(t *testing.T, f *fixture) string {
			return f.iss.SignWith(f.iss.CurrentKey(), map[string]any{"crit": []string{"exp-ext"}, "exp-ext": true}, m2m(f))
		}, jwxAccept: true},
		{name: "embedded jwk", want: jwks.ErrMalformed, token: func(t *testing.T, f *fixture) string {
			return f.iss.SignWith(f.iss.CurrentKey(), map[string]any{"jwk": json.RawMessage(f.iss.CurrentKey().JWK())}, m2m(f))
		}, jwxAccept: true},
		{name: "kid is not a string", want: jwks.ErrMalformed, token: func(t *testing.T, f *fixture) string {
			return f.iss.SignWith(f.iss.CurrentKey(), map[string]any{"kid": 7}, m2m(f))
		}},
		{name: "typ JWT when at+jwt is required", want: jwks.ErrType,
			tweak: func(c *jwks.ValidatorConfig) { c.RequireJWTAccessTokenType = true },
			token: func(t *testing.T, f *fixture) string { return f.iss.Sign(m2m(f)) }, jwxAccept: true},
		{name: "typ at+jwt when required",
			tweak: func(c *jwks.ValidatorConfig) { c.RequireJWTAccessTokenType = true },
			token: func(t *testing.T, f *fixture) string {
				return f.iss.SignWith(f.iss.CurrentKey(), map[string]any{"typ": "at+jwt"}, m2m(f))
			}, jwxAccept: true},
		{name: "typ Application/AT+JWT when required (case-insensitive)",
			tweak: func(c *jwks.ValidatorConfig) { c.RequireJWTAccessTokenType = true },
			token: func(t *testing.T, f *fixture) string {
				return f.iss.SignWith(f.iss.CurrentKey(), map[string]any{"typ": "Application/AT+JWT"}, m2m(f))
			}, jwxAccept: true},
		{name: "typ JWT accepted by default", token: func(t *testing.T, f *fixture) string { return f.iss.Sign(m2m(f)) }, jwxAccept: true},
		{name: "typ at+jwt accepted by default", token: func(t *testing.T, f *fixture) string {
			return f.iss.SignWith(f.iss.CurrentKey(), map[string]any{"typ": "at+jwt"}, m2m(f))
		}, jwxAccept: true},
		{name: "no typ accepted by default", token: func(t *testing.T, f *fixture) string {
			return f.iss.SignWith(f.iss.CurrentKey(), map[string]any{"typ": nil}, m2m(f))
		}, jwxAccept: true},
		{name: "typ dpop+jwt refused by default (RFC 8725 §3.11)", want: jwks.ErrType, token: func(t *testing.T, f *fixture) string {
			return f.iss.SignWith(f.iss.CurrentKey(), map[string]any{"typ": "dpop+jwt"}, m2m(f))
		}, jwxAccept: true},
		{name: "typ logout+jwt refused by default (RFC 8725 §3.11)", want: jwks.ErrType, token: func(t *testing.T, f *fixture) string {
			return f.iss.SignWith(f.iss.CurrentKey(), map[string]any{"typ": "logout+jwt"}, m2m(f))
		}, jwxAccept: true},

		// Issuer and audience (RFC 9068 §4 steps 3 and 4).
		{name: "wrong iss", want: jwks.ErrIssuer, token: func(t *testing.T, f *fixture) string {
			c := m2m(f)
			c["iss"] = "https://evil.test"
			return f.iss.Sign(c)
		}},
		{name: "missing iss", want: jwks.ErrIssuer, token: func(t *testing.T, f *fixture) string {
			c := m2m(f)
			delete(c, "iss")
			return f.iss.Sign(c)
		}},
		{name: "aud as a string", token: func(t *testing.T, f *fixture) string {
			c := m2m(f)
			c["aud"] = f.iss.Audience
			return f.iss.Sign(c)
		}, jwxAccept: true},
		{name: "aud array with the audience among others", token: func(t *testing.T, f *fixture) string {
			c := m2m(f)
			c["aud"] = []string{"https://other.test", f.iss.Audience}
			return f.iss.Sign(c)
		}, jwxAccept: true},
		{name: "wrong aud", want: jwks.ErrAudience, token: func(t *testing.T, f *fixture) string { return f.iss.WrongAudience("worker") }},
		{name: "empty aud array", want: jwks.ErrAudience, token: func(t *testing.T, f *fixture) string {
			c := m2m(f)
			c["aud"] = []string{}
			return f.iss.Sign(c)
		}},
		{name: "aud of the wrong type", want: jwks.ErrClaims, token: func(t *testing.T, f *fixture) string {
			c := m2m(f)
			c["aud"] = []any{f.iss.Audience, 7}
			return f.iss.Sign(c)
		}},
		{name: "any audience when configured so", tweak: func(c *jwks.ValidatorConfig) { c.Audience, c.AnyAudience = "", true },
			token: func(t *testing.T, f *fixture) string { return f.iss.WrongAudience("worker") }},

		// Time (RFC 9068 §4 step 7, RFC 7519 §4.1.4-6).
		{name: "exp missing", want: jwks.ErrClaims, token: func(t *testing.T, f *fixture) string {
			c := m2m(f)
			delete(c, "exp")
			return f.iss.Sign(c)
		}, jwxAccept: true},
		{name: "exp zero is expired, not missing", want: jwks.ErrExpired, token: func(t *testing.T, f *fixture) string {
			c := m2m(f)
			c["exp"] = 0
			return f.iss.Sign(c)
		}, jwxAccept: true},
		{name: "exp as a string", want: jwks.ErrClaims, token: func(t *testing.T, f *fixture) string {
			c := m2m(f)
			c["exp"] = "4102444800"
			return f.iss.Sign(c)
		}, jwxAccept: true},
		{name: "exp in the past", want: jwks.ErrExpired, token: func(t *testing.T, f *fixture) string { return f.iss.Expired("worker") }},
		{name: "exp passed within the leeway", token: func(t *testing.T, f *fixture) string {
			c := m2m(f)
			c["exp"] = t0.Add(-10 * time.Second).Unix()
			return f.iss.Sign(c)
		}, jwxAccept: true},
		{name: "exp passed beyond a configured leeway", want: jwks.ErrExpired, tweak: func(c *jwks.ValidatorConfig) { c.Leeway = 5 * time.Second },
			token: func(t *testing.T, f *fixture) string {
				c := m2m(f)
				c["exp"] = t0.Add(-10 * time.Second).Unix()
				return f.iss.Sign(c)
			}, jwxAccept: true},
		{name: "exp exactly now with no leeway", want: jwks.ErrExpired, tweak: func(c *jwks.ValidatorConfig) { c.Leeway = -1 },
			token: func(t *testing.T, f *fixture) string {
				c := m2m(f)
				c["exp"] = t0.Unix()
				return f.iss.Sign(c)
			}, jwxAccept: true},
		{name: "fractional exp", token: func(t *testing.T, f *fixture) string {
			c := m2m(f)
			c["exp"] = float64(t0.Unix()) + 600.5
			return f.iss.Sign(c)
		}, jwxAccept: true},
		{name: "nbf in the future", want: jwks.ErrNotYetValid, token: func(t *testing.T, f *fixture) string {
			c := m2m(f)
			c["nbf"] = t0.Add(5 * time.Minute).Unix()
			return f.iss.Sign(c)
		}},
		{name: "iat in the future", want: jwks.ErrNotYetValid, token: func(t *testing.T, f *fixture) string {
			c := m2m(f)
			c["iat"] = t0.Add(5 * time.Minute).Unix()
			return f.iss.Sign(c)
		}},
		{name: "nbf as a string", want: jwks.ErrClaims, token: func(t *testing.T, f *fixture) string {
			c := m2m(f)
			c["nbf"] = "0"
			return f.iss.Sign(c)
		}, jwxAccept: true},
		{name: "iat as a boolean", want: jwks.ErrClaims, token: func(t *testing.T, f *fixture) string {
			c := m2m(f)
			c["iat"] = true
			return f.iss.Sign(c)
		}},

		// Subject and other claims (RFC 9068 §2.2).
		{name: "sub missing", want: jwks.ErrClaims, token: func(t *testing.T, f *fixture) string {
			c := m2m(f)
			delete(c, "sub")
			return f.iss.Sign(c)
		}, jwxAccept: true},
		{name: "sub empty", want: jwks.ErrClaims, token: func(t *testing.T, f *fixture) string {
			c := m2m(f)
			c["sub"] = ""
			return f.iss.Sign(c)
		}, jwxAccept: true},
		{name: "sub not a string", want: jwks.ErrClaims, token: func(t *testing.T, f *fixture) string {
			c := m2m(f)
			c["sub"] = 42
			return f.iss.Sign(c)
		}},
		{name: "client_id missing (RFC 9068 §2.2)", want: jwks.ErrClaims, token: func(t *testing.T, f *fixture) string {
			c := m2m(f)
			delete(c, "client_id")
			return f.iss.Sign(c)
		}, jwxAccept: true},
		{name: "an ID token signed by the same key", want: jwks.ErrType, token: func(t *testing.T, f *fixture) string {
			c := m2m(f)
			c["nonce"], c["at_hash"] = "n-0S6_WzA2Mj", "77QmUPtjPfzWtF2AnpK9RQ"
			return f.iss.Sign(c)
		}, jwxAccept: true},
		{name: "client_id not a string", want: jwks.ErrClaims, token: func(t *testing.T, f *fixture) string {
			c := m2m(f)
			c["client_id"] = []string{"a"}
			return f.iss.Sign(c)
		}, jwxAccept: true},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			alg := tc.alg
			if alg == "" {
				alg = "RS256"
			}
			f := newFixture(t, alg, tc.tweak)
			token := tc.token(t, f)
			claims, err := f.validator.Validate(context.Background(), token)
			if tc.want == nil {
				require.NoError(t, err)
				assert.Equal(t, "worker", claims.Subject)
			} else {
				require.ErrorIs(t, err, tc.want)
				assert.Nil(t, claims)
				assert.NotContains(t, err.Error(), token, "an error must never carry the token")
			}
			assert.Equal(t, tc.jwxAccept, f.jwxAccepts(t, token), "jwx v2.1.7's own verdict changed: review this rule")
		})
	}
}

// nonCanonical flips the unused low bits of a final base64url character.
func nonCanonical(c byte) byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, c)
	return alphabet[i|1]
}

func TestValidatorNeverFetchesTokenNamedKeys(t *testing.T) {
	var hits atomic.Int64
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer evil.Close()
	f := newFixture(t, "RS256", nil)
	for _, name := range []string{"jku", "x5u"} {
		token := f.iss.SignWith(f.iss.CurrentKey(), map[string]any{name: evil.URL + "/keys"}, f.iss.Claims("w", "w"))
		_, err := f.validator.Validate(context.Background(), token)
		require.ErrorIs(t, err, jwks.ErrMalformed, name)
	}
	token := f.iss.SignWith(f.iss.CurrentKey(), map[string]any{"x5c": []string{"MIIB"}}, f.iss.Claims("w", "w"))
	_, err := f.validator.Validate(context.Background(), token)
	require.ErrorIs(t, err, jwks.ErrMalformed)
	assert.Zero(t, hits.Load(), "a URL from a token header was fetched")
}

func TestValidatorRefusesOverlongTokenBeforeDecoding(t *testing.T) {
	f := newFixture(t, "RS256", func(c *jwks.ValidatorConfig) { c.MaxTokenLength = 100 })
	_, err := f.validator.Validate(context.Background(), strings.Repeat("a", 101))
	require.ErrorIs(t, err, jwks.ErrMalformed)
	assert.Zero(t, f.iss.JWKSFetches())
}

func TestValidatorClaims(t *testing.T) {
	f := newFixture(t, "RS256", nil)
	token := f.iss.User("user-42", "web-app", "alice@example.com", "openid", "data:read")
	c, err := f.validator.Validate(context.Background(), token)
	require.NoError(t, err)
	assert.Equal(t, f.iss.URL, c.Issuer)
	assert.Equal(t, "user-42", c.Subject)
	assert.Equal(t, "web-app", c.ClientID)
	assert.Equal(t, []string{f.iss.Audience}, c.Audience)
	assert.Equal(t, t0.Add(time.Hour), c.Expiry)
	assert.Equal(t, t0, c.IssuedAt)
	assert.Equal(t, t0, c.NotBefore)
	assert.NotEmpty(t, c.TokenID)
	assert.Equal(t, f.iss.CurrentKey().ID, c.KeyID)
	assert.Equal(t, "RS256", c.Algorithm)
	assert.Equal(t, "JWT", c.Type)
	ext, ok := c.Raw("ext")
	require.True(t, ok)
	assert.JSONEq(t, `{"email":"alice@example.com"}`, string(ext))
	_, ok = c.Raw("missing")
	assert.False(t, ok)
	assert.ElementsMatch(t, []string{"iss", "aud", "sub", "client_id", "scp", "iat", "nbf", "exp", "jti", "ext"}, c.Names())
}

func TestNewValidatorConfig(t *testing.T) {
	keys, err := jwks.NewSet()
	require.NoError(t, err)
	tests := []struct {
		name string
		cfg  jwks.ValidatorConfig
		ok   bool
	}{
		{name: "minimal", cfg: jwks.ValidatorConfig{Issuer: "https://i", Audience: "a", Keys: keys}, ok: true},
		{name: "no issuer", cfg: jwks.ValidatorConfig{Audience: "a", Keys: keys}},
		{name: "no audience", cfg: jwks.ValidatorConfig{Issuer: "https://i", Keys: keys}},
		{name: "no keys", cfg: jwks.ValidatorConfig{Issuer: "https://i", Audience: "a"}},
		{name: "HS256 allowed", cfg: jwks.ValidatorConfig{Issuer: "https://i", Audience: "a", Keys: keys, Algorithms: []string{"HS256"}}},
		{name: "none allowed", cfg: jwks.ValidatorConfig{Issuer: "https://i", Audience: "a", Keys: keys, Algorithms: []string{"none"}}},
		{name: "empty allowlist", cfg: jwks.ValidatorConfig{Issuer: "https://i", Audience: "a", Keys: keys, Algorithms: []string{}}},
		{name: "leeway too large", cfg: jwks.ValidatorConfig{Issuer: "https://i", Audience: "a", Keys: keys, Leeway: time.Hour}},
		{name: "leeway within bounds", cfg: jwks.ValidatorConfig{Issuer: "https://i", Audience: "a", Keys: keys, Leeway: time.Minute}, ok: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := jwks.NewValidator(tc.cfg)
			if tc.ok {
				require.NoError(t, err)
				assert.Equal(t, tc.cfg.Issuer, v.Issuer())
			} else {
				assert.Error(t, err)
			}
		})
	}
}

func TestParseToken(t *testing.T) {
	f := newFixture(t, "ES256", nil)
	jwt := f.iss.M2M("w")
	tests := []struct {
		name    string
		token   string
		wantErr error // nil: parsed
		notJWT  bool
		iss     string
	}{
		{name: "JWT", token: jwt, iss: f.iss.URL},
		{name: "Hydra opaque token", token: f.iss.OpaqueM2M("w"), wantErr: jwks.ErrNotJWT, notJWT: true},
		{name: "three parts, header not JSON", token: "abc.def.ghi", wantErr: jwks.ErrNotJWT, notJWT: true},
		{name: "header without alg", token: b64(`{"typ":"JWT"}`) + "." + b64(`{"iss":"x"}`) + ".sig", wantErr: jwks.ErrNotJWT, notJWT: true},
		{name: "four parts", token: jwt + ".x", wantErr: jwks.ErrNotJWT, notJWT: true},
		{name: "no iss", token: b64(`{"alg":"ES256"}`) + "." + b64(`{"sub":"x","exp":1}`) + ".sig"},
		{name: "iss not a string", token: b64(`{"alg":"ES256"}`) + "." + b64(`{"iss":7,"exp":1}`) + ".sig", wantErr: jwks.ErrClaims},
		{name: "forbidden header: a JWT, but malformed", token: b64(`{"alg":"ES256","crit":["x"]}`) + "." + b64(`{"iss":"x"}`) + ".sig", wantErr: jwks.ErrMalformed},
		{name: "too long", token: strings.Repeat("a", aegis.DefaultMaxTokenLength+1), wantErr: jwks.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := jwks.ParseToken(tc.token, 0)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				assert.Equal(t, tc.notJWT, errors.Is(err, jwks.ErrNotJWT))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.iss, tok.Issuer())
		})
	}
}

// TestCanonicalAudience: RFC 8707 §2 resource indicators are absolute
// URIs; aud must hold the configured one exactly (RFC 9068 §4) unless
// CanonicalAudience forgives letter case in scheme and host and one
// trailing slash.
func TestCanonicalAudience(t *testing.T) {
	const resource = "https://api.example.com/v1"
	tests := []struct {
		aud              string
		exact, canonical bool
	}{
		{resource, true, true},
		{"HTTPS://API.Example.com/v1", false, true},
		{resource + "/", false, true},
		{"https://api.example.com/V1", false, false},
		{"https://api.example.com", false, false},
	}
	for _, canonical := range []bool{false, true} {
		f := newFixture(t, "ES256", func(c *jwks.ValidatorConfig) { c.Audience, c.CanonicalAudience = resource, canonical })
		for _, tt := range tests {
			claims := f.iss.Claims("worker", "worker")
			claims["aud"] = []string{tt.aud}
			_, err := f.validator.Validate(context.Background(), f.iss.Sign(claims))
			want := tt.exact
			if canonical {
				want = tt.canonical
			}
			if want {
				assert.NoError(t, err, "aud %q, canonical %v", tt.aud, canonical)
			} else {
				assert.ErrorIs(t, err, jwks.ErrAudience, "aud %q, canonical %v", tt.aud, canonical)
			}
		}
	}
}
