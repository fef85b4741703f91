package mcpguard_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/middleware/mcpguard"
	"github.com/olympus/aegis/scopes"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// caller is what a tool handler saw of its caller.
type caller struct {
	Subject  string   `json:"subject"`
	ClientID string   `json:"client_id"`
	Scopes   []string `json:"scopes"`
	// TokenInfoUser and TokenInfoScopes are the SDK's own auth.TokenInfo.
	TokenInfoUser   string   `json:"token_info_user"`
	TokenInfoScopes []string `json:"token_info_scopes"`
	// ContextSubject is core.PrincipalFrom on the handler's context.
	ContextSubject string `json:"context_subject"`
}

// stack is an MCP server built with the SDK, behind a Guard, served over
// HTTP on loopback, with a test issuer whose tokens name it in aud.
type stack struct {
	iss      *jwkstest.Issuer
	srv      *httptest.Server
	guard    *mcpguard.Guard
	resource string // the resource identifier: srv.URL + "/mcp"
	metaURL  string

	mu    sync.Mutex
	calls map[string]int // tool runs, by name
}

// The stack's tools: read_notes needs notes:read, delete_notes needs
// notes:write, ping is listed with no requirement, echo is not listed.
func newStack(t *testing.T, stateless bool, mutate func(*mcpguard.Config)) *stack {
	t.Helper()
	s := &stack{calls: make(map[string]int)}
	s.srv = httptest.NewUnstartedServer(nil)
	s.resource = "http://" + s.srv.Listener.Addr().String() + "/mcp"
	s.metaURL = "http://" + s.srv.Listener.Addr().String() + "/.well-known/oauth-protected-resource/mcp"
	s.iss = jwkstest.NewIssuer(t, jwkstest.Config{Audience: s.resource})

	cfg := mcpguard.Config{
		Guard: middleware.Config{Issuer: s.iss.URL, Resource: s.resource, Logger: quiet()},
		Tools: map[string][]scopes.Requirement{
			"read_notes":   {scopes.All("notes:read")},
			"delete_notes": {scopes.All("notes:write")},
			"ping":         nil,
		},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	g, err := mcpguard.New(cfg)
	require.NoError(t, err)
	s.guard = g

	server := mcp.NewServer(&mcp.Implementation{Name: "notes", Version: "v0.0.1"}, nil)
	server.AddReceivingMiddleware(g.ToolMiddleware())
	for _, name := range []string{"read_notes", "delete_notes", "ping", "echo"} {
		mcp.AddTool(server, &mcp.Tool{Name: name, Description: name}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, caller, error) {
			s.mu.Lock()
			s.calls[name]++
			s.mu.Unlock()
			var c caller
			if p, ok := mcpguard.PrincipalFrom(req); ok {
				c.Subject, c.ClientID, c.Scopes = p.Subject, p.ClientID, p.Scopes.Strings()
			}
			if ti := req.Extra.TokenInfo; ti != nil {
				c.TokenInfoUser, c.TokenInfoScopes = ti.UserID, ti.Scopes
			}
			if p, ok := core.PrincipalFrom(ctx); ok {
				c.ContextSubject = p.Subject
			}
			return nil, c, nil
		})
	}
	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, &mcp.StreamableHTTPOptions{Stateless: stateless})

	mux := http.NewServeMux()
	mux.Handle("/mcp", g.Handler(mcpHandler))
	mux.Handle(g.MetadataPath(), g.MetadataHandler())
	s.srv.Config.Handler = mux
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	return s
}

// runs is how often the named tool ran.
func (s *stack) runs(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[name]
}

// response is what the client's transport saw of one HTTP exchange.
type response struct {
	method    string
	status    int
	challenge string
}

// bearerTransport adds the token to every request, as an MCP client does
// (MCP 2025-11-25, Authorization, Token Requirements: the Authorization
// header on every request), and records the answers.
type bearerTransport struct {
	token string
	base  http.RoundTripper

	mu        sync.Mutex
	responses []response
}

func (b *bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	resp, err := b.base.RoundTrip(r)
	if resp != nil {
		b.mu.Lock()
		b.responses = append(b.responses, response{r.Method, resp.StatusCode, resp.Header.Get("WWW-Authenticate")})
		b.mu.Unlock()
	}
	return resp, err
}

// refusals are the answers with the status given.
func (b *bearerTransport) withStatus(status int) []response {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []response
	for _, r := range b.responses {
		if r.status == status {
			out = append(out, r)
		}
	}
	return out
}

// connect opens a session of the SDK's own client with token.
func (s *stack) connect(t *testing.T, token string) (*mcp.ClientSession, *bearerTransport) {
	t.Helper()
	bt := &bearerTransport{token: token, base: s.srv.Client().Transport}
	client := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "v0.0.1"}, nil)
	cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{
		Endpoint:   s.resource,
		HTTPClient: &http.Client{Transport: bt},
		MaxRetries: -1,
	}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cs.Close() })
	return cs, bt
}
