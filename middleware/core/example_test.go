package core_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/introspect"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/scopes"
)

// Validators are values: here JWTs are checked locally (and cached once
// verified) while Hydra's opaque tokens are introspected. The Checker then
// decides for any transport.
func ExampleHybrid() {
	issuer := jwkstest.Start(jwkstest.Config{}) // stands in for Athena IAM
	defer issuer.Close()

	jwt, err := core.NewJWT(core.JWTConfig{Issuer: issuer.URL, Audience: issuer.Audience})
	if err != nil {
		panic(err)
	}
	opaque, err := core.NewIntrospection(introspect.Config{
		Issuer: issuer.URL, Audience: issuer.Audience,
		Endpoint: issuer.IntrospectionURL(), Auth: introspect.AuthNone,
	})
	if err != nil {
		panic(err)
	}
	checker, err := core.New(core.Config{Validator: core.Hybrid(core.Cached(jwt, core.CacheConfig{}), opaque)})
	if err != nil {
		panic(err)
	}

	for _, token := range []string{
		issuer.M2M("nightly-data-sync", "data:read"),
		issuer.OpaqueUser("alice", "web-app", "alice@example.com", "data:read"),
		issuer.M2M("report-reader", "reports:read"),
	} {
		v := checker.Check(context.Background(), core.Credential{Token: token}, scopes.All("data:read"))
		if v.Refusal != nil {
			fmt.Println("refused:", v.Refusal.Reason, v.Refusal.Class, v.Refusal.Scope)
			continue
		}
		fmt.Println("admitted:", v.Principal.Subject, v.Principal.Kind, v.Principal.Method)
	}
	// Output:
	// admitted: nightly-data-sync m2m jwt
	// admitted: alice user introspection
	// refused: insufficient_scope forbidden data:read
}

// ByIssuer routes a JWT by its iss before any network call: a token of an
// issuer not in the map is refused at once.
func ExampleByIssuer() {
	athena := jwkstest.Start(jwkstest.Config{})
	defer athena.Close()
	other := jwkstest.Start(jwkstest.Config{})
	defer other.Close()

	jwt, err := core.NewJWT(core.JWTConfig{Issuer: athena.URL, Audience: athena.Audience})
	if err != nil {
		panic(err)
	}
	checker, err := core.New(core.Config{Validator: core.ByIssuer(map[string]core.Validator{athena.URL: jwt})})
	if err != nil {
		panic(err)
	}
	_, err = checker.Validate(context.Background(), other.M2M("intruder"))
	var r *aegis.Refusal
	fmt.Println(errors.As(err, &r), r.Reason, other.JWKSFetches())
	// Output: true issuer_mismatch 0
}

// Configuration errors are reported all at once, naming the fields.
func ExampleNewJWT_errors() {
	_, err := core.NewJWT(core.JWTConfig{Audience: "https://api.example.com", AnyAudience: true, MaxTokenLength: -1})
	fmt.Println(err)
	// Output:
	// JWTConfig.Issuer is required
	// JWTConfig.Audience and AnyAudience contradict each other: set one
	// JWTConfig.MaxTokenLength -1 is negative
}
