package jwks_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
)

// Validating JWT access tokens without HTTP middleware.
func ExampleNewValidator() {
	issuer := jwkstest.Start(jwkstest.Config{Algorithm: "ES256"})
	defer issuer.Close()

	keys, err := jwks.NewRemote(jwks.Config{Issuer: issuer.URL}) // discovers jwks_uri
	if err != nil {
		panic(err)
	}
	v, err := jwks.NewValidator(jwks.ValidatorConfig{Issuer: issuer.URL, Audience: issuer.Audience, Keys: keys})
	if err != nil {
		panic(err)
	}
	claims, err := v.Validate(context.Background(), issuer.M2M("nightly-data-sync", "data:read"))
	fmt.Println(claims.Subject, claims.ClientID, err)

	_, err = v.Validate(context.Background(), issuer.Expired("nightly-data-sync"))
	fmt.Println(errors.Is(err, jwks.ErrExpired))
	// Output:
	// nightly-data-sync nightly-data-sync <nil>
	// true
}

// ParseSet keeps the keys fit to verify with and says why it left the others out.
func ExampleParseSet() {
	doc := `{"keys":[{"kty":"oct","kid":"shared","k":"c2VjcmV0"},` + string(jwkstest.NewKey("EdDSA").JWK()) + `]}`
	set, rejected, err := jwks.ParseSet([]byte(doc))
	if err != nil {
		panic(err)
	}
	fmt.Println(set.Len(), "key kept;", rejected[0].ID, "left out:", rejected[0].Reason)
	// Output: 1 key kept; shared left out: symmetric (oct) key
}
