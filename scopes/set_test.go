package scopes

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []string
		wantErr bool
	}{
		{name: "none", in: nil, want: nil},
		{name: "single", in: []string{"openid"}, want: []string{"openid"}},
		{name: "order kept", in: []string{"b", "a", "c"}, want: []string{"b", "a", "c"}},
		{name: "duplicates removed", in: []string{"a", "b", "a", "b", "c"}, want: []string{"a", "b", "c"}},
		{name: "all allowed punctuation", in: []string{"!#$%&'()*+,-./:;<=>?@[]^_`{|}~"}, want: []string{"!#$%&'()*+,-./:;<=>?@[]^_`{|}~"}},
		{name: "empty token", in: []string{"a", ""}, wantErr: true},
		{name: "space", in: []string{"a b"}, wantErr: true},
		{name: "quote", in: []string{`a"b`}, wantErr: true},
		{name: "backslash", in: []string{`a\b`}, wantErr: true},
		{name: "tab", in: []string{"a\tb"}, wantErr: true},
		{name: "DEL", in: []string{"a\x7f"}, wantErr: true},
		{name: "control", in: []string{"\x00"}, wantErr: true},
		{name: "non-ASCII", in: []string{"données"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.in...)
			if tt.wantErr {
				require.Error(t, err)
				assert.Zero(t, s.Len())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, s.Strings())
		})
	}
}

func TestNewCopiesInput(t *testing.T) {
	in := []string{"a", "b"}
	s, err := New(in...)
	require.NoError(t, err)
	in[0] = "mutated"
	assert.Equal(t, []string{"a", "b"}, s.Strings())
}

func TestNewLargeDeduplicates(t *testing.T) {
	var in []string
	for range 3 {
		for c := 'a'; c <= 'z'; c++ {
			in = append(in, string(c))
		}
	}
	s, err := New(in...)
	require.NoError(t, err)
	assert.Equal(t, 26, s.Len())
	assert.Equal(t, in[:26], s.Strings())
}

func TestInvalidTokenErrorIsTruncated(t *testing.T) {
	_, err := New(strings.Repeat("a", 1000) + `"`)
	require.Error(t, err)
	assert.Less(t, len(err.Error()), 200)
}

func TestMustNew(t *testing.T) {
	assert.Equal(t, []string{"a", "b"}, MustNew("a", "b", "a").Strings())
	assert.Panics(t, func() { MustNew("a b") })
	assert.Panics(t, func() { MustNew("") })
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr bool
	}{
		{name: "empty", in: "", want: nil},
		{name: "only spaces", in: "   ", want: nil},
		{name: "single", in: "openid", want: []string{"openid"}},
		{name: "several", in: "openid profile email", want: []string{"openid", "profile", "email"}},
		{name: "repeated spaces", in: "a  b   c", want: []string{"a", "b", "c"}},
		{name: "leading and trailing spaces", in: "  a b  ", want: []string{"a", "b"}},
		{name: "duplicates", in: "a b a", want: []string{"a", "b"}},
		{name: "colons and urls", in: "data:read https://api.example.com/x", want: []string{"data:read", "https://api.example.com/x"}},
		{name: "tab", in: "a\tb", wantErr: true},
		{name: "newline", in: "a\nb", wantErr: true},
		{name: "carriage return", in: "a\r\nb", wantErr: true},
		{name: "trailing newline", in: "a b\n", wantErr: true},
		{name: "quote", in: `a "b"`, wantErr: true},
		{name: "backslash", in: `a b\c`, wantErr: true},
		{name: "non-ASCII", in: "a ü", wantErr: true},
		{name: "non-breaking space", in: "a\u00a0b", wantErr: true},
		{name: "NUL", in: "a\x00", wantErr: true},
		{name: "invalid UTF-8", in: "a \xff", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.in)
			if tt.wantErr {
				require.Error(t, err)
				assert.Zero(t, s.Len())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, s.Strings())
			assert.Equal(t, strings.Join(tt.want, " "), s.String())
		})
	}
}

func TestFromClaim(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr bool
	}{
		{name: "string", in: `"openid profile"`, want: []string{"openid", "profile"}},
		{name: "string with repeated spaces", in: `"a   b"`, want: []string{"a", "b"}},
		{name: "empty string", in: `""`, want: nil},
		{name: "string with escapes", in: `"a\u0020b"`, want: []string{"a", "b"}},
		{name: "string duplicates", in: `"a b a"`, want: []string{"a", "b"}},
		{name: "array", in: `["openid","profile"]`, want: []string{"openid", "profile"}},
		{name: "array duplicates", in: `["a","b","a"]`, want: []string{"a", "b"}},
		{name: "empty array", in: `[]`, want: nil},
		{name: "surrounding whitespace", in: " \n\t[\"a\"] \r\n", want: []string{"a"}},
		{name: "null", in: `null`, want: nil},
		{name: "null with whitespace", in: " null\n", want: nil},
		{name: "empty input", in: ``, wantErr: true},
		{name: "whitespace only", in: "  ", wantErr: true},
		{name: "number", in: `42`, wantErr: true},
		{name: "negative number", in: `-1`, wantErr: true},
		{name: "boolean", in: `true`, wantErr: true},
		{name: "object", in: `{"scope":"a"}`, wantErr: true},
		{name: "nested array", in: `[["a"]]`, wantErr: true},
		{name: "array with number", in: `["a",1]`, wantErr: true},
		{name: "array with null", in: `["a",null]`, wantErr: true},
		{name: "array with object", in: `[{}]`, wantErr: true},
		{name: "array with empty string", in: `[""]`, wantErr: true},
		{name: "array element with space", in: `["a b"]`, wantErr: true},
		{name: "array element with quote", in: `["a\"b"]`, wantErr: true},
		{name: "array element with backslash", in: `["a\\b"]`, wantErr: true},
		{name: "string with tab", in: `"a\tb"`, wantErr: true},
		{name: "string with newline", in: `"a\nb"`, wantErr: true},
		{name: "string with non-ASCII", in: `"caf\u00e9"`, wantErr: true},
		{name: "invalid UTF-8 in string", in: "\"a\xff\"", wantErr: true},
		{name: "invalid JSON", in: `["a"`, wantErr: true},
		{name: "invalid JSON string", in: `"a`, wantErr: true},
		{name: "trailing garbage after array", in: `["a"] x`, wantErr: true},
		{name: "trailing garbage after string", in: `"a" "b"`, wantErr: true},
		{name: "trailing garbage after null", in: `null x`, wantErr: true},
		{name: "nullx", in: `nullx`, wantErr: true},
		{name: "garbage", in: `scope`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := FromClaim(json.RawMessage(tt.in))
			if tt.wantErr {
				require.Error(t, err)
				assert.Zero(t, s.Len())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, s.Strings())
		})
	}
}

func TestFromClaimNil(t *testing.T) {
	_, err := FromClaim(nil)
	assert.Error(t, err)
}

func TestSetAccessors(t *testing.T) {
	s := MustNew("a", "b")
	assert.Equal(t, 2, s.Len())
	assert.True(t, s.Has("a"))
	assert.False(t, s.Has("A"))
	assert.False(t, s.Has("a b"))

	got := s.Strings()
	got[0] = "mutated"
	assert.Equal(t, []string{"a", "b"}, s.Strings(), "Strings must return a copy")

	var zero Set
	assert.Zero(t, zero.Len())
	assert.False(t, zero.Has(""))
	assert.Empty(t, zero.Strings())
	assert.Empty(t, zero.String())
}

func TestSetOperations(t *testing.T) {
	tests := []struct {
		name       string
		a, b       []string
		union      []string
		intersect  []string
		difference []string
		equal      bool
	}{
		{name: "both empty", equal: true},
		{name: "left empty", b: []string{"a"}, union: []string{"a"}},
		{name: "right empty", a: []string{"a"}, union: []string{"a"}, difference: []string{"a"}},
		{
			name: "overlap", a: []string{"a", "b", "c"}, b: []string{"d", "c", "a"},
			union: []string{"a", "b", "c", "d"}, intersect: []string{"a", "c"}, difference: []string{"b"},
		},
		{
			name: "same members other order", a: []string{"a", "b"}, b: []string{"b", "a"},
			union: []string{"a", "b"}, intersect: []string{"a", "b"}, equal: true,
		},
		{
			name: "disjoint", a: []string{"a"}, b: []string{"b"},
			union: []string{"a", "b"}, difference: []string{"a"},
		},
		{
			name: "same length different members", a: []string{"a", "b"}, b: []string{"a", "c"},
			union: []string{"a", "b", "c"}, intersect: []string{"a"}, difference: []string{"b"},
		},
		{
			name: "subset", a: []string{"a"}, b: []string{"a", "b"},
			union: []string{"a", "b"}, intersect: []string{"a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := MustNew(tt.a...), MustNew(tt.b...)
			assert.Equal(t, tt.union, a.Union(b).Strings(), "Union")
			assert.Equal(t, tt.intersect, a.Intersect(b).Strings(), "Intersect")
			assert.Equal(t, tt.difference, a.Difference(b).Strings(), "Difference")
			assert.Equal(t, tt.equal, a.Equal(b), "Equal")
			assert.Equal(t, tt.equal, b.Equal(a), "Equal (reversed)")
			assert.True(t, a.Equal(a), "Equal (reflexive)")
		})
	}
}

func TestSetOperationsDoNotAlias(t *testing.T) {
	a := MustNew("a", "b")
	u := a.Union(MustNew("c"))
	u2 := a.Union(MustNew("d"))
	assert.Equal(t, []string{"a", "b", "c"}, u.Strings())
	assert.Equal(t, []string{"a", "b", "d"}, u2.Strings())
	assert.Equal(t, []string{"a", "b"}, a.Strings())
}

func TestMarshalJSON(t *testing.T) {
	tests := []struct {
		name string
		in   Set
		want string
	}{
		{name: "zero", in: Set{}, want: `[]`},
		{name: "empty parsed", in: must(Parse("")), want: `[]`},
		{name: "members", in: MustNew("openid", "data:read"), want: `["openid","data:read"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.in)
			require.NoError(t, err)
			assert.JSONEq(t, tt.want, string(got))

			var back Set
			require.NoError(t, json.Unmarshal(got, &back))
			assert.True(t, tt.in.Equal(back))
		})
	}
}

func TestMarshalJSONInStruct(t *testing.T) {
	type claims struct {
		Scope Set `json:"scope"`
	}
	got, err := json.Marshal(claims{})
	require.NoError(t, err)
	assert.JSONEq(t, `{"scope":[]}`, string(got))
}

func TestUnmarshalJSON(t *testing.T) {
	type claims struct {
		Scope Set `json:"scope"`
		Scp   Set `json:"scp"`
	}
	var c claims
	require.NoError(t, json.Unmarshal([]byte(`{"scope":"a b","scp":["c","d"]}`), &c))
	assert.Equal(t, []string{"a", "b"}, c.Scope.Strings())
	assert.Equal(t, []string{"c", "d"}, c.Scp.Strings())

	// null is accepted, as by FromClaim, and yields an empty Set.
	require.NoError(t, json.Unmarshal([]byte(`{"scope":null}`), &c))
	assert.Zero(t, c.Scope.Len())

	for _, bad := range []string{`{"scope":1}`, `{"scope":{}}`, `{"scope":[1]}`, `{"scope":"a\tb"}`} {
		var c claims
		assert.Error(t, json.Unmarshal([]byte(bad), &c), bad)
	}

	s := MustNew("keep")
	require.Error(t, s.UnmarshalJSON([]byte(`5`)))
	assert.Equal(t, []string{"keep"}, s.Strings(), "unchanged on error")
	require.NoError(t, s.UnmarshalJSON([]byte(`null`)))
	assert.Zero(t, s.Len())
}

func must(s Set, err error) Set {
	if err != nil {
		panic(err)
	}
	return s
}

// TestFromClaimOwnsItsStrings: a Set does not point into the claim's bytes
// (a token's decoded buffer), so keeping a Set keeps no token alive and a
// later write to those bytes changes nothing.
func TestFromClaimOwnsItsStrings(t *testing.T) {
	tests := []struct{ name, claim string }{
		{"array", `["data:read","data:write"]`},
		{"string", `"data:read data:write"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := []byte(tt.claim)
			s, err := FromClaim(raw)
			require.NoError(t, err)
			for i := range raw {
				raw[i] = 'x'
			}
			assert.Equal(t, []string{"data:read", "data:write"}, s.Strings())
		})
	}
}

// TestFromClaimArrayOwnsItsStrings: an array claim's scopes are read as
// views and then copied into one buffer of the Set's own, whatever their
// number, duplicates and escapes; up to 8 scopes cost two allocations.
func TestFromClaimArrayOwnsItsStrings(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want []string
	}{
		{"two", `["data:read","data:write"]`, []string{"data:read", "data:write"}},
		{"duplicates", `["a","b","a"]`, []string{"a", "b"}},
		{"escaped", `["data\u003aread"]`, []string{"data:read"}},
		{"more than the room", `["a","b","c","d","e","f","g","h","i","j"]`, []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}},
		{"empty", `[]`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := []byte(tt.raw)
			s, err := FromClaim(raw)
			require.NoError(t, err)
			for i := range raw {
				raw[i] = 'X'
			}
			assert.Equal(t, tt.want, s.Strings())
			allocs := testing.AllocsPerRun(100, func() { _, _ = FromClaim([]byte(tt.raw)) })
			if len(tt.want) > 0 && len(tt.want) <= 8 && !strings.Contains(tt.raw, `\`) {
				// The byte copy of the test, the slice and one buffer
				// (an escaped string is decoded by encoding/json).
				assert.LessOrEqual(t, allocs, 3.0)
			}
		})
	}
}
