package middleware_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/go-chi/chi/v5"

	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/middleware/dpop"
	"github.com/olympus/aegis/scopes"
)

// A chi API: every route needs a valid token, and each route its scopes.
func ExampleNew() {
	issuer := jwkstest.Start(jwkstest.Config{}) // stands in for Athena IAM
	defer issuer.Close()

	guard, err := middleware.New(middleware.Config{
		Issuer:   issuer.URL,      // e.g. "https://athena.example.com"
		Audience: issuer.Audience, // e.g. "https://api.example.com"
	})
	if err != nil {
		panic(err)
	}
	r := chi.NewRouter()
	r.Use(guard.Authenticate)
	r.With(guard.Require(scopes.All("data:read"))).Get("/data", func(w http.ResponseWriter, r *http.Request) {
		p, _ := middleware.PrincipalFrom(r.Context())
		fmt.Fprintf(w, "hello %s (%s)", p.Subject, p.Kind)
	})

	req := httptest.NewRequest("GET", "/data", nil)
	req.Header.Set("Authorization", "Bearer "+issuer.M2M("nightly-data-sync", "data:read"))
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Body.String())
	// Output: 200 hello nightly-data-sync (m2m)
}

// Plain net/http: Protect wraps each handler with its requirements.
func ExampleGuard_Protect() {
	issuer := jwkstest.Start(jwkstest.Config{})
	defer issuer.Close()
	guard, err := middleware.New(middleware.Config{Issuer: issuer.URL, Audience: issuer.Audience})
	if err != nil {
		panic(err)
	}
	write := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "stored") })
	mux := http.NewServeMux()
	mux.Handle("POST /data", guard.Protect(write, scopes.All("data:write")))

	req := httptest.NewRequest("POST", "/data", nil)
	req.Header.Set("Authorization", "Bearer "+issuer.M2M("report-reader", "data:read"))
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	fmt.Println(rec.Code)
	fmt.Println(rec.Header().Get("WWW-Authenticate"))
	// Output:
	// 403
	// Bearer realm="api", error="insufficient_scope", error_description="The access token does not grant the scope this resource needs", scope="data:write"
}

// Handlers read the caller from the request context; ClaimAs reads any
// other claim with its type.
func ExamplePrincipalFrom() {
	issuer := jwkstest.Start(jwkstest.Config{})
	defer issuer.Close()
	guard, err := middleware.New(middleware.Config{Issuer: issuer.URL, Audience: issuer.Audience})
	if err != nil {
		panic(err)
	}
	h := guard.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := middleware.PrincipalFrom(r.Context())
		ext, _ := middleware.ClaimAs[map[string]string](p, "ext")
		fmt.Println(p.Kind, p.Subject, p.ClientID, p.Email, p.Scopes, ext["email"])
	}))
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer "+issuer.User("user-42", "web-app", "alice@example.com", "openid"))
	h.ServeHTTP(httptest.NewRecorder(), req)
	// Output: user user-42 web-app alice@example.com openid alice@example.com
}

// Handlers can be tested without tokens by putting a Principal in the
// context, the way the Guard does.
func ExampleWithPrincipal() {
	handler := func(w http.ResponseWriter, r *http.Request) {
		p, _ := middleware.PrincipalFrom(r.Context())
		fmt.Fprint(w, p.Subject)
	}
	p := middleware.NewPrincipal(middleware.Principal{Kind: middleware.KindM2M, Subject: "svc", ClientID: "svc"}, nil)
	req := httptest.NewRequest("GET", "/", nil)
	req = req.WithContext(middleware.WithPrincipal(req.Context(), p))
	rec := httptest.NewRecorder()
	handler(rec, req)
	fmt.Println(rec.Body.String())
	// Output: svc
}

// The challenges of a refusal, as every transport renders them: under
// dpop.Allow a Bearer and a DPoP challenge, the error in the scheme the
// request used.
func ExampleChallenges() {
	c := middleware.NewChallenges("api", "", []string{"ES256", "EdDSA"})
	e := &middleware.Error{Status: 401, Code: "invalid_token", Description: "The access token expired"}
	for _, v := range c.Of(e, dpop.Allow, core.SchemeBearer) {
		fmt.Println(v)
	}
	fmt.Println(c.Of(e, dpop.Require, core.SchemeDPoP)[0])
	// Output:
	// Bearer realm="api", error="invalid_token", error_description="The access token expired"
	// DPoP realm="api", algs="ES256 EdDSA"
	// DPoP realm="api", error="invalid_token", error_description="The access token expired", algs="ES256 EdDSA"
}
