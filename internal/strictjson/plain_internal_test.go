package strictjson

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
)

// wordIsPlain is plainWord byte by byte.
func wordIsPlain(w uint64) bool {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], w)
	for _, c := range b {
		if !plain[c] {
			return false
		}
	}
	return true
}

// TestPlainWord: the eight-at-a-time test agrees with the table for every
// byte value at every position (among plain bytes and among others, so
// that borrows from a lower byte are exercised), and on random words.
func TestPlainWord(t *testing.T) {
	fills := []struct {
		name string
		fill byte
	}{{"plain", 'a'}, {"lowest plain", ' '}, {"highest plain", 0x7f}, {"control", 0x00}, {"quote", '"'}, {"high", 0xff}}
	for _, f := range fills {
		t.Run(f.name, func(t *testing.T) {
			for pos := range 8 {
				for c := range 256 {
					var b [8]byte
					for i := range b {
						b[i] = f.fill
					}
					b[pos] = byte(c)
					w := binary.LittleEndian.Uint64(b[:])
					if plainWord(w) != wordIsPlain(w) {
						assert.Failf(t, "plainWord disagrees", "% x: got %v", b, plainWord(w))
						return
					}
				}
			}
		})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1_000_000 {
		w := rng.Uint64()
		// Bias towards plain bytes so that both answers occur.
		w &^= rng.Uint64() & highs
		if plainWord(w) != wordIsPlain(w) {
			assert.Failf(t, "plainWord disagrees", "%#x", w)
			return
		}
	}
}

func TestPlainPrefix(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"", 0},
		{"abc", 3},
		{"abcdefgh", 8},
		{"abcdefghijklmnopq", 17},
		{`abcdefghij"`, 10},
		{`abcdefgh\n`, 8},
		{"abc\x00defghijkl", 3},
		{"abcdefghijk\u00e9", 11},
		{`"`, 0},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, plainPrefix([]byte(tt.in)), "%q", tt.in)
	}
}

// TestKnownNameDuplicates: the top level's duplicate check keeps known
// names as bits; a known name spelled with escapes is the same name, and
// unknown names are still compared with every earlier one.
func TestKnownNameDuplicates(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		dup  bool
	}{
		{"all known, distinct", `{"iss":1,"sub":2,"aud":3,"exp":4,"nbf":5,"iat":6,"jti":7,"client_id":8,"scp":9,"ext":{}}`, false},
		{"known twice", `{"iss":1,"sub":2,"iss":3}`, true},
		{"known, escaped", `{"iss":1,"\u0069ss":2}`, true},
		{"escaped first", `{"\u0069ss":1,"iss":2}`, true},
		{"unknown twice", `{"iss":1,"tenant":2,"sub":3,"tenant":4}`, true},
		{"unknown, escaped", `{"tenant":1,"t\u0065nant":2}`, true},
		{"unknown like known", `{"iss":1,"iss ":2,"Iss":3}`, false},
		{"every known name once", `{"alg":0,"kid":0,"typ":0,"iss":0,"sub":0,"aud":0,"exp":0,"nbf":0,"iat":0,"jti":0,"client_id":0,"scope":0,"scp":0,"ext":0,"email":0,"active":0,"keys":0}`, false},
		{"past 16 members", `{"alg":0,"kid":0,"typ":0,"iss":0,"sub":0,"aud":0,"exp":0,"nbf":0,"iat":0,"jti":0,"client_id":0,"scope":0,"scp":0,"ext":0,"email":0,"active":0,"keys":0,"x":0,"alg":1}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Object([]byte(tt.doc), MaxClaimsDepth)
			if tt.dup {
				assert.ErrorIs(t, err, ErrDuplicate)
			} else {
				assert.NoError(t, err)
			}
		})
	}
	for i, n := range knownNames {
		assert.Equal(t, i, knownIndex(n), n)
	}
	assert.Less(t, len(knownNames), 32, "the bits fit a uint32")
}
