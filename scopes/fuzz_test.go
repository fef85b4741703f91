package scopes

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requireValidSet checks the invariants of a Set: valid tokens, no
// duplicates, and a String form that Parse round-trips.
func requireValidSet(t *testing.T, s Set) {
	t.Helper()
	seen := make(map[string]bool, s.Len())
	for _, v := range s.Strings() {
		require.NoError(t, validate(v))
		require.False(t, seen[v], "duplicate %q", v)
		seen[v] = true
	}

	back, err := Parse(s.String())
	require.NoError(t, err)
	require.Equal(t, s.Strings(), back.Strings())
	require.True(t, s.Equal(back))

	js, err := s.MarshalJSON()
	require.NoError(t, err)
	fromJSON, err := FromClaim(js)
	require.NoError(t, err)
	require.Equal(t, s.Strings(), fromJSON.Strings())
}

func FuzzFromClaim(f *testing.F) {
	for _, seed := range []string{
		`"openid profile"`, `["a","b","a"]`, `null`, `""`, `[]`, `42`, `{}`,
		`[["a"]]`, `["a",1]`, `["a",null]`, `"a\tb"`, `["a\"b"]`, `["a"`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := FromClaim(data)
		if err != nil {
			assert.Zero(t, s.Len())
			return
		}
		requireValidSet(t, s)
	})
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"", "a", "a b", "a  b  a", " a ", "a\tb", "a\nb", `a"b`, `a\b`, "é", "data:read data:*",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := Parse(in)
		if err != nil {
			assert.Zero(t, s.Len())
			return
		}
		requireValidSet(t, s)

		// The same text as a JSON string claim gives the same Set.
		js, err := json.Marshal(in)
		require.NoError(t, err)
		fc, err := FromClaim(js)
		require.NoError(t, err)
		require.Equal(t, s.Strings(), fc.Strings())
	})
}

func BenchmarkFromClaimArray(b *testing.B) {
	raw := json.RawMessage(`["openid","profile","email","offline_access","data:read","data:write","users:read"]`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := FromClaim(raw); err != nil {
			b.Fatal(err)
		}
	}
}
