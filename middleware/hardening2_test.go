package middleware_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/internal/testutil"
	"github.com/olympus/aegis/introspect"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
)

// nestedExt is an ext claim with depth levels of objects in all (ext
// itself included); the top-level claims then nest depth+1 deep.
func nestedExt(depth int) map[string]any {
	v := map[string]any{"leaf": true}
	for range depth - 1 {
		v = map[string]any{"a": v}
	}
	return v
}

// Hardening, round 2, point 4: null and empty mean absent everywhere, one
// depth limit (the claims'), and the documented precedence (top-level
// email, then ext.email) in every case, for JWTs and introspection answers.
func TestHardening2_EmailAndClassificationOnGenuineTokens(t *testing.T) {
	tests := []struct {
		name      string
		claims    map[string]any // merged into a token with sub == client_id
		wantKind  middleware.Kind
		wantEmail string
	}{
		{name: "ext.email null is absent", claims: map[string]any{"ext": map[string]any{"email": nil}}, wantKind: middleware.KindM2M},
		{name: "ext.email empty is absent", claims: map[string]any{"ext": map[string]any{"email": ""}}, wantKind: middleware.KindM2M},
		{name: "email and ext.email both null", claims: map[string]any{"email": nil, "ext": map[string]any{"email": nil}}, wantKind: middleware.KindM2M},
		{name: "ext null", claims: map[string]any{"ext": nil}, wantKind: middleware.KindM2M},
		{name: "top-level email empty, ext.email set", claims: map[string]any{"email": "", "ext": map[string]any{"email": "alice@example.com"}},
			wantKind: middleware.KindUser, wantEmail: "alice@example.com"},
		{name: "top-level email null, ext.email set", claims: map[string]any{"email": nil, "ext": map[string]any{"email": "alice@example.com"}},
			wantKind: middleware.KindUser, wantEmail: "alice@example.com"},
		{name: "top-level email wins over ext.email", claims: map[string]any{"email": "top@example.com", "ext": map[string]any{"email": "ext@example.com"}},
			wantKind: middleware.KindUser, wantEmail: "top@example.com"},
		{name: "ext nested 21 deep", claims: map[string]any{"ext": nestedExt(21)}, wantKind: middleware.KindM2M},
		// 31 levels in ext, 32 in the claims: the claims' own limit.
		{name: "ext nested to the claims' limit, with an email", claims: map[string]any{"ext": func() map[string]any {
			e := nestedExt(30)
			e["email"] = "deep@example.com"
			return e
		}()}, wantKind: middleware.KindUser, wantEmail: "deep@example.com"},
	}
	for _, path := range []string{"jwt", "introspection"} {
		t.Run(path, func(t *testing.T) {
			clk := testutil.NewClock(t0).Now
			iss := jwkstest.NewIssuer(t, jwkstest.Config{Now: clk})
			g := mustGuard(t, setup{Config: middleware.Config{Issuer: iss.URL, Audience: iss.Audience, Now: clk},
				Mode: modeHybrid, Introspection: introspect.Config{Endpoint: iss.IntrospectionURL()}})
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					c := iss.Claims("svc", "svc", "data:read")
					for k, v := range tc.claims {
						c[k] = v
					}
					token := iss.Sign(c)
					if path == "introspection" {
						token = iss.Opaque(c)
					}
					p, err := g.Validate(context.Background(), token)
					require.NoError(t, err)
					assert.Equal(t, tc.wantKind, p.Kind)
					assert.Equal(t, tc.wantEmail, p.Email)
				})
			}
		})
	}

	// Past the claims' limit, a JWT is malformed, whatever part nests.
	clk := testutil.NewClock(t0).Now
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Now: clk})
	g := mustGuard(t, setup{Config: middleware.Config{Issuer: iss.URL, Audience: iss.Audience, Now: clk}})
	c := iss.Claims("svc", "svc")
	c["ext"] = nestedExt(32)
	_, err := g.Validate(context.Background(), iss.Sign(c))
	var r *aegis.Refusal
	require.True(t, errors.As(err, &r), "refused: %v", err)
	assert.Equal(t, aegis.ReasonTokenMalformed, r.Reason)
}

// Hardening, round 2, point 8: a JWT-shaped token whose header is not
// strict JSON is never introspected when its iss is foreign (README: such
// a token "never causes a call"); the endpoint's calls are counted.
func TestHardening2_HybridSpendsNoIntrospectionOnAHopelessJWT(t *testing.T) {
	clk := testutil.NewClock(t0).Now
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Now: clk})
	foreign := jwkstest.NewIssuer(t, jwkstest.Config{Now: clk})
	g := mustGuard(t, setup{Config: middleware.Config{Issuer: iss.URL, Audience: iss.Audience, Now: clk},
		Mode: modeHybrid, Introspection: introspect.Config{Endpoint: iss.IntrospectionURL()}})
	k := iss.CurrentKey()
	claims := atkJSON(t, foreign.Claims("svc", "svc", "data:read"))
	tests := []struct {
		name, header string
	}{
		{name: "duplicate alg", header: `{"alg":"RS256","alg":"none","kid":"` + k.ID + `"}`},
		{name: "duplicate kid", header: `{"alg":"RS256","kid":"a","kid":"` + k.ID + `"}`},
		{name: "no alg", header: `{"kid":"` + k.ID + `"}`},
		{name: "invalid UTF-8 in the header", header: "{\"alg\":\"RS256\",\"kid\":\"\xff\"}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := iss.IntrospectionCalls()
			_, err := g.Validate(context.Background(), jwkstest.SignRaw(k, []byte(tc.header), claims))
			var r *aegis.Refusal
			require.True(t, errors.As(err, &r), "refused: %v", err)
			assert.Equal(t, aegis.ReasonTokenMalformed, r.Reason)
			assert.Equal(t, before, iss.IntrospectionCalls(), "no introspection call")
		})
	}
	// The count is live: a genuine opaque token costs one call.
	before := iss.IntrospectionCalls()
	_, err := g.Validate(context.Background(), iss.OpaqueM2M("svc", "data:read"))
	require.NoError(t, err)
	assert.Equal(t, before+1, iss.IntrospectionCalls())
}
