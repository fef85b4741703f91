package core_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware/core"
)

type parentKey struct{}

// TestWithPrincipalSharesTheAllocation: a Principal the Checker returns
// comes with the context node that carries it, so putting it in a
// context allocates nothing; the node behaves as context.WithValue's
// would, for the Principal, the parent's values and its cancellation, and
// only the Principal itself (not a copy) takes it, once.
func TestWithPrincipalSharesTheAllocation(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	jwt, err := core.NewJWT(core.JWTConfig{Issuer: iss.URL, Audience: iss.Audience})
	require.NoError(t, err)
	token := iss.M2M("worker", "data:read")
	for _, tc := range []struct {
		name string
		v    core.Validator
	}{
		{"validated", jwt},
		{"cache hit", core.Cached(jwt, core.CacheConfig{})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := core.New(core.Config{Validator: tc.v})
			require.NoError(t, err)
			_, err = c.Validate(context.Background(), token) // fills the cache
			require.NoError(t, err)
			p, err := c.Validate(context.Background(), token)
			require.NoError(t, err)
			assert.Equal(t, tc.name == "cache hit", p.Cached())

			parent, cancel := context.WithCancel(context.WithValue(context.Background(), parentKey{}, "parent"))
			defer cancel()
			p2, err := c.Validate(context.Background(), token)
			require.NoError(t, err)
			ctx := core.WithPrincipal(parent, p2)
			again := core.WithPrincipal(parent, p2)
			assert.NotSame(t, ctx, again, "the node is taken once")
			copied := *p2
			viaCopy := core.WithPrincipal(parent, &copied)
			for _, c := range []context.Context{ctx, again, viaCopy} {
				got, ok := core.PrincipalFrom(c)
				assert.True(t, ok)
				assert.Equal(t, "parent", c.Value(parentKey{}))
				assert.Equal(t, p2.ClientID, got.ClientID)
				assert.Nil(t, c.Value(struct{}{}), "other keys go to the parent")
			}
			got, _ := core.PrincipalFrom(ctx)
			assert.Same(t, p2, got)
			got, _ = core.PrincipalFrom(viaCopy)
			assert.Same(t, &copied, got)

			// Cancellation reaches the node and its children.
			child, cancelChild := context.WithCancel(ctx)
			defer cancelChild()
			assert.NoError(t, ctx.Err())
			cancel()
			<-child.Done()
			assert.ErrorIs(t, ctx.Err(), context.Canceled)
			assert.ErrorIs(t, child.Err(), context.Canceled)
			assert.Contains(t, ctx.(interface{ String() string }).String(), "WithValue")
		})
	}
}

// TestWithPrincipalAllocatesNothingForAFreshPrincipal: the Guard's path,
// a Principal fresh from the Checker put in the request's context.
func TestWithPrincipalAllocatesNothingForAFreshPrincipal(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	jwt, err := core.NewJWT(core.JWTConfig{Issuer: iss.URL, Audience: iss.Audience})
	require.NoError(t, err)
	c, err := core.New(core.Config{Validator: core.Cached(jwt, core.CacheConfig{})})
	require.NoError(t, err)
	token := iss.M2M("worker", "data:read")
	_, err = c.Validate(context.Background(), token)
	require.NoError(t, err)
	ctx := context.Background()
	validate := testing.AllocsPerRun(100, func() { _, _ = c.Validate(ctx, token) })
	both := testing.AllocsPerRun(100, func() {
		p, _ := c.Validate(ctx, token)
		_ = core.WithPrincipal(ctx, p)
	})
	assert.Equal(t, validate, both, "WithPrincipal allocated")
}
