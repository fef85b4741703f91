package mcpguard_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/middleware/mcpguard"
	"github.com/olympus/aegis/scopes"
)

func call(id int, tool string) string {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": map[string]any{"name": tool, "arguments": map[string]any{}}})
	return string(b)
}

// post sends body to the stack's endpoint as an MCP client would.
func (s *stack) post(t *testing.T, token, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.resource, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(b)
}

// TestToolCallBodies sends raw JSON-RPC bodies to an SDK server (stateless,
// so that each POST stands alone) behind a Guard, with a token granting
// notes:read only. Whatever the body, delete_notes (notes:write) never
// runs, and no answer is a 500: the Guard reads each body as the SDK does
// (duplicate keys, keys differing in case, escapes, trailing data), refuses
// a forbidden call with the MCP 2025-11-25 runtime scope challenge (RFC 6750
// §3.1 insufficient_scope, RFC 9728 §5.1 resource_metadata), refuses a
// body that is not exactly one JSON value, and hands anything else to the
// SDK, which answers it.
func TestToolCallBodies(t *testing.T) {
	s := newStack(t, true, func(c *mcpguard.Config) { c.MaxBodyBytes = 4096 })
	token := s.iss.M2M("agent", "notes:read")
	writeChallenge := `Bearer realm="mcp", error="insufficient_scope", error_description="The access token does not grant the scope this resource needs", scope="notes:write", resource_metadata="` + s.metaURL + `"`
	tests := []struct {
		name      string
		body      string
		status    int    // 0: any but 500
		challenge string // checked when set
		runs      string // the tool that must have run, if any
		contains  string // in the answer's body, when set
	}{
		{name: "allowed call", body: call(7, "read_notes"), status: 200, runs: "read_notes"},
		{name: "forbidden call", body: call(7, "delete_notes"), status: 403, challenge: writeChallenge, contains: `"id":7`},
		{name: "forbidden call, string id", body: `{"jsonrpc":"2.0","id":"x-1","method":"tools/call","params":{"name":"delete_notes"}}`, status: 403, challenge: writeChallenge, contains: `"id":"x-1"`},
		{name: "escaped name", body: `{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"delete\u005fnotes"}}`, status: 403, challenge: writeChallenge},
		{name: "batch with a forbidden call", body: "[" + call(1, "read_notes") + "," + call(2, "delete_notes") + "]", status: 403,
			challenge: `Bearer realm="mcp", error="insufficient_scope", error_description="The access token does not grant the scope this resource needs", scope="notes:read notes:write", resource_metadata="` + s.metaURL + `"`, contains: `"id":2`},
		{name: "batch of allowed calls", body: "[" + call(1, "read_notes") + "," + call(2, "ping") + "]", status: 200, runs: "ping"},
		{name: "duplicate method keys", body: `{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"delete_notes"}}`},
		{name: "method key in another case", body: `{"jsonrpc":"2.0","id":1,"Method":"tools/call","method":"tools/list","params":{"name":"delete_notes"}}`},
		{name: "duplicate name keys", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_notes","name":"delete_notes"}}`},
		{name: "name key in another case", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"Name":"delete_notes","name":"read_notes"}}`},
		{name: "trailing data", body: call(1, "delete_notes") + ` {"jsonrpc":"2.0"}`, status: 400},
		{name: "byte order mark", body: "\xef\xbb\xbf" + call(1, "delete_notes")},
		{name: "params not an object", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[1]}`},
		{name: "a response, not a request", body: `{"jsonrpc":"2.0","id":1,"result":{}}`},
		// Not exactly one JSON value: refused by the Guard itself, since
		// the SDK's decoder reads the first value and ignores the rest.
		{name: "malformed JSON", body: `{"jsonrpc":`, status: 400, contains: "Parse error"},
		{name: "empty body", body: ``, status: 400},
		{name: "batch then trailing bytes", body: "[" + call(1, "delete_notes") + "] x", status: 400},
		{name: "batch then a stray bracket", body: "[" + call(1, "delete_notes") + "]]", status: 400},
		{name: "two values", body: call(1, "read_notes") + call(2, "delete_notes"), status: 400},
		{name: "deeply nested", body: strings.Repeat("[", 1500) + strings.Repeat("]", 1500), status: 400},
		{name: "too large to check", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_notes","arguments":{"pad":"` + strings.Repeat("x", 5000) + `"}}}`, status: 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.runs(tt.runs)
			status, h, body := s.post(t, token, tt.body)
			assert.NotEqual(t, http.StatusInternalServerError, status, body)
			if tt.status != 0 {
				assert.Equal(t, tt.status, status, body)
			}
			if tt.challenge != "" {
				assert.Equal(t, tt.challenge, h.Get("WWW-Authenticate"))
			}
			if status == http.StatusForbidden {
				assert.Contains(t, body, `"code":-32003`)
				assert.Contains(t, body, `"scope":"notes:`)
			}
			if tt.contains != "" {
				assert.Contains(t, body, tt.contains)
			}
			if tt.runs != "" {
				assert.Equal(t, before+1, s.runs(tt.runs))
			}
			assert.Zero(t, s.runs("delete_notes"), "a forbidden tool ran")
		})
	}
}

// TestRefusalsBeforeTools: the Guard's own refusals, before any body is
// read, carry RFC 6750 §3.1 error codes and RFC 9728 §5.1 resource_metadata
// (unlike the SDK's RequireBearerToken, go-sdk#1134).
func TestRefusalsBeforeTools(t *testing.T) {
	s := newStack(t, true, nil)
	tests := []struct {
		name      string
		token     string
		status    int
		challenge string
	}{
		{"no token", "", 401, `Bearer realm="mcp", resource_metadata="` + s.metaURL + `"`},
		{"expired token", s.iss.Expired("agent", "notes:read"), 401, `Bearer realm="mcp", error="invalid_token", error_description="The access token expired", resource_metadata="` + s.metaURL + `"`},
		{"token for another resource (RFC 8707)", s.iss.WrongAudience("agent", "notes:read"), 401, ""},
		{"valid token", s.iss.M2M("agent"), 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, body := s.post(t, tt.token, call(1, "ping"))
			require.Equal(t, tt.status, status, body)
			if tt.status == 200 {
				assert.Empty(t, h.Get("WWW-Authenticate"))
				return
			}
			assert.Contains(t, h.Get("WWW-Authenticate"), `resource_metadata="`+s.metaURL+`"`)
			assert.Contains(t, h.Get("WWW-Authenticate"), `realm="mcp"`)
			if tt.challenge != "" {
				assert.Equal(t, tt.challenge, h.Get("WWW-Authenticate"))
			}
			assert.Zero(t, s.runs("ping"))
		})
	}
}

// TestRequireAndDefaultTool: Config.Require guards every request, and
// Config.DefaultTool every tool Config.Tools does not list; a tool listed
// with the zero Requirement is exempt from DefaultTool.
func TestRequireAndDefaultTool(t *testing.T) {
	s := newStack(t, true, func(c *mcpguard.Config) {
		c.Require = []scopes.Requirement{scopes.All("mcp")}
		c.DefaultTool = []scopes.Requirement{scopes.All("notes:admin")}
	})
	tests := []struct {
		name      string
		scopes    []string
		body      string
		status    int
		challenge string
	}{
		{"no mcp scope", []string{"notes:read"}, call(1, "read_notes"), 403, `Bearer realm="mcp", error="insufficient_scope", error_description="The access token does not grant the scope this resource needs", scope="mcp", resource_metadata="` + s.metaURL + `"`},
		{"unlisted tool takes the default", []string{"mcp"}, call(1, "echo"), 403, `Bearer realm="mcp", error="insufficient_scope", error_description="The access token does not grant the scope this resource needs", scope="notes:admin", resource_metadata="` + s.metaURL + `"`},
		{"unlisted tool with the default scope", []string{"mcp", "notes:admin"}, call(1, "echo"), 200, ""},
		{"tool listed with no requirement", []string{"mcp"}, call(1, "ping"), 200, ""},
		{"tools/list needs only Require", []string{"mcp"}, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, body := s.post(t, s.iss.M2M("agent", tt.scopes...), tt.body)
			require.Equal(t, tt.status, status, body)
			assert.Equal(t, tt.challenge, h.Get("WWW-Authenticate"))
		})
	}
	assert.Equal(t, []string{"mcp", "notes:admin", "notes:read", "notes:write"}, s.guard.Metadata().ScopesSupported)
}

func TestMetadataHandler_RFC9728(t *testing.T) {
	s := newStack(t, true, nil)
	tests := []struct {
		method string
		status int
	}{{http.MethodGet, 200}, {http.MethodHead, 200}, {http.MethodPost, 405}}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, s.metaURL, bytes.NewReader(nil))
			require.NoError(t, err)
			resp, err := s.srv.Client().Do(req)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			require.Equal(t, tt.status, resp.StatusCode)
			if tt.method != http.MethodGet {
				return
			}
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			assert.JSONEq(t, `{"resource":"`+s.resource+`","authorization_servers":["`+s.iss.URL+`"],"scopes_supported":["notes:read","notes:write"],"bearer_methods_supported":["header"],"dpop_signing_alg_values_supported":["RS256","RS384","RS512","PS256","PS384","PS512","ES256","ES384","ES512","EdDSA","Ed25519"]}`, string(body))
		})
	}
	assert.Equal(t, s.metaURL, s.guard.MetadataURL())
	assert.Equal(t, "/.well-known/oauth-protected-resource/mcp", s.guard.MetadataPath())
}
