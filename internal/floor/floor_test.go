package floor_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/olympus/aegis/internal/floor"
	"github.com/olympus/aegis/jwks/jwkstest"
)

func TestVerify(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			iss := jwkstest.NewIssuer(t, jwkstest.Config{Algorithm: alg})
			token := iss.M2M("worker")
			pub := iss.CurrentKey().Public()
			tests := []struct {
				name  string
				token string
				want  bool
			}{
				{"signed", token, true},
				{"other signature", token[:len(token)-4] + "AAAA", false},
				{"no signature", token[:len(token)-1] + "!", false},
				{"no dot", "abc", false},
			}
			for _, tt := range tests {
				assert.Equal(t, tt.want, floor.Verify(alg, pub, tt.token), tt.name)
			}
		})
	}
}
