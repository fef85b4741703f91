package mcpguard_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/mcpguard"
	"github.com/olympus/aegis/scopes"
)

// An MCP server whose delete_note tool needs notes:write; every other
// tool needs only a valid token from the issuer, for this resource.
func Example() {
	g, err := mcpguard.New(mcpguard.Config{
		Guard: middleware.Config{
			Issuer:   "https://hydra.example.com/",
			Resource: "https://mcp.example.com/mcp", // also the tokens' audience
		},
		Tools: map[string][]scopes.Requirement{"delete_note": {scopes.All("notes:write")}},
	})
	if err != nil {
		log.Fatal(err)
	}

	server := mcp.NewServer(&mcp.Implementation{Name: "notes", Version: "v1.0.0"}, nil)
	server.AddReceivingMiddleware(g.ToolMiddleware())
	mcp.AddTool(server, &mcp.Tool{Name: "delete_note"}, func(ctx context.Context, req *mcp.CallToolRequest, in struct{ ID string }) (*mcp.CallToolResult, any, error) {
		p, _ := mcpguard.PrincipalFrom(req)
		log.Printf("%s (client %s) deletes note %s", p.Subject, p.ClientID, in.ID)
		return &mcp.CallToolResult{}, nil, nil
	})

	mux := http.NewServeMux()
	mux.Handle("/mcp", g.Handler(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)))
	mux.Handle(g.MetadataPath(), g.MetadataHandler())

	// A request without a token learns where the metadata is.
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "https://mcp.example.com/mcp", nil))
	fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"))

	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://mcp.example.com"+g.MetadataPath(), nil))
	fmt.Println(rec.Body.String())
	// Output:
	// 401 Bearer realm="mcp", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
	// {"resource":"https://mcp.example.com/mcp","authorization_servers":["https://hydra.example.com/"],"scopes_supported":["notes:write"],"bearer_methods_supported":["header"],"dpop_signing_alg_values_supported":["RS256","RS384","RS512","PS256","PS384","PS512","ES256","ES384","ES512","EdDSA","Ed25519"]}
}
