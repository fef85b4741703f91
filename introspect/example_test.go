package introspect_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/olympus/aegis/introspect"
	"github.com/olympus/aegis/jwks/jwkstest"
)

// Validating an opaque token, and seeing its revocation once the cached
// answer has expired (here the cache is off).
func ExampleClient_Introspect() {
	issuer := jwkstest.Start(jwkstest.Config{}) // stands in for Hydra
	defer issuer.Close()
	client, err := introspect.New(introspect.Config{
		Endpoint: issuer.IntrospectionURL(), // Hydra: {admin}/admin/oauth2/introspect
		Issuer:   issuer.URL,
		Audience: issuer.Audience,
		Cache:    introspect.CacheConfig{TTL: -1},
	})
	if err != nil {
		panic(err)
	}
	token := issuer.OpaqueM2M("nightly-data-sync", "data:read")
	res, err := client.Introspect(context.Background(), token)
	fmt.Println(res.Subject, res.Scope, err)

	issuer.Revoke(token)
	_, err = client.Introspect(context.Background(), token)
	fmt.Println(errors.Is(err, introspect.ErrInactive))
	// Output:
	// nightly-data-sync data:read <nil>
	// true
}
