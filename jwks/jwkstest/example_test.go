package jwkstest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/scopes"
)

// Testing your own handler behind Aegis with fixture tokens. In a test,
// use NewIssuer(t, …), which stops the issuer when the test ends.
func Example() {
	issuer := jwkstest.Start(jwkstest.Config{})
	defer issuer.Close()
	guard, err := middleware.New(middleware.Config{Issuer: issuer.URL, Audience: issuer.Audience})
	if err != nil {
		panic(err)
	}
	yourHandler := guard.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), scopes.All("data:read"))

	for _, token := range []string{
		issuer.M2M("nightly-data-sync", "data:read"),
		issuer.User("user-42", "web-app", "alice@example.com", "data:read"),
		issuer.M2M("nightly-data-sync"), // no scope
		issuer.Expired("nightly-data-sync", "data:read"),
		issuer.WrongAudience("nightly-data-sync", "data:read"),
	} {
		req := httptest.NewRequest("GET", "/data", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		yourHandler.ServeHTTP(rec, req)
		fmt.Println(rec.Code)
	}
	// Output:
	// 200
	// 200
	// 403
	// 401
	// 401
}
