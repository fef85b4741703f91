package scopes

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

type matchCase struct {
	granted, required string
	want              bool
}

func runMatchCases(t *testing.T, m Matcher, cases []matchCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.granted+"|"+c.required, func(t *testing.T) {
			assert.Equal(t, c.want, m.Match(c.granted, c.required),
				"Match(%q, %q)", c.granted, c.required)
		})
	}
}

func TestExact(t *testing.T) {
	runMatchCases(t, Exact, []matchCase{
		{"data", "data", true},
		{"data:*", "data:*", true},
		{"data", "data:read", false},
		{"data:read", "data", false},
		{"data:*", "data:read", false},
		{"Data", "data", false},
		{"", "", true},
	})
}

func TestHierarchic(t *testing.T) {
	runMatchCases(t, Hierarchic(":"), []matchCase{
		{"data", "data", true},
		{"data", "data:read", true},
		{"data", "data:read:own", true},
		{"data:read", "data:read:own", true},
		{"data:read", "data:read", true},
		// never upwards
		{"data:read", "data", false},
		{"data:read:own", "data:read", false},
		// segment boundaries, not string prefixes
		{"data", "database", false},
		{"data", "database:read", false},
		{"dat", "data:read", false},
		{"data:re", "data:read", false},
		// siblings
		{"data:write", "data:read", false},
		{"data:read", "data:write:own", false},
		// empty segments match only themselves
		{"data:", "data:", true},
		{"data:", "data:read", false},
		{"data:", "data::read", false},
		{"data", "data:", false},
		{"data", "data::read", false},
		{":data", ":data:read", false},
		{"data::x", "data::x:y", false},
		{"", "data", false},
		{"", "", true},
		// no wildcard meaning
		{"data:*", "data:read", false},
		{"*", "data", false},
	})
}

func TestHierarchicOtherSeparators(t *testing.T) {
	runMatchCases(t, Hierarchic("."), []matchCase{
		{"api", "api.users.read", true},
		{"api.users", "api.users.read", true},
		{"api.users.read", "api.users", false},
		{"api", "api:users", false},
	})
	runMatchCases(t, Hierarchic("::"), []matchCase{
		{"a", "a::b", true},
		{"a", "a:b", false},
		{"a::b", "a", false},
		{"a", "a:::b", true}, // segments "a", ":b"
		{"a:", "a:::b", false},
		{"a", "a::::b", false}, // empty segment
	})
	runMatchCases(t, Hierarchic("/"), []matchCase{
		{"https://api.example.com", "https://api.example.com/read", false}, // "https:" then empty segment
		{"files", "files/photos", true},
	})
}

func TestWildcard(t *testing.T) {
	runMatchCases(t, Wildcard(":"), []matchCase{
		{"data:*", "data:read", true},
		{"data:*", "data:write", true},
		{"data:*", "data:*", true},
		{"data:*:own", "data:read:own", true},
		{"*:read", "data:read", true},
		{"*:*", "data:read", true},
		{"*:*", "data:*", true},
		{"*", "openid", true},
		{"*", "*", true},
		{"data:read", "data:read", true},
		// exactly one segment
		{"data:*", "data", false},
		{"data:*", "data:read:own", false},
		{"*", "data:read", false},
		{"*:*", "data", false},
		// a * in the required scope is literal
		{"data:read", "data:*", false},
		{"data", "*", false},
		{"data:read", "*:read", false},
		// not hierarchic
		{"data", "data:read", false},
		{"data:read", "data", false},
		// partial wildcards are literal
		{"da*", "data", false},
		{"data:r*", "data:read", false},
		{"data:r*", "data:r*", true},
		// wrong prefix
		{"data:*", "other:read", false},
		{"data:*", "database:read", false},
		// empty segments
		{"data:*", "data:", false},
		{"*", "", false},
		{"*:read", ":read", false},
		{"data::*", "data::x", false},
		{"data:", "data:", true},
	})
}

func TestWildcardOtherSeparator(t *testing.T) {
	runMatchCases(t, Wildcard("."), []matchCase{
		{"api.*.read", "api.users.read", true},
		{"api.*", "api.users.read", false},
		{"api.*", "api:users", false},
	})
}

func TestMatcherConstructorsPanicOnEmptySeparator(t *testing.T) {
	assert.Panics(t, func() { Hierarchic("") })
	assert.Panics(t, func() { Wildcard("") })
}

func TestMatchersAreComparableValues(t *testing.T) {
	assert.Equal(t, Hierarchic(":"), Hierarchic(":"))
	assert.NotEqual(t, Hierarchic(":"), Hierarchic("."))
	assert.NotEqual(t, Hierarchic(":"), Wildcard(":"))
	assert.True(t, Exact == exactMatcher{})
}
