// Package mcpguard protects an MCP server built with the official Go SDK
// (github.com/modelcontextprotocol/go-sdk) as the MCP authorization
// specification (revision 2025-11-25) asks of a resource server: Aegis
// validates every request's bearer token, refuses with RFC 6750 challenges
// that carry error= and resource_metadata= (RFC 9728 §5.1), checks each
// tool's own scopes on tools/call (a 403 insufficient_scope challenge naming
// the tool's scope: the specification's runtime scope challenge), serves the
// resource's RFC 9728 metadata, and hands the caller to the tool handlers.
//
// Wrap the SDK's streamable HTTP handler with Guard.Handler and mount
// Guard.MetadataHandler at Guard.MetadataPath:
//
//	g, err := mcpguard.New(mcpguard.Config{
//		Guard: middleware.Config{Issuer: "https://hydra.example.com/", Resource: "https://mcp.example.com/mcp"},
//		Tools: map[string][]scopes.Requirement{"delete_note": {scopes.All("notes:write")}},
//	})
//	server.AddReceivingMiddleware(g.ToolMiddleware())
//	mux.Handle("/mcp", g.Handler(mcp.NewStreamableHTTPHandler(getServer, nil)))
//	mux.Handle(g.MetadataPath(), g.MetadataHandler())
//
// Tool handlers read the caller with PrincipalFrom(req); SDK-native code
// finds the same caller in req.Extra.TokenInfo (auth.TokenInfo: Scopes,
// Expiration, UserID = the token's subject).
//
// Sender-constrained tokens are checked by the middleware.Guard that
// Config.Guard configures: a DPoP-bound token (RFC 9449) comes with
// "Authorization: DPoP" and a proof for the endpoint's URL on every request
// (Config.Guard.DPoP sets the policy; Config.Guard.Proxy the external URL
// behind a proxy), a certificate-bound one (RFC 8705) over TLS with its
// client certificate. The metadata announces the DPoP algorithms unless
// the policy is dpop.Off.
//
// This package is its own module so that Aegis's root module does not
// depend on the MCP SDK.
package mcpguard
