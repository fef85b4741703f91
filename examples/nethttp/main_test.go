package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
)

func TestNetHTTPRoutes(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	guard, err := middleware.New(middleware.Config{Issuer: iss.URL, Audience: iss.Audience})
	require.NoError(t, err)
	mux := newMux(guard)
	tests := []struct {
		method, path, token string
		status              int
	}{
		{method: "GET", path: "/healthz", status: 200},
		{method: "GET", path: "/data", status: 401},
		{method: "GET", path: "/data", token: iss.M2M("w", "data:read"), status: 200},
		{method: "POST", path: "/data", token: iss.M2M("w", "data:read"), status: 403},
		{method: "POST", path: "/data", token: iss.M2M("w", "data:write"), status: 200},
		{method: "GET", path: "/whoami", token: iss.User("u", "app", "u@example.com"), status: 200},
		{method: "GET", path: "/whoami", token: iss.Expired("w"), status: 401},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			assert.Equal(t, tc.status, rec.Code)
			if tc.status == http.StatusForbidden {
				assert.Contains(t, rec.Header().Get("WWW-Authenticate"), `scope="data:write"`)
			}
		})
	}
}
