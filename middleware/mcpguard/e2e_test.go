package mcpguard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}`

// TestEndToEnd_MCP_2025_11_25 runs the MCP authorization flow of revision
// 2025-11-25 against an SDK server behind a Guard, with the SDK's own
// client, in both of the SDK's HTTP modes:
//
//  1. Authorization Server Discovery: a request without a token gets 401
//     whose challenge names the metadata (RFC 9728 §5.1, RFC 6750 §3).
//  2. The client fetches the metadata from the path-inserted well-known
//     URL (RFC 9728 §3.1) and finds the issuer in authorization_servers;
//     resource echoes the resource identifier exactly (RFC 9728 §3.3).
//  3. With a token for the resource (RFC 8707 audience), tools/list works.
//  4. Runtime Insufficient Scope Errors: a tool whose scope the token lacks
//     gets 403 insufficient_scope with scope= and resource_metadata=
//     (RFC 6750 §3.1); the session survives it, and a tool whose scope the
//     token has runs and sees the caller.
func TestEndToEnd_MCP_2025_11_25(t *testing.T) {
	for _, mode := range []struct {
		name      string
		stateless bool
	}{{"stateful", false}, {"stateless", true}} {
		t.Run(mode.name, func(t *testing.T) {
			s := newStack(t, mode.stateless, nil)
			ctx := context.Background()

			// 1. No token: 401, the challenge carries resource_metadata.
			req, err := http.NewRequest(http.MethodPost, s.resource, bytes.NewBufferString(initialize))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			resp, err := s.srv.Client().Do(req)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			challenge := resp.Header.Get("WWW-Authenticate")
			assert.Equal(t, `Bearer realm="mcp", resource_metadata="`+s.metaURL+`"`, challenge)

			// 2. The SDK's discovery: parse the challenge, fetch the
			// metadata, check resource, find the issuer.
			parsed, err := oauthex.ParseWWWAuthenticate([]string{challenge})
			require.NoError(t, err)
			require.Len(t, parsed, 1)
			metaURL := parsed[0].Params["resource_metadata"]
			require.Equal(t, s.metaURL, metaURL)
			prm, err := oauthex.GetProtectedResourceMetadata(ctx, metaURL, s.resource, s.srv.Client())
			require.NoError(t, err)
			assert.Equal(t, s.resource, prm.Resource)
			assert.Contains(t, prm.AuthorizationServers, s.iss.URL)
			assert.Equal(t, []string{"notes:read", "notes:write"}, prm.ScopesSupported, "the union of the tools' scopes")
			assert.Equal(t, []string{"header"}, prm.BearerMethodsSupported)

			// 3. A token for the resource: the SDK client connects and lists.
			cs, bt := s.connect(t, s.iss.User("alice", "notes-app", "alice@example.com", "notes:read"))
			tools, err := cs.ListTools(ctx, nil)
			require.NoError(t, err)
			var names []string
			for _, tool := range tools.Tools {
				names = append(names, tool.Name)
			}
			sort.Strings(names)
			assert.Equal(t, []string{"delete_notes", "echo", "ping", "read_notes"}, names)

			// 4a. A tool needing notes:write: 403 with the runtime scope
			// challenge; the tool never runs.
			_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "delete_notes", Arguments: map[string]any{}})
			require.Error(t, err)
			assert.Contains(t, err.Error(), "insufficient_scope")
			forbidden := bt.withStatus(http.StatusForbidden)
			require.Len(t, forbidden, 1)
			assert.Equal(t, `Bearer realm="mcp", error="insufficient_scope", error_description="The access token does not grant the scope this resource needs", scope="notes:write", resource_metadata="`+s.metaURL+`"`, forbidden[0].challenge)
			assert.Zero(t, s.runs("delete_notes"))

			// 4b. The session goes on: a tool whose scope the token has runs
			// and sees the caller, as the Aegis Principal and as the SDK's
			// auth.TokenInfo.
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "read_notes", Arguments: map[string]any{}})
			require.NoError(t, err)
			require.False(t, res.IsError)
			var got caller
			raw, err := json.Marshal(res.StructuredContent)
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(raw, &got))
			assert.Equal(t, caller{
				Subject: "alice", ClientID: "notes-app", Scopes: []string{"notes:read"},
				TokenInfoUser: "alice", TokenInfoScopes: []string{"notes:read"},
				ContextSubject: "alice",
			}, got)
			assert.Equal(t, 1, s.runs("read_notes"))

			// Tools listed with no requirement, or not listed, need only a
			// valid token.
			for _, name := range []string{"ping", "echo"} {
				res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: map[string]any{}})
				require.NoError(t, err, name)
				assert.False(t, res.IsError, name)
				assert.Equal(t, 1, s.runs(name), name)
			}
		})
	}
}
