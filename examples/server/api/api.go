// Package api is the example API that examples/server serves and
// examples/demo runs in-process: a chi router protected by an Aegis Guard.
package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/middleware/resource"
	"github.com/olympus/aegis/scopes"
)

// Scopes are the scopes the API's routes need, for its RFC 9728
// metadata.
var Scopes = []string{"data:read", "data:write"}

// AdminStepUp is what GET /admin requires of the user's authentication
// (RFC 9470): multi-factor, within the last 300 s.
var AdminStepUp = core.StepUp{ACRValues: []string{"mfa"}, MaxAge: 300 * time.Second}

// NewRouter returns the example API behind guard:
//
//	GET  /healthz  public
//	GET  /data     needs data:read
//	POST /data     needs data:write
//	GET  /whoami   needs any valid token
//	GET  /admin    needs data:read and a user who authenticated with acr
//	               mfa within the last 300 s (AdminStepUp)
//
// With meta, it also serves the resource's RFC 9728 metadata at its
// well-known path (resource.WellKnownPath).
func NewRouter(guard *middleware.Guard, meta *resource.Metadata) (http.Handler, error) {
	r := chi.NewRouter()
	r.NotFound(problem(http.StatusNotFound))
	r.MethodNotAllowed(problem(http.StatusMethodNotAllowed))
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]string{"status": "ok"})
	})
	if meta != nil {
		h, err := resource.Handler(*meta)
		if err != nil {
			return nil, err
		}
		path, err := resource.WellKnownPath(meta.Resource)
		if err != nil {
			return nil, err
		}
		r.Method(http.MethodGet, path, h)
		r.Method(http.MethodHead, path, h)
		r.Method(http.MethodOptions, path, h) // CORS preflight: the document is public
	}
	r.Group(func(r chi.Router) {
		r.Use(guard.Authenticate)
		r.With(guard.Require(scopes.All("data:read"))).Get("/data", listData)
		r.With(guard.Require(scopes.All("data:write"))).Post("/data", storeData)
		r.Get("/whoami", whoami)
		r.With(guard.Require(scopes.All("data:read")), guard.RequireUserAuthentication(AdminStepUp)).Get("/admin", whoami)
	})
	return r, nil
}

// WhoAmI is the body of GET /whoami.
type WhoAmI struct {
	Kind     middleware.Kind `json:"kind"`
	Subject  string          `json:"subject"`
	ClientID string          `json:"client_id"`
	Scopes   []string        `json:"scopes"`
	Email    string          `json:"email"`
}

func whoami(w http.ResponseWriter, r *http.Request) {
	p, _ := middleware.PrincipalFrom(r.Context())
	granted := p.Scopes.Strings()
	if granted == nil {
		granted = []string{}
	}
	writeJSON(w, WhoAmI{Kind: p.Kind, Subject: p.Subject, ClientID: p.ClientID, Scopes: granted, Email: p.Email})
}

func listData(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{"items": []string{"alpha", "beta", "gamma"}})
}

func storeData(w http.ResponseWriter, r *http.Request) {
	p, _ := middleware.PrincipalFrom(r.Context())
	writeJSON(w, map[string]any{"stored": true, "by": p.ClientID})
}

func problem(status int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(middleware.Problem{Type: "about:blank", Title: http.StatusText(status), Status: status})
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
