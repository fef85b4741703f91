package introspect

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fuzzStringMembers maps the answer's members that must be JSON strings to
// the Result field each fills.
var fuzzStringMembers = map[string]func(*Result) string{
	"scope":      func(r *Result) string { return r.Scope },
	"client_id":  func(r *Result) string { return r.ClientID },
	"sub":        func(r *Result) string { return r.Subject },
	"username":   func(r *Result) string { return r.Username },
	"token_type": func(r *Result) string { return r.TokenType },
	"token_use":  func(r *Result) string { return r.TokenUse },
	"iss":        func(r *Result) string { return r.Issuer },
	"jti":        func(r *Result) string { return r.TokenID },
}

// hasDuplicateNames reports whether any object in data, at any depth, names
// a member twice (names compared after unescaping, as encoding/json decodes
// them). It is independent of strictjson; data must be valid JSON.
func hasDuplicateNames(t *testing.T, data []byte) bool {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var walk func() bool // reads one value; true on a duplicate
	walk = func() bool {
		tok, err := dec.Token()
		require.NoError(t, err)
		switch tok {
		case json.Delim('{'):
			seen := make(map[string]bool)
			dup := false
			for dec.More() {
				name, err := dec.Token()
				require.NoError(t, err)
				key := name.(string)
				dup = dup || seen[key]
				seen[key] = true
				dup = walk() || dup
			}
			_, err := dec.Token() // '}'
			require.NoError(t, err)
			return dup
		case json.Delim('['):
			dup := false
			for dec.More() {
				dup = walk() || dup
			}
			_, err := dec.Token() // ']'
			require.NoError(t, err)
			return dup
		}
		return false
	}
	dup := walk()
	_, err := dec.Token()
	require.ErrorIs(t, err, io.EOF, "trailing data after the document")
	return dup
}

func FuzzParseAnswer(f *testing.F) {
	// The committed corpus in testdata/fuzz/FuzzParseAnswer holds the
	// seeds; these few keep the target meaningful without it.
	f.Add([]byte(`{"active":true,"scope":"data:read","client_id":"C","sub":"C","exp":1700000000}`))
	f.Add([]byte(`{"active":false}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := parseAnswer(data)

		if err != nil {
			require.Nil(t, r, "an error comes with no Result")
			if !errors.Is(err, ErrInactive) {
				require.ErrorIs(t, err, errAnswer, "a refusal is either ErrInactive or a malformed answer")
				return
			}
			// ErrInactive: a JSON object whose "active" is the literal false.
			var members map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(data, &members), "ErrInactive for a document encoding/json refuses")
			require.Equal(t, "false", string(members["active"]), "ErrInactive without \"active\":false")
			return
		}
		require.NotNil(t, r)

		// encoding/json agrees: an object with "active" exactly true.
		var members map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(data, &members), "accepted a document encoding/json refuses")
		require.Equal(t, "true", string(members["active"]), "accepted without \"active\":true")
		require.False(t, hasDuplicateNames(t, data), "accepted a document with a duplicate member name")

		// String members equal what encoding/json decodes for them.
		for name, field := range fuzzStringMembers {
			raw, present := members[name]
			if !present {
				assert.Empty(t, field(r), "%s absent but set", name)
				continue
			}
			var want string
			require.NoError(t, json.Unmarshal(raw, &want), "%s accepted but not a JSON string: %s", name, raw)
			require.NotEqual(t, "null", string(raw), "%s null accepted as a string", name)
			assert.Equal(t, want, field(r), name)
		}

		// aud: a string or an array of strings, always in array form.
		if raw, present := members["aud"]; present {
			var want []string
			var one string
			if json.Unmarshal(raw, &one) == nil && raw[0] == '"' {
				want = []string{one}
			} else {
				require.Equal(t, byte('['), raw[0], "aud accepted but neither string nor array: %s", raw)
				var elems []*string
				require.NoError(t, json.Unmarshal(raw, &elems), "aud accepted but not an array of strings: %s", raw)
				for _, e := range elems {
					require.NotNil(t, e, "aud with a null element accepted: %s", raw)
					want = append(want, *e)
				}
			}
			assert.Equal(t, len(want), len(r.Audience))
			for i := range want {
				assert.Equal(t, want[i], r.Audience[i])
			}
		} else {
			assert.Empty(t, r.Audience)
		}

		// exp, iat, nbf: JSON numbers, read as seconds since the epoch.
		for name, got := range map[string]func() (int64, bool){
			"exp": func() (int64, bool) { return r.Expiry.UnixMilli(), r.Expiry.IsZero() },
			"iat": func() (int64, bool) { return r.IssuedAt.UnixMilli(), r.IssuedAt.IsZero() },
			"nbf": func() (int64, bool) { return r.NotBefore.UnixMilli(), r.NotBefore.IsZero() },
		} {
			raw, present := members[name]
			ms, zero := got()
			if !present {
				assert.True(t, zero, "%s absent but set", name)
				continue
			}
			var n json.Number
			require.NoError(t, json.Unmarshal(raw, &n), "%s accepted but not a JSON number: %s", name, raw)
			require.NotEqual(t, byte('"'), raw[0], "%s accepted as a string: %s", name, raw)
			f, err := n.Float64()
			if err == nil && math.Abs(f) < 1e11 {
				assert.InDelta(t, f*1000, float64(ms), 1.5, "%s %s read as %d ms", name, raw, ms)
			}
		}

		// Raw hands back every member as sent.
		for name, want := range members {
			got, ok := r.Raw(name)
			require.True(t, ok, "Raw(%q) missing", name)
			assert.Equal(t, string(want), string(got), "Raw(%q)", name)
		}
	})
}
