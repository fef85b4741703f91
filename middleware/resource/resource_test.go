package resource_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/middleware/resource"
)

// TestWellKnownURL: RFC 9728 §3.1 inserts the well-known segment between
// the host and the path, drops the terminating slash of an empty path and
// keeps the query; §1.2 allows only https identifiers without a fragment
// (http here on loopback, for development).
func TestWellKnownURL(t *testing.T) {
	tests := []struct {
		resource, want, path string
	}{
		{"https://api.example.com", "https://api.example.com/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource"},
		{"https://api.example.com/", "https://api.example.com/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource"},
		{"https://api.example.com/v1", "https://api.example.com/.well-known/oauth-protected-resource/v1", "/.well-known/oauth-protected-resource/v1"},
		{"https://api.example.com/v1/", "https://api.example.com/.well-known/oauth-protected-resource/v1/", "/.well-known/oauth-protected-resource/v1/"},
		{"https://api.example.com:8443/mcp?tenant=a", "https://api.example.com:8443/.well-known/oauth-protected-resource/mcp?tenant=a", "/.well-known/oauth-protected-resource/mcp"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource"},
		{"http://localhost:8080/api", "http://localhost:8080/.well-known/oauth-protected-resource/api", "/.well-known/oauth-protected-resource/api"},
	}
	for _, tt := range tests {
		t.Run(tt.resource, func(t *testing.T) {
			got, err := resource.WellKnownURL(tt.resource)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			path, err := resource.WellKnownPath(tt.resource)
			require.NoError(t, err)
			assert.Equal(t, tt.path, path)
		})
	}
	for _, bad := range []string{"", "api", "/v1", "http://api.example.com", "https://api.example.com/#frag", "https://u:p@api.example.com",
		"ftp://api.example.com", "https://", "urn:example:api"} {
		t.Run("refused "+bad, func(t *testing.T) {
			_, err := resource.WellKnownURL(bad)
			assert.ErrorIs(t, err, resource.ErrResource)
		})
	}
}

// TestHandler: the document (RFC 9728 §2, §3.2) echoes resource exactly
// (§3.3), leaves empty members out, and is served to GET and HEAD.
func TestHandler(t *testing.T) {
	m := resource.Metadata{
		Resource:               "https://api.example.com/v1",
		AuthorizationServers:   []string{"https://athena.example.com"},
		ScopesSupported:        []string{"data:read", "data:write"},
		BearerMethodsSupported: []string{"header"},
		ResourceName:           "Example API",
		ResourceDocumentation:  "https://docs.example.com/api",
	}
	h, err := resource.Handler(m)
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/oauth-protected-resource/v1", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	assert.JSONEq(t, `{"resource":"https://api.example.com/v1","authorization_servers":["https://athena.example.com"],
		"scopes_supported":["data:read","data:write"],"bearer_methods_supported":["header"],
		"resource_name":"Example API","resource_documentation":"https://docs.example.com/api"}`, rec.Body.String())
	var doc map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &doc))
	assert.Equal(t, m.Resource, doc["resource"], "RFC 9728 §3.3: identical to the identifier")

	for _, tc := range []struct {
		method string
		status int
		body   bool
	}{{http.MethodHead, http.StatusOK, false}, {http.MethodPost, http.StatusMethodNotAllowed, true}, {http.MethodDelete, http.StatusMethodNotAllowed, true}} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, "/.well-known/oauth-protected-resource/v1", nil))
		assert.Equal(t, tc.status, rec.Code, tc.method)
		assert.Equal(t, tc.body, rec.Body.Len() > 0, tc.method)
	}

	// CORS: any web page may read the public document; a preflight
	// (here for MCP's MCP-Protocol-Version header) is answered.
	assert.Equal(t, "*", rec.Header().Get("Access-Control-Allow-Origin"))
	pre := httptest.NewRequest(http.MethodOptions, "/.well-known/oauth-protected-resource/v1", nil)
	pre.Header.Set("Origin", "https://app.example.com")
	pre.Header.Set("Access-Control-Request-Method", "GET")
	pre.Header.Set("Access-Control-Request-Headers", "mcp-protocol-version")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, pre)
	assert.Equal(t, http.StatusNoContent, rec.Code)
	assert.Equal(t, "*", rec.Header().Get("Access-Control-Allow-Origin"))
	assert.Equal(t, "GET, HEAD", rec.Header().Get("Access-Control-Allow-Methods"))
	assert.Equal(t, "*", rec.Header().Get("Access-Control-Allow-Headers"))
	assert.Empty(t, rec.Header().Get("Access-Control-Allow-Credentials"))
	assert.Zero(t, rec.Body.Len())

	for _, bad := range []resource.Metadata{
		{},
		{Resource: "http://api.example.com"},
		{Resource: "https://api.example.com", AuthorizationServers: []string{"athena"}},
	} {
		_, err := resource.Handler(bad)
		assert.Error(t, err, "%+v", bad)
	}
}
