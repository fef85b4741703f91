package strictjson

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestObject(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Member
		wantErr error
	}{
		{name: "empty object", in: `{}`, want: []Member{}},
		{name: "members in order", in: ` {"b":1, "a":"x"} `, want: []Member{{"b", []byte("1")}, {"a", []byte(`"x"`)}}},
		{name: "nested values kept raw", in: `{"ext":{"email":"a@b"},"scp":["x","y"]}`, want: []Member{{"ext", []byte(`{"email":"a@b"}`)}, {"scp", []byte(`["x","y"]`)}}},
		{name: "escaped name decoded", in: `{"\u0061":1}`, want: []Member{{"a", []byte("1")}}},
		{name: "duplicate top-level", in: `{"a":1,"a":2}`, wantErr: ErrDuplicate},
		{name: "duplicate through escape", in: `{"a":1,"\u0061":2}`, wantErr: ErrDuplicate},
		{name: "duplicate nested", in: `{"ext":{"email":"a","email":"b"}}`, wantErr: ErrDuplicate},
		{name: "duplicate in large nested object", in: `{"o":{` + manyMembers(40) + `,"k0":1}}`, wantErr: ErrDuplicate},
		{name: "array top level", in: `[1]`, wantErr: ErrNotObject},
		{name: "string top level", in: `"x"`, wantErr: ErrNotObject},
		{name: "trailing data", in: `{} {}`, wantErr: ErrSyntax},
		{name: "trailing comma", in: `{"a":1,}`, wantErr: ErrSyntax},
		{name: "single quotes", in: `{'a':1}`, wantErr: ErrSyntax},
		{name: "leading zero", in: `{"a":01}`, wantErr: ErrSyntax},
		{name: "bare fraction", in: `{"a":1.}`, wantErr: ErrSyntax},
		{name: "bad exponent", in: `{"a":1e}`, wantErr: ErrSyntax},
		{name: "bad literal", in: `{"a":tru}`, wantErr: ErrSyntax},
		{name: "control char in string", in: "{\"a\":\"x\ny\"}", wantErr: ErrSyntax},
		{name: "invalid utf8", in: "{\"a\":\"\xff\"}", wantErr: ErrSyntax},
		{name: "bad escape", in: `{"a":"\x"}`, wantErr: ErrSyntax},
		{name: "short unicode escape", in: `{"a":"\u12"}`, wantErr: ErrSyntax},
		{name: "unterminated", in: `{"a":"x`, wantErr: ErrSyntax},
		{name: "too deep", in: `{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, wantErr: ErrDepth},
		{name: "empty input", in: ``, wantErr: ErrNotObject},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Object([]byte(tc.in), 32)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func manyMembers(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = `"k` + string(rune('0'+i%10)) + string(rune('a'+i/10)) + `":1`
	}
	parts[0] = `"k0":0`
	return strings.Join(parts, ",")
}

func TestShallow(t *testing.T) {
	got, err := Shallow([]byte(`{"keys":[{"a":1,"a":2}]}`), 8)
	require.NoError(t, err)
	assert.Equal(t, []Member{{"keys", []byte(`[{"a":1,"a":2}]`)}}, got)
	_, err = Shallow([]byte(`{"keys":[],"keys":[]}`), 8)
	assert.ErrorIs(t, err, ErrDuplicate)
}

func TestValid(t *testing.T) {
	for _, in := range []string{`1`, `"s"`, `[1,{"a":null}]`, `true`, `-0.5e+3`} {
		assert.NoError(t, Valid([]byte(in), 8), in)
	}
	for _, in := range []string{`[1,]`, `{"a":1,"a":1}`, `[[[[[[[[[1]]]]]]]]]`, `-`, `nul`} {
		assert.Error(t, Valid([]byte(in), 8), in)
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr error
	}{
		{in: `"plain"`, want: "plain"},
		{in: `"with \"escape\" and \u00e9"`, want: `with "escape" and é`},
		{in: `"héllo"`, want: "héllo"},
		{in: `1`, wantErr: ErrType},
		{in: `null`, wantErr: ErrType},
		{in: `["a"]`, wantErr: ErrType},
		{in: "\"\xff\"", wantErr: ErrSyntax},
	}
	for _, tc := range tests {
		got, err := String([]byte(tc.in))
		if tc.wantErr != nil {
			assert.ErrorIs(t, err, tc.wantErr, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got)
	}
}

// FuzzValid checks that everything strictjson accepts, encoding/json accepts
// too: strictjson may only be stricter.
func FuzzValid(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,2,{"b":"c"}]}`, `{"a":1,"a":2}`, `"x"`, `[1e5,-0.1,true,false,null]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if Valid(data, 64) == nil {
			assert.True(t, json.Valid(data), "strictjson accepted what encoding/json refuses: %q", data)
		}
		if members, err := Object(data, 64); err == nil {
			var m map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(data, &m))
			assert.Len(t, m, len(members))
		}
	})
}

func TestStringOrArray(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		ok   bool
	}{
		{in: `"a"`, want: []string{"a"}, ok: true},
		{in: `["a","b"]`, want: []string{"a", "b"}, ok: true},
		{in: `[]`, want: []string{}, ok: true},
		{in: `null`},
		{in: `[1]`},
		{in: `7`},
	}
	for _, tc := range tests {
		got, err := StringOrArray([]byte(tc.in))
		if !tc.ok {
			assert.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got)
	}
}

func TestNumericDate(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{in: `0`, want: time.Unix(0, 0).UTC(), ok: true},
		{in: `1700000000`, want: time.Unix(1700000000, 0).UTC(), ok: true},
		{in: `1700000000.5`, want: time.Unix(1700000000, 5e8).UTC(), ok: true},
		{in: `1e400`},  // not finite: ErrRange since issue 13 point 9 (was clamped to 9999)
		{in: `-1e400`}, // likewise
		{in: `"1700000000"`},
		{in: `true`},
		{in: `null`},
		{in: ``},
	}
	for _, tc := range tests {
		got, err := NumericDate([]byte(tc.in))
		if !tc.ok {
			assert.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
}

// TestManyMembersStayLinear: an object of thousands of members is checked
// for duplicates in linear time, at the top level as below it.
func TestManyMembersStayLinear(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i := range 5000 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"k` + strconv.Itoa(i) + `":1`)
	}
	b.WriteString("}")
	doc := []byte(b.String())
	allocs := testing.AllocsPerRun(5, func() {
		_, err := Object(doc, 8)
		require.NoError(t, err)
	})
	assert.Less(t, allocs, 20000.0)
	dup := append(append([]byte{}, doc[:len(doc)-1]...), []byte(`,"k0":2}`)...)
	_, err := Object(dup, 8)
	assert.ErrorIs(t, err, ErrDuplicate)
	_, err = Object([]byte(`{"a":{"b":1,"b":2}}`), 8)
	assert.ErrorIs(t, err, ErrDuplicate)
	_, err = Shallow([]byte(`{"a":{"b":1,"b":2}}`), 8)
	assert.NoError(t, err)
}

func TestStrings(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  error
	}{
		{in: `[]`, want: []string{}},
		{in: ` [ "a" , "b\u0063" ] `, want: []string{"a", "bc"}},
		{in: `["data:read","data:write"]`, want: []string{"data:read", "data:write"}},
		{in: `[null]`, err: ErrType},
		{in: `["a",1]`, err: ErrType},
		{in: `["a",["b"]]`, err: ErrType},
		{in: `"a"`, err: ErrType},
		{in: `{}`, err: ErrType},
		{in: `["a",]`, err: ErrSyntax},
		{in: `["a"`, err: ErrSyntax},
		{in: `["a"] x`, err: ErrSyntax},
		{in: "[\"\xff\"]", err: ErrSyntax},
	}
	for _, tc := range tests {
		got, err := Strings([]byte(tc.in))
		if tc.err != nil {
			assert.ErrorIs(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
}

// FuzzStrings checks Strings against encoding/json: what it accepts,
// encoding/json decodes to the same strings.
func FuzzStrings(f *testing.F) {
	for _, s := range []string{`[]`, `["a","b"]`, `["\u00e9"]`, `[1]`, `["a",]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Strings(data)
		view, viewErr := StringOrArrayView(data)
		if len(data) == 0 || data[0] != '"' {
			assert.Equal(t, err == nil, viewErr == nil, "the view decodes what Strings does")
		}
		if err != nil {
			return
		}
		var want []string
		require.NoError(t, json.Unmarshal(data, &want), "%q", data)
		assert.Equal(t, want, got)
		assert.Equal(t, want, view)
	})
}

// TestStringView: the view decodes exactly as String does, and shares the
// input's memory only for plain ASCII without escapes.
func TestStringView(t *testing.T) {
	tests := []struct {
		raw    string
		want   string
		shared bool
		err    error
	}{
		{raw: `"worker"`, want: "worker", shared: true},
		{raw: `""`, want: ""},
		{raw: `"caf\u00e9"`, want: "café"},
		{raw: `"é"`, want: "é"},
		{raw: `"a\"b"`, want: `a"b`},
		{raw: `7`, err: ErrType},
		{raw: `"\x"`, err: ErrSyntax},
	}
	for _, tt := range tests {
		raw := []byte(tt.raw)
		got, err := StringView(raw)
		want, wantErr := String(raw)
		assert.Equal(t, want, got, tt.raw)
		assert.Equal(t, wantErr, err, tt.raw)
		if tt.err != nil {
			assert.ErrorIs(t, err, tt.err, tt.raw)
			continue
		}
		assert.Equal(t, tt.want, got, tt.raw)
		shared := len(got) > 0 && unsafe.StringData(got) == &raw[1]
		assert.Equal(t, tt.shared, shared, tt.raw)
	}
}

func TestElements(t *testing.T) {
	elems, more, err := Elements([]byte(` [1, {"a":[2]}, "x", null] `), 8, 3)
	require.NoError(t, err)
	assert.True(t, more)
	assert.Equal(t, [][]byte{[]byte("1"), []byte(`{"a":[2]}`), []byte(`"x"`)}, elems)
	elems, more, err = Elements([]byte(`[]`), 8, 3)
	require.NoError(t, err)
	assert.False(t, more)
	assert.Empty(t, elems)
	for _, bad := range []string{`{}`, `[1,]`, `[1`, `[1] x`, `[tru]`} {
		_, _, err := Elements([]byte(bad), 8, 3)
		assert.Error(t, err, bad)
	}
	huge := []byte("[" + strings.Repeat("0,", 100000) + "0]")
	allocs := testing.AllocsPerRun(3, func() {
		elems, more, err := Elements(huge, 8, 100)
		require.NoError(t, err)
		require.True(t, more)
		require.Len(t, elems, 100)
	})
	assert.Less(t, allocs, 20.0, "a huge array costs no more than its first elements")
}

// TestDuplicatesAtEveryWidth: duplicate names are found however many
// members come before them, at the top level (checked against the members)
// and nested (checked against a list, then a map).
func TestDuplicatesAtEveryWidth(t *testing.T) {
	for _, n := range []int{1, 2, 15, 16, 17, 40} {
		for _, dupOf := range []int{0, n / 2, n - 1} {
			var b strings.Builder
			b.WriteString("{")
			for i := range n {
				fmt.Fprintf(&b, `"m%d":%d,`, i, i)
			}
			fmt.Fprintf(&b, `"m%d":true}`, dupOf)
			doc := b.String()
			_, err := Object([]byte(doc), 4)
			assert.ErrorIs(t, err, ErrDuplicate, "top level, %d members, duplicate of #%d", n, dupOf)
			assert.ErrorIs(t, Valid([]byte(`{"x":`+doc+`}`), 4), ErrDuplicate, "nested, %d members, duplicate of #%d", n, dupOf)
			members, err := Object([]byte(strings.Replace(doc, fmt.Sprintf(`"m%d":true}`, dupOf), `"last":true}`, 1)), 4)
			require.NoError(t, err)
			assert.Len(t, members, n+1)
		}
	}
}

// TestNumericDateFastPath: plain integers give what ParseFloat gives.
func TestNumericDateFastPath(t *testing.T) {
	// Values beyond 9999 ("999999999999999", "1000000000000000",
	// "253402300800") were clamped before issue 13 point 9 and are ErrRange
	// now: TestHardening2_NumericDateBeyondAnyRealDate covers them.
	for _, raw := range []string{"0", "7", "1700000000", "253402300799", "1700000000.5", "-5", "1e9"} {
		got, err := NumericDate([]byte(raw))
		require.NoError(t, err, raw)
		f, err := strconv.ParseFloat(raw, 64)
		require.NoError(t, err)
		f = max(min(f, 253402300799), -253402300799)
		sec := int64(f)
		assert.Equal(t, time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), got, raw)
	}
}

// TestFind: the member's raw value, under Object's rules for the whole
// document.
func TestFind(t *testing.T) {
	tests := []struct {
		doc   string
		value string
		found bool
		err   error
	}{
		{doc: `{"a":1,"email":"x@y","b":{"email":"inner"}}`, value: `"x@y"`, found: true},
		{doc: `{"a":1,"b":{"email":"inner"}}`},
		{doc: `{}`},
		{doc: `{"email":"x","email":"y"}`, err: ErrDuplicate},
		{doc: `{"a":{"b":1,"b":2},"email":"x"}`, err: ErrDuplicate},
		{doc: `[1]`, err: ErrNotObject},
		{doc: `{"email":"x"} x`, err: ErrSyntax},
		{doc: `{"email":{"a":[[[[1]]]]}}`, err: ErrDepth},
	}
	for _, tt := range tests {
		value, found, err := Find([]byte(tt.doc), "email", 4)
		if tt.err != nil {
			assert.ErrorIs(t, err, tt.err, tt.doc)
			continue
		}
		require.NoError(t, err, tt.doc)
		assert.Equal(t, tt.found, found, tt.doc)
		assert.Equal(t, tt.value, string(value), tt.doc)
	}
}

// TestHardening2_NumericDateBeyondAnyRealDate (issue 13, point 9): a
// NumericDate that is not finite or falls outside the years 1 to 9999 is
// ErrRange; exp 1e300 used to be clamped to 9999 and so never expired.
func TestHardening2_NumericDateBeyondAnyRealDate(t *testing.T) {
	tests := []struct {
		in   string
		ok   bool // else ErrRange
		want time.Time
	}{
		{in: `1e300`},
		{in: `1e309`},
		{in: `-1e309`},
		{in: `253402300800`},          // 10000-01-01T00:00:00Z
		{in: `253402300799.99999999`}, // rounds to 10000-01-01 in float64
		{in: `999999999999999`},       // the integer fast path
		{in: `1000000000000000`},      // just past it
		{in: `-62135596801`},          // 0000-12-31T23:59:59Z
		{in: `-1e300`},
		{in: `253402300799`, ok: true, want: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)},
		{in: `253402300799.5`, ok: true, want: time.Date(9999, 12, 31, 23, 59, 59, 5e8, time.UTC)},
		{in: `-62135596800`, ok: true, want: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)},
		{in: `1e-400`, ok: true, want: time.Unix(0, 0).UTC()}, // an underflow is zero, a real date
		{in: `1700000000`, ok: true, want: time.Unix(1700000000, 0).UTC()},
	}
	for _, tc := range tests {
		got, err := NumericDate([]byte(tc.in))
		if !tc.ok {
			assert.ErrorIs(t, err, ErrRange, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
}
