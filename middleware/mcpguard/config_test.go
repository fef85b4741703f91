package mcpguard_test

import (
	"context"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/middleware/mcpguard"
	"github.com/olympus/aegis/middleware/resource"
	"github.com/olympus/aegis/scopes"
)

func TestNew_Config(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Audience: "https://mcp.example.com/mcp"})
	jwt, err := core.NewJWT(core.JWTConfig{Issuer: iss.URL, Audience: "https://mcp.example.com/mcp"})
	require.NoError(t, err)
	ok := middleware.Config{Issuer: iss.URL, Resource: "https://mcp.example.com/mcp", Logger: quiet()}
	tests := []struct {
		name    string
		cfg     mcpguard.Config
		wantErr []string
	}{
		{name: "issuer and resource", cfg: mcpguard.Config{Guard: ok}},
		{name: "no resource", cfg: mcpguard.Config{Guard: middleware.Config{Issuer: iss.URL, Audience: "x"}}, wantErr: []string{"Config.Guard.Resource is required"}},
		{name: "tokens in the query", cfg: mcpguard.Config{Guard: with(ok, func(c *middleware.Config) { c.Bearer.AllowQuery = true })}, wantErr: []string{"Authorization header only"}},
		{name: "tokens in the body", cfg: mcpguard.Config{Guard: with(ok, func(c *middleware.Config) { c.Bearer.AllowFormBody = true })}, wantErr: []string{"Authorization header only"}},
		{name: "negative body bound", cfg: mcpguard.Config{Guard: ok, MaxBodyBytes: -1}, wantErr: []string{"MaxBodyBytes"}},
		{name: "metadata for another resource", cfg: mcpguard.Config{Guard: ok, Metadata: resource.Metadata{Resource: "https://other.example.com/mcp"}}, wantErr: []string{"Config.Metadata.Resource"}},
		{name: "validator without authorization servers", cfg: mcpguard.Config{Guard: middleware.Config{Validator: jwt, Resource: "https://mcp.example.com/mcp"}}, wantErr: []string{"AuthorizationServers is required"}},
		{name: "validator with authorization servers", cfg: mcpguard.Config{Guard: middleware.Config{Validator: jwt, Resource: "https://mcp.example.com/mcp"}, Metadata: resource.Metadata{AuthorizationServers: []string{iss.URL}}}},
		{name: "bad authorization server", cfg: mcpguard.Config{Guard: ok, Metadata: resource.Metadata{AuthorizationServers: []string{"/relative"}}}, wantErr: []string{"Config.Metadata"}},
		{name: "the zero Requirement", cfg: mcpguard.Config{Guard: ok, Tools: map[string][]scopes.Requirement{"t": {{}}}}, wantErr: []string{`Config.Tools["t"] holds the zero`}},
		{name: "every problem at once", cfg: mcpguard.Config{Guard: middleware.Config{Bearer: middleware.BearerConfig{AllowQuery: true}}, MaxBodyBytes: -1},
			wantErr: []string{"Config.Guard.Resource is required", "Authorization header only", "MaxBodyBytes", "Config.Issuer is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := mcpguard.New(tt.cfg)
			if len(tt.wantErr) == 0 {
				require.NoError(t, err)
				require.NotNil(t, g)
				assert.NotNil(t, g.HTTP())
				assert.NotNil(t, g.MetadataHandler())
				return
			}
			require.Error(t, err)
			assert.Nil(t, g)
			for _, want := range tt.wantErr {
				assert.ErrorContains(t, err, want)
			}
		})
	}
}

func with(c middleware.Config, f func(*middleware.Config)) middleware.Config {
	f(&c)
	return c
}

// TestMetadata_ScopesSupported: the tools' scopes are added, once and
// sorted, after any the configuration lists (RFC 9728 §2 scopes_supported).
func TestMetadata_ScopesSupported(t *testing.T) {
	tests := []struct {
		name string
		cfg  mcpguard.Config
		want []string
	}{
		{"none", mcpguard.Config{}, nil},
		{"tools", mcpguard.Config{Tools: map[string][]scopes.Requirement{"b": {scopes.All("b:w", "a:r")}, "a": {scopes.Any("a:r")}, "c": nil}}, []string{"a:r", "b:w"}},
		{"listed first", mcpguard.Config{Metadata: resource.Metadata{ScopesSupported: []string{"z", "a:r"}}, Tools: map[string][]scopes.Requirement{"a": {scopes.All("a:r", "b:r")}}}, []string{"z", "a:r", "b:r"}},
		{"default and require", mcpguard.Config{DefaultTool: []scopes.Requirement{scopes.All("d")}, Require: []scopes.Requirement{scopes.All("mcp")}}, []string{"d", "mcp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Guard = middleware.Config{Issuer: "https://hydra.example.com/", Resource: "https://mcp.example.com/mcp"}
			g, err := mcpguard.New(tt.cfg)
			require.NoError(t, err)
			m := g.Metadata()
			assert.Equal(t, tt.want, m.ScopesSupported)
			assert.Equal(t, []string{"https://hydra.example.com/"}, m.AuthorizationServers)
			assert.Equal(t, "https://mcp.example.com/mcp", m.Resource)
			assert.Equal(t, "https://mcp.example.com/.well-known/oauth-protected-resource/mcp", g.MetadataURL())
		})
	}
}

// TestToolMiddleware: the SDK-level check, after the SDK decoded the call,
// for calls that reach the server without passing Handler's check.
func TestToolMiddleware(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Audience: "https://mcp.example.com/mcp"})
	g, err := mcpguard.New(mcpguard.Config{
		Guard: middleware.Config{Issuer: iss.URL, Resource: "https://mcp.example.com/mcp", Logger: quiet()},
		Tools: map[string][]scopes.Requirement{"write": {scopes.All("notes:write")}},
	})
	require.NoError(t, err)
	ctx := context.Background()
	admitted := func(s ...string) *auth.TokenInfo {
		p, err := g.HTTP().Validate(ctx, iss.M2M("agent", s...))
		require.NoError(t, err)
		return &auth.TokenInfo{Extra: map[string]any{mcpguard.ExtraPrincipal: p}}
	}
	forged := &auth.TokenInfo{Extra: map[string]any{mcpguard.ExtraPrincipal: core.NewPrincipal(core.Principal{Subject: "x", Scopes: scopes.MustNew("notes:write")}, nil)}}
	tests := []struct {
		name    string
		method  string
		tool    string
		info    *auth.TokenInfo
		wantErr string
	}{
		{"granted", "tools/call", "write", admitted("notes:write"), ""},
		{"not granted", "tools/call", "write", admitted("notes:read"), "insufficient_scope"},
		{"no token info", "tools/call", "write", nil, "invalid_token"},
		{"a Principal this Guard did not admit", "tools/call", "write", forged, "invalid_token"},
		{"tool without requirement", "tools/call", "read", nil, ""},
		{"another method", "tools/list", "", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ran := false
			next := func(context.Context, string, mcp.Request) (mcp.Result, error) {
				ran = true
				return &mcp.CallToolResult{}, nil
			}
			req := &mcp.CallToolRequest{Params: &mcp.CallToolParamsRaw{Name: tt.tool}, Extra: &mcp.RequestExtra{TokenInfo: tt.info}}
			_, err := g.ToolMiddleware()(next)(ctx, tt.method, req)
			if tt.wantErr == "" {
				require.NoError(t, err)
				assert.True(t, ran)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
			assert.False(t, ran)
		})
	}
}

func TestPrincipalFrom(t *testing.T) {
	p := core.NewPrincipal(core.Principal{Subject: "alice"}, nil)
	tests := []struct {
		name string
		req  mcp.Request
		want *core.Principal
	}{
		{"nil", nil, nil},
		{"no extra", &mcp.CallToolRequest{}, nil},
		{"no token info", &mcp.CallToolRequest{Extra: &mcp.RequestExtra{}}, nil},
		{"token info of another verifier", &mcp.CallToolRequest{Extra: &mcp.RequestExtra{TokenInfo: &auth.TokenInfo{UserID: "alice"}}}, nil},
		{"from Handler", &mcp.CallToolRequest{Extra: &mcp.RequestExtra{TokenInfo: &auth.TokenInfo{Extra: map[string]any{mcpguard.ExtraPrincipal: p}}}}, p},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := mcpguard.PrincipalFrom(tt.req)
			assert.Equal(t, tt.want != nil, ok)
			assert.Same(t, tt.want, got)
		})
	}
}
