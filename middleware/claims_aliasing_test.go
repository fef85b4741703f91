package middleware_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
)

// TestClaimsCannotBeRewrittenThroughClaim: the claims' strings share the
// decoded token's buffer, so a handler that appends to or writes into a
// claim it was given must change nothing the Guard decided on, now or for
// the next request served from the verified cache.
func TestClaimsCannotBeRewrittenThroughClaim(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Now: fixedClock})
	g, err := middleware.New(middleware.Config{Issuer: iss.URL, Audience: iss.Audience, Now: fixedClock, Logger: quiet()})
	require.NoError(t, err)
	claims := iss.Claims("svc", "svc", "data:read")
	claims["aa"] = "x"
	token := iss.Sign(claims)

	tests := []struct {
		name   string
		tamper func(raw []byte)
	}{
		{"append past the value", func(raw []byte) { _ = append(raw, bytes.Repeat([]byte("Z"), 400)...) }},
		{"write into the value", func(raw []byte) { copy(raw, `"ZZ"`) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := g.Validate(context.Background(), token)
			require.NoError(t, err)
			raw, ok := p.Claim("aa")
			require.True(t, ok)
			tt.tamper(raw)
			for _, again := range []*middleware.Principal{p, mustValidate(t, g, token)} {
				assert.Equal(t, "svc", again.ClientID)
				assert.Equal(t, "svc", again.Subject)
				assert.Equal(t, []string{iss.Audience}, again.Audience)
				assert.Equal(t, iss.URL, again.Issuer)
				got, _ := again.Claim("aa")
				assert.JSONEq(t, `"x"`, string(got))
			}
		})
	}
}

func mustValidate(t *testing.T, g *middleware.Guard, token string) *middleware.Principal {
	t.Helper()
	p, err := g.Validate(context.Background(), token)
	require.NoError(t, err)
	return p
}
