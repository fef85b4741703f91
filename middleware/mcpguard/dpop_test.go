package mcpguard_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/dpop"
	"github.com/olympus/aegis/middleware/mcpguard"
)

// dpopTransport presents a DPoP-bound token with a fresh proof of key for
// every request the SDK's client makes (RFC 9449 §7.1), or, with bearer
// set, the same token as a Bearer token and no proof.
type dpopTransport struct {
	token  string
	key    *jwkstest.Key
	bearer bool
	base   http.RoundTripper

	mu       sync.Mutex
	statuses []int
}

func (d *dpopTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if d.bearer {
		r.Header.Set("Authorization", "Bearer "+d.token)
	} else {
		u := *r.URL
		u.RawQuery = ""
		r.Header.Set("Authorization", "DPoP "+d.token)
		r.Header.Set("DPoP", d.key.DPoPProof(jwkstest.DPoPProof{Method: r.Method, URL: u.String(), AccessToken: d.token}))
	}
	resp, err := d.base.RoundTrip(r)
	if resp != nil {
		d.mu.Lock()
		d.statuses = append(d.statuses, resp.StatusCode)
		d.mu.Unlock()
	}
	return resp, err
}

// TestDPoPBoundTokens runs the SDK's own client with a DPoP-bound token
// through the Guard: with a proof on every request, tools are listed and
// called, and the tool's requirement still applies; the same token as a
// Bearer token cannot even connect; the metadata announces DPoP.
func TestDPoPBoundTokens(t *testing.T) {
	key := jwkstest.NewKey("ES256")
	for _, tt := range []struct {
		name     string
		policy   dpop.Policy
		required bool
	}{{"allow", dpop.Allow, false}, {"require", dpop.Require, true}} {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t, false, func(c *mcpguard.Config) { c.Guard.DPoP = middleware.DPoPConfig{Policy: tt.policy} })
			ctx := context.Background()
			token := s.iss.DPoPBound("agent", key, "notes:read")
			connect := func(d *dpopTransport) (*mcp.ClientSession, error) {
				client := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "v0.0.1"}, nil)
				return client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: s.resource, HTTPClient: &http.Client{Transport: d}, MaxRetries: -1}, nil)
			}

			d := &dpopTransport{token: token, key: key, base: s.srv.Client().Transport}
			cs, err := connect(d)
			require.NoError(t, err)
			t.Cleanup(func() { _ = cs.Close() })
			_, err = cs.ListTools(ctx, nil)
			require.NoError(t, err)
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "read_notes"})
			require.NoError(t, err)
			assert.False(t, res.IsError)
			assert.Equal(t, 1, s.runs("read_notes"))
			_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "delete_notes"})
			assert.Error(t, err, "notes:write is still needed")
			assert.Zero(t, s.runs("delete_notes"))

			bearer := &dpopTransport{token: token, bearer: true, base: s.srv.Client().Transport}
			_, err = connect(bearer)
			require.Error(t, err, "a DPoP-bound token presented as Bearer")
			require.NotEmpty(t, bearer.statuses)
			for _, status := range bearer.statuses {
				assert.Equal(t, http.StatusUnauthorized, status)
			}

			meta := s.guard.Metadata()
			assert.Contains(t, meta.DPoPSigningAlgValuesSupported, "ES256")
			assert.Equal(t, tt.required, meta.DPoPBoundAccessTokensRequired)
		})
	}
}
