// Package bench compares Aegis with its peers on the same tokens: the
// stacks under comparison (this file), a bounded loopback load generator
// (load.go), Go benchmarks (peers_test.go) and cmd/loadtest. It is a
// separate module so that the peers never enter Aegis's own go.mod.
package bench

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	jwtmiddleware "github.com/auth0/go-jwt-middleware/v2"
	"github.com/auth0/go-jwt-middleware/v2/validator"
	"github.com/go-chi/jwtauth/v5"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/scopes"
)

// Leeway is the clock skew every stack tolerates (Aegis's default).
const Leeway = 30 * time.Second

// Body is what the protected handler answers.
var Body = []byte(`{"data":[1,2,3]}` + "\n")

// Handler is the protected API handler, the same behind every stack: it
// writes a small fixed JSON body with 200.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(Body)
	})
}

// Stack is one handler under comparison.
type Stack struct {
	Name    string
	Handler http.Handler
}

// Stacks returns the stacks in table order: the no-auth ceiling, Aegis as
// configured by default (verified-token cache on), Aegis with the cache
// off, jwtauth and go-jwt-middleware, each guarding Handler for tokens of
// iss.
func Stacks(iss *jwkstest.Issuer) ([]Stack, error) {
	aegis, err := Aegis(iss, &core.CacheConfig{})
	if err != nil {
		return nil, err
	}
	aegisNoCache, err := Aegis(iss, nil)
	if err != nil {
		return nil, err
	}
	gojwt, err := GoJWTMiddleware(iss)
	if err != nil {
		return nil, err
	}
	return []Stack{
		{"no-auth", NoAuth()},
		{"aegis", aegis},
		{"aegis-nocache", aegisNoCache},
		{"jwtauth", JWTAuth(iss)},
		{"go-jwt-middleware", gojwt},
	}, nil
}

// NoAuth is the handler alone: the ceiling.
func NoAuth() http.Handler { return Handler() }

// Aegis is the README's net/http quick start: keys discovered from the
// issuer (fetched over loopback on the first request, then cached), iss and
// aud checked, the route needing data:read; cache configures the cache of
// verified tokens (nil: off, every token is verified).
func Aegis(iss *jwkstest.Issuer, cache *core.CacheConfig) (http.Handler, error) {
	jwt, err := core.NewJWT(core.JWTConfig{Issuer: iss.URL, Audience: iss.Audience})
	if err != nil {
		return nil, fmt.Errorf("aegis: %w", err)
	}
	var v core.Validator = jwt
	if cache != nil {
		v = core.Cached(jwt, *cache)
	}
	guard, err := middleware.New(middleware.Config{Validator: v})
	if err != nil {
		return nil, fmt.Errorf("aegis: %w", err)
	}
	return guard.Protect(Handler(), scopes.All("data:read")), nil
}

// JWTAuth is github.com/go-chi/jwtauth/v5 with the issuer's current public
// key and its algorithm only (RS256 by default), iss and aud checked by
// jwx's validator, Verifier then Authenticator.
func JWTAuth(iss *jwkstest.Issuer) http.Handler {
	ja := jwtauth.New(iss.CurrentKey().Algorithm, nil, publicKey(iss),
		jwt.WithIssuer(iss.URL),
		jwt.WithAudience(iss.Audience),
		jwt.WithAcceptableSkew(Leeway),
	)
	return jwtauth.Verifier(ja)(jwtauth.Authenticator(ja)(Handler()))
}

// GoJWTMiddleware is github.com/auth0/go-jwt-middleware/v2 with its
// validator package: the algorithm of the issuer's current key (RS256 by
// default), iss and aud checked, a key func returning the issuer's public
// key (no network).
func GoJWTMiddleware(iss *jwkstest.Issuer) (http.Handler, error) {
	pub := publicKey(iss)
	v, err := validator.New(
		func(context.Context) (any, error) { return pub, nil },
		validator.SignatureAlgorithm(iss.CurrentKey().Algorithm),
		iss.URL,
		[]string{iss.Audience},
		validator.WithAllowedClockSkew(Leeway),
	)
	if err != nil {
		return nil, fmt.Errorf("go-jwt-middleware: %w", err)
	}
	return jwtmiddleware.New(v.ValidateToken).CheckJWT(Handler()), nil
}

func publicKey(iss *jwkstest.Issuer) crypto.PublicKey { return iss.CurrentKey().Public() }

// Mint mints n distinct M2M tokens with scope data:read, spread over the
// client IDs names(i), on every core (RSA-2048 signing takes ~2 ms), as
// iss.M2M would, but without the issuer remembering them. The tokens share
// one backing string.
func Mint(iss *jwkstest.Issuer, n int, names func(i int) string) []string {
	out := make([]string, n)
	key := iss.CurrentKey()
	header, err := json.Marshal(map[string]any{"alg": key.Algorithm, "kid": key.ID, "typ": "JWT"})
	if err != nil {
		panic(err)
	}
	workers := max(1, min(runtime.GOMAXPROCS(0), n))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				out[i] = mint(iss, header, names(i))
			}
		})
	}
	wg.Wait()
	return pack(out)
}

// mint is iss.M2M(clientID, "data:read") with the current key, except
// that the issuer does not remember the token (for introspection): a pool
// of 100,000 remembered tokens is over 200 MB of small objects that every
// garbage collection of the load test would mark, at the expense of
// whichever stack it is driving.
func mint(iss *jwkstest.Issuer, header []byte, clientID string) string {
	claims, err := json.Marshal(iss.Claims(clientID, clientID, "data:read"))
	if err != nil {
		panic(err)
	}
	return jwkstest.SignRaw(iss.CurrentKey(), header, claims)
}

// pack returns tokens re-sliced from one string holding them all, so that
// a pool of 100,000 tokens is one object to the garbage collector rather
// than 100,000 (whose marking, in every cycle, the load test would charge
// to whichever stack it was driving).
func pack(tokens []string) []string {
	all := strings.Join(tokens, "")
	out := make([]string, len(tokens))
	for i, t := range tokens {
		out[i], all = all[:len(t)], all[len(t):]
	}
	return out
}

// Tamper returns token with one character in the middle of its signature
// changed: still well-formed, canonical base64url, with a bad signature.
func Tamper(token string) string {
	last := strings.LastIndexByte(token, '.')
	i := last + 1 + (len(token)-last-1)/2
	c := byte('A')
	if token[i] == 'A' {
		c = 'B'
	}
	return token[:i] + string(c) + token[i+1:]
}
