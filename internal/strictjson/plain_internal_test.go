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
