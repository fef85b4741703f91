package scopes

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRequirementSatisfiedBy(t *testing.T) {
	tests := []struct {
		name    string
		req     Requirement
		granted []string
		want    bool
		missing []string
	}{
		{name: "all exact satisfied", req: All("a", "b"), granted: []string{"b", "c", "a"}, want: true},
		{name: "all exact one missing", req: All("a", "b"), granted: []string{"a"}, missing: []string{"b"}},
		{name: "all exact none", req: All("a", "b"), granted: nil, missing: []string{"a", "b"}},
		{name: "all exact no hierarchy", req: All("data:read"), granted: []string{"data"}, missing: []string{"data:read"}},
		{name: "any exact one", req: Any("a", "b"), granted: []string{"b"}, want: true},
		{name: "any exact both", req: Any("a", "b"), granted: []string{"a", "b"}, want: true},
		{name: "any exact none", req: Any("a", "b"), granted: []string{"c"}, missing: []string{"a", "b"}},
		{name: "any exact empty granted", req: Any("a"), granted: nil, missing: []string{"a"}},

		{name: "all hierarchic", req: All("data:read", "data:write:own").Using(Hierarchic(":")), granted: []string{"data"}, want: true},
		{name: "all hierarchic partial", req: All("data:read", "user:read").Using(Hierarchic(":")), granted: []string{"data"}, missing: []string{"user:read"}},
		{name: "all hierarchic not upwards", req: All("data").Using(Hierarchic(":")), granted: []string{"data:read", "data:write"}, missing: []string{"data"}},
		{name: "any hierarchic", req: Any("admin", "data:read").Using(Hierarchic(":")), granted: []string{"data"}, want: true},
		{name: "any hierarchic none", req: Any("admin", "data:read").Using(Hierarchic(":")), granted: []string{"data:write"}, missing: []string{"admin", "data:read"}},

		{name: "all wildcard", req: All("data:read", "data:write").Using(Wildcard(":")), granted: []string{"data:*"}, want: true},
		{name: "all wildcard wrong depth", req: All("data", "data:read").Using(Wildcard(":")), granted: []string{"data:*"}, missing: []string{"data"}},
		{name: "all wildcard literal required", req: All("data:*").Using(Wildcard(":")), granted: []string{"data:read"}, missing: []string{"data:*"}},
		{name: "any wildcard", req: Any("admin:x", "data:read").Using(Wildcard(":")), granted: []string{"data:*"}, want: true},
		{name: "any wildcard none", req: Any("data:read:own").Using(Wildcard(":")), granted: []string{"data:*"}, missing: []string{"data:read:own"}},

		{name: "using nil is exact", req: All("data:read").Using(Hierarchic(":")).Using(nil), granted: []string{"data"}, missing: []string{"data:read"}},
		{name: "custom matcher", req: All("A").Using(foldMatcher{}), granted: []string{"a"}, want: true},
		{name: "custom matcher none", req: All("A").Using(foldMatcher{}), granted: []string{"b"}, missing: []string{"A"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := MustNew(tt.granted...)
			assert.Equal(t, tt.want, tt.req.SatisfiedBy(g), "SatisfiedBy")
			if tt.want {
				assert.Nil(t, tt.req.Missing(g), "Missing")
			} else {
				assert.Equal(t, tt.missing, tt.req.Missing(g), "Missing")
			}
		})
	}
}

// foldMatcher is a custom Matcher comparing ASCII case-insensitively.
type foldMatcher struct{}

func (foldMatcher) Match(g, r string) bool {
	if len(g) != len(r) {
		return false
	}
	for i := 0; i < len(g); i++ {
		if g[i]|0x20 != r[i]|0x20 {
			return false
		}
	}
	return true
}

func TestRequirementZero(t *testing.T) {
	var r Requirement
	assert.True(t, r.IsZero())
	assert.False(t, r.SatisfiedBy(MustNew("a")), "zero Requirement fails closed")
	assert.False(t, r.SatisfiedBy(Set{}))
	assert.Nil(t, r.Missing(MustNew("a")))
	assert.Empty(t, r.String())
	assert.Empty(t, r.Scopes())

	assert.False(t, All("a").IsZero())
	assert.False(t, Any("a").IsZero())
	assert.False(t, All("a").Using(Wildcard(":")).IsZero())
}

func TestRequirementStringAndScopes(t *testing.T) {
	tests := []struct {
		name string
		req  Requirement
		want []string
	}{
		{name: "all", req: All("openid", "data:read"), want: []string{"openid", "data:read"}},
		{name: "any", req: Any("b", "a"), want: []string{"b", "a"}},
		{name: "duplicates removed", req: All("a", "b", "a"), want: []string{"a", "b"}},
		{name: "using keeps scopes", req: Any("x", "y").Using(Hierarchic(":")), want: []string{"x", "y"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.req.Scopes())
			s := tt.req.String()
			assert.NotContains(t, s, `"`)
			assert.NotContains(t, s, `\`)
			back, err := Parse(s)
			require.NoError(t, err)
			assert.Equal(t, tt.want, back.Strings())
		})
	}

	r := All("a", "b")
	sc := r.Scopes()
	sc[0] = "mutated"
	assert.Equal(t, []string{"a", "b"}, r.Scopes(), "Scopes must return a copy")
	assert.Equal(t, "a b", r.String())
}

func TestRequirementCopiesInput(t *testing.T) {
	in := []string{"a", "b"}
	r := All(in...)
	in[0] = "x"
	assert.Equal(t, []string{"a", "b"}, r.Scopes())
}

func TestRequirementUsingReturnsCopy(t *testing.T) {
	r := All("data:read")
	h := r.Using(Hierarchic(":"))
	g := MustNew("data")
	assert.False(t, r.SatisfiedBy(g), "original keeps Exact")
	assert.True(t, h.SatisfiedBy(g))
}

func TestAllAnyPanics(t *testing.T) {
	for name, ctor := range map[string]func(...string) Requirement{"All": All, "Any": Any} {
		t.Run(name, func(t *testing.T) {
			assert.Panics(t, func() { ctor() }, "no scopes")
			assert.Panics(t, func() { ctor([]string{}...) }, "empty slice")
			assert.Panics(t, func() { ctor("") }, "empty token")
			assert.Panics(t, func() { ctor("a", "b c") }, "space")
			assert.Panics(t, func() { ctor(`a"`) }, "quote")
			assert.Panics(t, func() { ctor(`a\`) }, "backslash")
			assert.Panics(t, func() { ctor("é") }, "non-ASCII")
			assert.Panics(t, func() { ctor("a\n") }, "newline")
			assert.NotPanics(t, func() { ctor("a", "data:read") })
		})
	}
}

func TestSatisfiedByDoesNotAllocate(t *testing.T) {
	granted := MustNew("openid", "profile", "data:*", "users", "email")
	reqs := map[string]Requirement{
		"all exact":      All("openid", "email"),
		"any exact":      Any("nope", "email"),
		"all hierarchic": All("users:read", "users:write:own").Using(Hierarchic(":")),
		"any hierarchic": Any("nope", "users:read").Using(Hierarchic(":")),
		"all wildcard":   All("data:read", "data:write").Using(Wildcard(":")),
		"any wildcard":   Any("nope:x", "data:read").Using(Wildcard(":")),
		"failing":        All("openid", "admin").Using(Wildcard(":")),
		"custom":         All("OPENID").Using(foldMatcher{}),
		"zero":           {},
	}
	for name, r := range reqs {
		t.Run(name, func(t *testing.T) {
			allocs := testing.AllocsPerRun(1000, func() {
				_ = r.SatisfiedBy(granted)
			})
			assert.Zero(t, allocs)
		})
	}
}

func BenchmarkRequirementSatisfiedBy(b *testing.B) {
	granted := MustNew("openid", "profile", "email", "offline_access", "data:*", "users")
	benches := []struct {
		name string
		req  Requirement
	}{
		{"AllExact", All("openid", "email")},
		{"AnyExact", Any("admin", "users")},
		{"AllHierarchic", All("users:read", "users:write:own").Using(Hierarchic(":"))},
		{"AllWildcard", All("data:read", "data:write").Using(Wildcard(":"))},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !bb.req.SatisfiedBy(granted) {
					b.Fatal("not satisfied")
				}
			}
		})
	}
}
