package b64token

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestValid(t *testing.T) {
	for _, s := range []string{"a", "eyJ.eyJ.sig", "ory_at_x-y.z~+/", "abc==", "a="} {
		assert.True(t, Valid(s), s)
	}
	for _, s := range []string{"", "=", "==a", "a b", "a\"", "a=b", "é", "a\n"} {
		assert.False(t, Valid(s), s)
	}
}
