package refusal_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/internal/refusal"
)

func TestWith(t *testing.T) {
	sentinel := errors.New("jwks: token expired")
	r := refusal.With(aegis.ReasonTokenExpired, sentinel, "exp is not in the future")
	assert.ErrorIs(t, r, sentinel)
	assert.Equal(t, aegis.ClassInvalid, r.Class)
	assert.Equal(t, "aegis: token_expired: The access token expired: jwks: token expired: exp is not in the future", r.Error())
	allocs := testing.AllocsPerRun(100, func() { _ = refusal.With(aegis.ReasonTokenExpired, sentinel, "d") })
	assert.Equal(t, 1.0, allocs, "one allocation holds the refusal and its cause")
}
