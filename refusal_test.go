package aegis_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis"
)

func TestReasons(t *testing.T) {
	reasons := aegis.Reasons()
	require.NotEmpty(t, reasons)
	assert.Equal(t, aegis.ReasonAccepted, reasons[0])
	seen := map[aegis.Reason]bool{}
	for _, r := range reasons {
		assert.False(t, seen[r], "%s listed twice", r)
		seen[r] = true
		if r != aegis.ReasonAccepted && r != aegis.ReasonTokenMissing {
			assert.NotEmpty(t, r.Description(), "%s has a description", r)
		}
	}
	reasons[0] = "changed"
	assert.Equal(t, aegis.ReasonAccepted, aegis.Reasons()[0], "Reasons returns a copy")
}

func TestReasonClass(t *testing.T) {
	tests := []struct {
		reason aegis.Reason
		class  aegis.Class
	}{
		{aegis.ReasonTokenExpired, aegis.ClassInvalid},
		{aegis.ReasonRequestMalformed, aegis.ClassInvalid},
		{aegis.ReasonInsufficientScope, aegis.ClassForbidden},
		{aegis.ReasonRateLimited, aegis.ClassLimited},
		{aegis.ReasonKeysUnavailable, aegis.ClassUnavailable},
		{aegis.ReasonValidationAborted, aegis.ClassUnavailable},
		{"made_up", aegis.ClassInvalid},
	}
	for _, tt := range tests {
		t.Run(string(tt.reason), func(t *testing.T) {
			assert.Equal(t, tt.class, tt.reason.Class())
			assert.Equal(t, tt.class, aegis.Refuse(tt.reason, nil).Class)
		})
	}
}

func TestRefusal(t *testing.T) {
	cause := errors.New("exp is not in the future")
	r := aegis.Refuse(aegis.ReasonTokenExpired, cause)
	assert.ErrorIs(t, r, cause)
	assert.Equal(t, "aegis: token_expired: The access token expired: exp is not in the future", r.Error())
	u := aegis.Unavailable(aegis.ReasonKeysUnavailable, 3*time.Second, nil)
	assert.Equal(t, aegis.ClassUnavailable, u.Class)
	assert.Equal(t, 3*time.Second, u.RetryAfter)
	var none *aegis.Refusal
	assert.Equal(t, "aegis: <nil>", none.Error())
	assert.NoError(t, none.Unwrap())
}

// A refusal from any package of Aegis is an *aegis.Refusal.
func ExampleRefusal() {
	var err error = aegis.Refuse(aegis.ReasonAudienceMismatch, nil)
	var r *aegis.Refusal
	if errors.As(err, &r) {
		fmt.Println(r.Reason, r.Class, r.Description)
	}
	// Output: audience_mismatch invalid The access token is not meant for this API
}
