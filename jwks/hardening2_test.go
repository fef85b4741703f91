package jwks_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks"
)

// TestHardening2_LineBreaksInJWTRefused (issue 13, point 2): encoding/base64
// skips \r and \n even in strict mode, so a genuine token with line breaks
// in any part used to verify. Every byte outside the base64url alphabet and
// the two dots is now refused before decoding, in every part.
func TestHardening2_LineBreaksInJWTRefused(t *testing.T) {
	f := newFixture(t, "RS256", nil)
	token := f.iss.Sign(f.iss.Claims("worker", "worker", "data:read"))
	_, err := f.validator.Validate(context.Background(), token)
	require.NoError(t, err, "the genuine token itself is accepted")
	parts := strings.Split(token, ".")
	spell := func(part int, at int, insert string) string {
		p := append([]string(nil), parts...)
		p[part] = p[part][:at] + insert + p[part][at:]
		return strings.Join(p, ".")
	}
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"LF in the signature", spell(2, 4, "\n"), jwks.ErrMalformed},
		{"CR in the signature", spell(2, 4, "\r"), jwks.ErrMalformed},
		{"CRLF at the end of the signature", token + "\r\n", jwks.ErrMalformed},
		{"2,000 LFs in the signature", spell(2, 4, strings.Repeat("\n", 2000)), jwks.ErrMalformed},
		{"LF in the payload", spell(1, 4, "\n"), jwks.ErrMalformed},
		{"CRLF in the payload", spell(1, 8, "\r\n"), jwks.ErrMalformed},
		{"LF in the header", spell(0, 4, "\n"), jwks.ErrNotJWT},
		{"CR at the start of the header", "\r" + token, jwks.ErrNotJWT},
		{"space in the signature", spell(2, 4, " "), jwks.ErrMalformed},
		{"NUL in the signature", spell(2, 4, "\x00"), jwks.ErrMalformed},
		{"standard base64 '+' in the signature", spell(2, 4, "+"), jwks.ErrMalformed},
		{"non-ASCII byte in the payload", spell(1, 4, "\xc3\xa9"), jwks.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := jwks.ParseToken(tt.token, 0)
			assert.ErrorIs(t, err, tt.want, "ParseToken")
			_, err = f.validator.Validate(context.Background(), tt.token)
			assert.ErrorIs(t, err, tt.want, "Validate")
		})
	}
}
