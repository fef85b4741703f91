package scopes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/olympus/aegis/internal/strictjson"
)

// maxQuoted bounds how much of an offending input is echoed in error messages.
const maxQuoted = 64

// dedupMapThreshold is the size above which normalization uses a map instead
// of a quadratic scan to drop duplicates.
const dedupMapThreshold = 16

// Set is an immutable, normalized collection of scope tokens: every member is
// a valid RFC 6749 §3.3 scope-token, there are no duplicates, and the order in
// which members were first seen is kept. The zero Set is empty and ready to
// use. Sets are safe for concurrent use.
type Set struct {
	s []string
}

// New returns a Set holding the given scope tokens, in order, with duplicates
// removed. It returns an error if any of them is not a valid RFC 6749 §3.3
// scope-token (for example the empty string, or a token containing a space,
// '"', '\' or a non-ASCII character).
func New(scopes ...string) (Set, error) {
	s, err := normalize(scopes)
	if err != nil {
		return Set{}, err
	}
	return Set{s: s}, nil
}

// MustNew is like [New] but panics if a scope token is invalid. It is meant
// for static configuration.
func MustNew(scopes ...string) Set {
	s, err := New(scopes...)
	if err != nil {
		panic(err)
	}
	return s
}

// Parse parses a space-separated scope string as defined by RFC 6749 §3.3.
// Tokens may be separated by one or more ASCII spaces (0x20); leading and
// trailing spaces are ignored. Any other whitespace (tab, CR, LF, ...) and any
// character not allowed in a scope-token is an error. An empty string, or one
// consisting only of spaces, yields an empty Set and a nil error.
func Parse(s string) (Set, error) {
	var out []string
	for len(s) > 0 {
		tok, rest, _ := strings.Cut(s, " ")
		s = rest
		if tok == "" {
			continue
		}
		if err := validate(tok); err != nil {
			return Set{}, err
		}
		out = append(out, tok)
	}
	return Set{s: dedup(out)}, nil
}

// FromClaim parses a JSON token claim holding scopes. The claim must be one
// of:
//
//   - a JSON string with space-separated scope tokens, as the "scope" claim
//     of RFC 8693, RFC 9068 and RFC 7662 (parsed as by [Parse]);
//   - a JSON array of strings, each a single scope token, as the "scp" claim
//     issued by Ory Hydra;
//   - JSON null, which yields an empty Set.
//
// Anything else, including an empty input, invalid JSON, a number, an object,
// an array containing a non-string, null or nested array, and any invalid
// scope token, is an error. Duplicates are removed.
func FromClaim(raw json.RawMessage) (Set, error) {
	trimmed := bytes.TrimLeft(raw, " \t\r\n")
	if len(trimmed) == 0 {
		return Set{}, fmt.Errorf("scopes: empty claim")
	}
	switch trimmed[0] {
	case '"':
		str, err := strictjson.String(bytes.TrimRight(trimmed, " \t\r\n"))
		if err != nil {
			return Set{}, fmt.Errorf("scopes: invalid scope claim: %w", err)
		}
		return Parse(str)
	case '[':
		// The strings are views into raw until owned: room holds them
		// (on the stack for up to 8), validated and deduplicated in place,
		// then one buffer takes them all.
		var room [8]string
		arr, err := strictjson.AppendStringOrArrayView(room[:0], trimmed)
		if err != nil {
			return Set{}, fmt.Errorf("scopes: invalid scope claim: want an array of strings: %w", err)
		}
		for _, v := range arr {
			if err := validate(v); err != nil {
				return Set{}, err
			}
		}
		return Set{s: owned(dedup(arr))}, nil
	}
	if !json.Valid(raw) {
		return Set{}, fmt.Errorf("scopes: invalid scope claim: invalid JSON")
	}
	if string(bytes.TrimRight(trimmed, " \t\r\n")) == "null" {
		return Set{}, nil
	}
	return Set{}, fmt.Errorf("scopes: invalid scope claim: want a JSON string or array of strings, got %s", jsonKind(trimmed[0]))
}

// jsonKind names the JSON type starting with c, for error messages. c is the
// first byte of a valid JSON value that is neither a string nor an array.
func jsonKind(c byte) string {
	switch c {
	case '{':
		return "object"
	case 't', 'f':
		return "boolean"
	default:
		return "number"
	}
}

// Len returns the number of scopes in s.
func (s Set) Len() int { return len(s.s) }

// Has reports whether s contains scope, compared exactly.
func (s Set) Has(scope string) bool {
	return slices.Contains(s.s, scope)
}

// Strings returns the scopes in s, in order, as a newly allocated slice that
// the caller may modify. It returns nil for an empty Set.
func (s Set) Strings() []string {
	return slices.Clone(s.s)
}

// String returns the scopes in s joined by single spaces: the RFC 6749 §3.3
// "scope" representation. It returns "" for an empty Set.
func (s Set) String() string {
	return strings.Join(s.s, " ")
}

// Union returns the scopes in s followed by the scopes of o not in s.
func (s Set) Union(o Set) Set {
	out := make([]string, 0, len(s.s)+len(o.s))
	out = append(out, s.s...)
	out = append(out, o.s...)
	return Set{s: dedup(out)}
}

// Intersect returns the scopes in s that are also in o, in the order of s.
func (s Set) Intersect(o Set) Set {
	var out []string
	for _, v := range s.s {
		if o.Has(v) {
			out = append(out, v)
		}
	}
	return Set{s: out}
}

// Difference returns the scopes in s that are not in o, in the order of s.
func (s Set) Difference(o Set) Set {
	var out []string
	for _, v := range s.s {
		if !o.Has(v) {
			out = append(out, v)
		}
	}
	return Set{s: out}
}

// Equal reports whether s and o have the same members, ignoring order.
func (s Set) Equal(o Set) bool {
	if len(s.s) != len(o.s) {
		return false
	}
	for _, v := range s.s {
		if !o.Has(v) {
			return false
		}
	}
	return true
}

// MarshalJSON encodes s as a JSON array of strings; an empty Set is encoded
// as [] (never null).
func (s Set) MarshalJSON() ([]byte, error) {
	if len(s.s) == 0 {
		return []byte("[]"), nil
	}
	return json.Marshal(s.s)
}

// UnmarshalJSON decodes any form accepted by [FromClaim] into s. On error s
// is left unchanged.
func (s *Set) UnmarshalJSON(data []byte) error {
	v, err := FromClaim(data)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// normalize validates scopes and returns a fresh, duplicate-free copy.
func normalize(scopes []string) ([]string, error) {
	if len(scopes) == 0 {
		return nil, nil
	}
	for _, v := range scopes {
		if err := validate(v); err != nil {
			return nil, err
		}
	}
	return dedup(slices.Clone(scopes)), nil
}

// dedup removes duplicates from in, in place, keeping the first occurrence.
// owned returns a new slice of copies of ss, the copies sharing one
// buffer of their own; nil for none.
func owned(ss []string) []string {
	if len(ss) == 0 {
		return nil
	}
	n := 0
	for _, v := range ss {
		n += len(v)
	}
	var b strings.Builder
	b.Grow(n)
	for _, v := range ss {
		b.WriteString(v)
	}
	buf := b.String()
	out := make([]string, len(ss))
	for i, v := range ss {
		out[i], buf = buf[:len(v)], buf[len(v):]
	}
	return out
}

func dedup(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := in[:0]
	if len(in) <= dedupMapThreshold {
		for _, v := range in {
			if !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	} else {
		seen := make(map[string]struct{}, len(in))
		for _, v := range in {
			if _, ok := seen[v]; !ok {
				seen[v] = struct{}{}
				out = append(out, v)
			}
		}
	}
	clear(in[len(out):])
	return out[:len(out):len(out)]
}

// validate reports whether tok is an RFC 6749 §3.3 scope-token.
func validate(tok string) error {
	if tok == "" {
		return fmt.Errorf("scopes: empty scope token")
	}
	for i := 0; i < len(tok); i++ {
		if !isTokenChar(tok[i]) {
			return fmt.Errorf("scopes: invalid character %q at offset %d in scope token %q", tok[i], i, truncate(tok))
		}
	}
	return nil
}

// isTokenChar reports whether c may appear in a scope-token:
// %x21 / %x23-5B / %x5D-7E.
func isTokenChar(c byte) bool {
	return c >= 0x21 && c <= 0x7E && c != '"' && c != '\\'
}

func truncate(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	return s[:maxQuoted] + "..."
}
