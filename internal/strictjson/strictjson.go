// Package strictjson reads JSON objects more strictly than encoding/json:
// it rejects duplicate member names at any depth, invalid UTF-8 and nesting
// beyond a bound, and hands back the top-level members as raw values without
// decoding them. Aegis uses it for token headers, claims and server answers,
// where an ambiguous document must be refused rather than guessed at.
package strictjson

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"
)

// ErrSyntax reports a document that is not valid JSON.
var ErrSyntax = errors.New("strictjson: invalid JSON")

// ErrDuplicate reports an object that names the same member twice.
var ErrDuplicate = errors.New("strictjson: duplicate member name")

// ErrDepth reports nesting deeper than allowed.
var ErrDepth = errors.New("strictjson: nesting too deep")

// MaxClaimsDepth bounds the nesting of a token's claims and of an
// introspection answer, the top-level object being depth 1 (jwks's claims
// use the same bound); a member's value read on its own is one level less
// deep.
const MaxClaimsDepth = 32

// ErrNotObject reports a document whose top level is not an object.
var ErrNotObject = errors.New("strictjson: not a JSON object")

// Member is one top-level member of an object: its decoded name and its
// raw, unparsed value (a sub-slice of the input).
type Member struct {
	Name  string
	Value []byte
}

// Object parses data as one JSON object and returns its members in order.
// Nesting deeper than maxDepth (the top-level object is depth 1) fails with
// ErrDepth.
func Object(data []byte, maxDepth int) ([]Member, error) {
	return object(parser{data: data, maxDepth: maxDepth}, make([]Member, 0, 16))
}

// Find parses data as one JSON object under Object's rules and returns the
// raw value of its top-level member name, without collecting the others.
func Find(data []byte, name string, maxDepth int) (value []byte, found bool, err error) {
	p := parser{data: data, maxDepth: maxDepth, want: name}
	p.skipSpace()
	if p.pos >= len(p.data) || p.data[p.pos] != '{' {
		return nil, false, ErrNotObject
	}
	if err := p.object(1, nil); err != nil {
		return nil, false, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, false, ErrSyntax
	}
	return p.found, p.found != nil, nil
}

// AppendObject is Object appending the members to dst, so that a caller
// can parse into memory it already holds.
func AppendObject(dst []Member, data []byte, maxDepth int) ([]Member, error) {
	return object(parser{data: data, maxDepth: maxDepth}, dst)
}

// Shallow is Object with duplicate names refused only at the top level,
// for documents whose nested parts are judged one by one (a JWK Set's keys).
func Shallow(data []byte, maxDepth int) ([]Member, error) {
	return object(parser{data: data, maxDepth: maxDepth, shallow: true}, make([]Member, 0, 16))
}

func object(p parser, members []Member) ([]Member, error) {
	p.skipSpace()
	if p.pos >= len(p.data) || p.data[p.pos] != '{' {
		return nil, ErrNotObject
	}
	if err := p.object(1, &members); err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, ErrSyntax
	}
	return members, nil
}

// Valid reports whether data is one JSON value that Object's rules accept at
// every depth (no duplicate names, valid UTF-8, bounded depth).
func Valid(data []byte, maxDepth int) error {
	p := parser{data: data, maxDepth: maxDepth}
	p.skipSpace()
	if err := p.value(1, nil); err != nil {
		return err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return ErrSyntax
	}
	return nil
}

type parser struct {
	data     []byte
	pos      int
	maxDepth int
	shallow  bool
	// want, when set, names a top-level member whose value Find records
	// in found.
	want  string
	found []byte
}

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// value parses one value at the given depth. When top is non-nil the value
// must be an object whose members are appended to it.
func (p *parser) value(depth int, top *[]Member) error {
	if p.pos >= len(p.data) {
		return ErrSyntax
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth, top)
	case c == '[':
		return p.array(depth)
	case c == '"':
		_, _, err := p.str()
		return err
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		return ErrSyntax
	}
}

func (p *parser) literal(lit string) error {
	if len(p.data)-p.pos < len(lit) || string(p.data[p.pos:p.pos+len(lit)]) != lit {
		return ErrSyntax
	}
	p.pos += len(lit)
	return nil
}

func (p *parser) number() error {
	d := p.data
	i := p.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		return ErrSyntax
	}
	if i < len(d) && d[i] == '.' {
		i++
		start := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == start {
			return ErrSyntax
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		start := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == start {
			return ErrSyntax
		}
	}
	p.pos = i
	return nil
}

// str parses a string starting at the opening quote. It returns the raw
// bytes between the quotes and whether they contain escapes.
// plain marks the bytes a string may hold as they are: ASCII other than
// controls, '"' and '\\'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// Bytes for plainWord: one in every byte, the high bit of every byte.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plainWord reports whether all eight bytes of w are plain (see plain),
// eight at a time: none is below 0x20, at or above 0x80, '"' or '\'. Each
// test is exact about whether some byte hits it (a borrow only crosses
// into higher bytes from a byte that hit), so a word is never wrongly
// taken as plain.
func plainWord(w uint64) bool {
	q, b := w^('"'*ones), w^('\\'*ones)
	bad := (w-0x20*ones)&^w | w | (q-ones)&^q | (b-ones)&^b
	return bad&highs == 0
}

// plainPrefix returns how many leading bytes of d are plain, skipping
// whole plain words first.
func plainPrefix(d []byte) int {
	i := 0
	for ; i+8 <= len(d); i += 8 {
		if !plainWord(binary.LittleEndian.Uint64(d[i:])) {
			break
		}
	}
	for i < len(d) && plain[d[i]] {
		i++
	}
	return i
}

func (p *parser) str() (raw []byte, escaped bool, err error) {
	d := p.data
	i := p.pos + 1
	start := i
	for i < len(d) {
		i += plainPrefix(d[i:])
		if i >= len(d) {
			break
		}
		c := d[i]
		if plain[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			p.pos = i + 1
			return d[start:i], escaped, nil
		case c == '\\':
			escaped = true
			if i+1 >= len(d) {
				return nil, false, ErrSyntax
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d) || !isHex4(d[i+2:i+6]) {
					return nil, false, ErrSyntax
				}
				i += 6
			default:
				return nil, false, ErrSyntax
			}
		case c < 0x20:
			return nil, false, ErrSyntax
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size <= 1 {
				return nil, false, ErrSyntax
			}
			i += size
		}
	}
	return nil, false, ErrSyntax
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// knownNames are the names JWT headers, claims and introspection answers
// use: name returns them without allocating a string for each, with their
// index, which the duplicate check of a top-level object keeps as a bit.
var knownNames = [...]string{"alg", "kid", "typ", "iss", "sub", "aud", "exp", "nbf", "iat", "jti",
	"client_id", "scope", "scp", "ext", "email", "active", "keys"}

// knownIndex returns the index of name in knownNames, or -1 (the compiler
// compares string(raw) without converting it).
func knownIndex(name string) int {
	switch name {
	case "alg":
		return 0
	case "kid":
		return 1
	case "typ":
		return 2
	case "iss":
		return 3
	case "sub":
		return 4
	case "aud":
		return 5
	case "exp":
		return 6
	case "nbf":
		return 7
	case "iat":
		return 8
	case "jti":
		return 9
	case "client_id":
		return 10
	case "scope":
		return 11
	case "scp":
		return 12
	case "ext":
		return 13
	case "email":
		return 14
	case "active":
		return 15
	case "keys":
		return 16
	}
	return -1
}

// name reads a member name: its decoded string and its index in
// knownNames (-1 for any other name, however it was spelled).
func (p *parser) name() (string, int, error) {
	start := p.pos
	raw, escaped, err := p.str()
	if err != nil {
		return "", -1, err
	}
	if !escaped {
		if i := knownIndex(string(raw)); i >= 0 {
			return knownNames[i], i, nil
		}
		return string(raw), -1, nil
	}
	var s string
	if err := json.Unmarshal(p.data[start:p.pos], &s); err != nil {
		return "", -1, ErrSyntax
	}
	return s, knownIndex(s), nil
}

func (p *parser) object(depth int, top *[]Member) error {
	if depth > p.maxDepth {
		return ErrDepth
	}
	p.pos++ // '{'
	// Names seen so far, for the duplicate check: the members themselves
	// at the top level, else a small array, then a map past 16 names.
	var small [16]string
	var names []string
	first := 0
	if top != nil {
		first = len(*top)
	} else {
		names = small[:0]
	}
	var seen map[string]struct{}
	var seenKnown uint32 // the known names among the top-level members
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return ErrSyntax
		}
		name, known, err := p.name()
		if err != nil {
			return err
		}
		if top != nil || !p.shallow {
			if seen != nil {
				if _, dup := seen[name]; dup {
					return ErrDuplicate
				}
				seen[name] = struct{}{}
			} else if top != nil {
				members := (*top)[first:]
				if known >= 0 {
					// A known name can only repeat itself.
					if seenKnown&(1<<known) != 0 {
						return ErrDuplicate
					}
					seenKnown |= 1 << known
				} else {
					for i := range members {
						if members[i].Name == name {
							return ErrDuplicate
						}
					}
				}
				if len(members) >= 16 {
					seen = make(map[string]struct{}, 32)
					for i := range members {
						seen[members[i].Name] = struct{}{}
					}
					seen[name] = struct{}{}
				}
			} else {
				for _, n := range names {
					if n == name {
						return ErrDuplicate
					}
				}
				names = append(names, name)
				if len(names) > 16 {
					seen = make(map[string]struct{}, 32)
					for _, n := range names {
						seen[n] = struct{}{}
					}
				}
			}
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return ErrSyntax
		}
		p.pos++
		p.skipSpace()
		start := p.pos
		if err := p.value(depth+1, nil); err != nil {
			return err
		}
		if top != nil {
			*top = append(*top, Member{Name: name, Value: p.data[start:p.pos]})
		} else if depth == 1 && p.want != "" && name == p.want {
			p.found = p.data[start:p.pos]
		}
		if done, err := p.next('}'); done || err != nil {
			return err
		}
	}
}

func (p *parser) array(depth int) error {
	if depth > p.maxDepth {
		return ErrDepth
	}
	p.pos++ // '['
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return nil
	}
	for {
		p.skipSpace()
		if err := p.value(depth+1, nil); err != nil {
			return err
		}
		if done, err := p.next(']'); done || err != nil {
			return err
		}
	}
}

// next consumes the ',' between members or elements, or the closing byte
// (done).
func (p *parser) next(closing byte) (done bool, err error) {
	p.skipSpace()
	if p.pos >= len(p.data) {
		return false, ErrSyntax
	}
	switch p.data[p.pos] {
	case ',':
		p.pos++
		return false, nil
	case closing:
		p.pos++
		return true, nil
	}
	return false, ErrSyntax
}

// ErrType reports a value of another JSON type than the one asked for.
var ErrType = errors.New("strictjson: wrong JSON type")

// String decodes a raw value that must be a JSON string.
func String(raw []byte) (string, error) {
	return decodeString(raw, false)
}

// StringView is String without a copy: when the string has no escapes and
// is ASCII (as the claims of an access token are), the result shares raw's
// memory. raw must never be modified afterwards.
func StringView(raw []byte) (string, error) {
	return decodeString(raw, true)
}

func decodeString(raw []byte, view bool) (string, error) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", ErrType
	}
	inner := raw[1 : len(raw)-1]
	if plainPrefix(inner) != len(inner) {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", ErrSyntax
		}
		if !utf8.Valid(inner) {
			return "", ErrSyntax
		}
		return s, nil
	}
	if view && len(inner) > 0 {
		return unsafe.String(&inner[0], len(inner)), nil
	}
	return string(inner), nil
}

// StringOrArray decodes a value that is a JSON string or an array of JSON
// strings (such as aud), always returning the array form.
func StringOrArray(raw []byte) ([]string, error) {
	return stringOrArray(raw, false)
}

// StringOrArrayView is StringOrArray whose strings share raw's memory, as
// with StringView. raw must never be modified afterwards.
func StringOrArrayView(raw []byte) ([]string, error) {
	return stringOrArray(raw, true)
}

// AppendStringOrArrayView is StringOrArrayView appending the strings to
// dst, so that a caller can decode into memory it already holds.
func AppendStringOrArrayView(dst []string, raw []byte) ([]string, error) {
	return appendStringOrArray(dst, raw, true)
}

func stringOrArray(raw []byte, view bool) ([]string, error) {
	return appendStringOrArray(nil, raw, view)
}

func appendStringOrArray(dst []string, raw []byte, view bool) ([]string, error) {
	if len(raw) > 0 && raw[0] == '"' {
		s, err := decodeString(raw, view)
		if err != nil {
			return nil, err
		}
		return append(dst, s), nil
	}
	return appendStringArray(dst, raw, view)
}

// ErrRange: a NumericDate that is not finite or falls outside the years
// 1 to 9999 (no real token lives there).
var ErrRange = errors.New("strictjson: NumericDate outside the years 1 to 9999")

// NumericDate bounds: 0001-01-01T00:00:00Z and the last second of 9999.
const (
	minNumericDate = -62135596800
	maxNumericDate = 253402300799
)

// NumericDate decodes an RFC 7519 NumericDate, which must be a JSON number
// (fractions allowed). A value that is not finite (1e309 overflows float64)
// or falls outside the years 1 to 9999 is ErrRange.
func NumericDate(raw []byte) (time.Time, error) {
	if len(raw) == 0 || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		return time.Time{}, ErrType
	}
	if sec, ok := smallInteger(raw); ok {
		if sec > maxNumericDate {
			return time.Time{}, ErrRange
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	switch {
	case errors.Is(err, strconv.ErrRange) && (math.IsInf(f, 0) || f != 0):
		return time.Time{}, ErrRange
	case errors.Is(err, strconv.ErrRange):
		// An underflow (1e-400) is zero, a real date.
	case err != nil:
		return time.Time{}, ErrSyntax
	}
	if math.IsNaN(f) || f < minNumericDate || f >= maxNumericDate+1 {
		return time.Time{}, ErrRange
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), nil
}

// smallInteger reads raw when it is a plain non-negative integer of at most
// 15 digits (every NumericDate an issuer sends), exactly as ParseFloat
// would.
func smallInteger(raw []byte) (int64, bool) {
	if len(raw) == 0 || len(raw) > 15 || (raw[0] == '0' && len(raw) > 1) {
		return 0, false
	}
	var n int64
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// Strings decodes a JSON array whose elements are all strings, without
// encoding/json's reflection. null elements and any other type are
// ErrType.
func Strings(raw []byte) ([]string, error) {
	return stringArray(raw, false)
}

func stringArray(raw []byte, view bool) ([]string, error) {
	return appendStringArray(make([]string, 0, 8), raw, view)
}

// appendStringArray appends the strings of the JSON array raw to out; the
// result is never nil.
func appendStringArray(out []string, raw []byte, view bool) ([]string, error) {
	if out == nil {
		out = []string{}
	}
	p := parser{data: raw, maxDepth: 2}
	p.skipSpace()
	if p.pos >= len(p.data) || p.data[p.pos] != '[' {
		return nil, ErrType
	}
	p.pos++
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
	} else {
		for {
			p.skipSpace()
			if p.pos >= len(p.data) || p.data[p.pos] != '"' {
				if p.pos < len(p.data) && (p.data[p.pos] == ']' || p.data[p.pos] == ',') {
					return nil, ErrSyntax
				}
				return nil, ErrType
			}
			start := p.pos
			if _, _, err := p.str(); err != nil {
				return nil, err
			}
			s, err := decodeString(p.data[start:p.pos], view)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
			if done, err := p.next(']'); err != nil {
				return nil, err
			} else if done {
				break
			}
		}
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, ErrSyntax
	}
	return out, nil
}

// Elements returns the raw values of a JSON array, at most limit of them
// (more reports whether the array had others, which are checked for
// syntax but not returned). Nothing is decoded, so a huge array costs no
// more than its first limit elements. Like Shallow, it leaves duplicate
// names inside the elements to the caller, who judges each element.
func Elements(raw []byte, maxDepth, limit int) (elems [][]byte, more bool, err error) {
	p := parser{data: raw, maxDepth: maxDepth, shallow: true}
	p.skipSpace()
	if p.pos >= len(p.data) || p.data[p.pos] != '[' {
		return nil, false, ErrType
	}
	p.pos++
	p.skipSpace()
	elems = make([][]byte, 0, min(limit, 16))
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
	} else {
		for {
			p.skipSpace()
			start := p.pos
			if err := p.value(2, nil); err != nil {
				return nil, false, err
			}
			if len(elems) < limit {
				elems = append(elems, p.data[start:p.pos])
			} else {
				more = true
			}
			if done, err := p.next(']'); err != nil {
				return nil, false, err
			} else if done {
				break
			}
		}
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, false, ErrSyntax
	}
	return elems, more, nil
}
