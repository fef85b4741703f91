package introspect

import (
	"errors"
	"fmt"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/internal/refusal"
)

// Reasons a token is refused. Every refusal is an *aegis.Refusal whose
// cause wraps one of them (errors.Is finds it); their text is
// Aegis's own and never contains the token.
var (
	// ErrMalformed: the token fails the syntax check; no call was made.
	ErrMalformed = errors.New("introspect: malformed token")
	// ErrInactive: the server answered "active": false.
	ErrInactive = errors.New("introspect: token not active")
	// ErrExpired: the answer's exp has passed.
	ErrExpired = errors.New("introspect: token expired")
	// ErrNotYetValid: the answer's nbf is in the future.
	ErrNotYetValid = errors.New("introspect: token not yet valid")
	// ErrIssuer: the answer's iss is not the configured issuer.
	ErrIssuer = errors.New("introspect: issuer mismatch")
	// ErrAudience: the answer's aud does not contain the configured audience.
	ErrAudience = errors.New("introspect: audience mismatch")
	// ErrTokenUse: the token is not an access token (token_use).
	ErrTokenUse = errors.New("introspect: not an access token")
	// ErrClaims: the answer lacks sub, or its exp, iat or nbf is not finite
	// or falls outside the years 1 to 9999.
	ErrClaims = errors.New("introspect: invalid claims")
	// ErrUnavailable: no trustworthy answer could be had (server down, 5xx,
	// malformed or oversized answer, our credentials refused, too many calls
	// under way). The error is an *aegis.Refusal of class unavailable.
	ErrUnavailable = errors.New("introspect: server unavailable")
	// ErrCredentials: the server refused Aegis's own client credentials.
	// It comes wrapped in the unavailable refusal.
	ErrCredentials = errors.New("introspect: the server refused our client credentials")
)

// refuse returns the *aegis.Refusal for reason (one of the Err values
// above, still reachable through errors.Is) with Aegis's short detail.
func refuse(reason error, detail string) error {
	return refusal.With(reasonOf(reason), reason, detail)
}

// reasonOf maps each Err value to the reason code of its refusal.
func reasonOf(err error) aegis.Reason {
	switch err {
	case ErrInactive:
		return aegis.ReasonTokenInactive
	case ErrExpired:
		return aegis.ReasonTokenExpired
	case ErrNotYetValid:
		return aegis.ReasonTokenNotYetValid
	case ErrIssuer:
		return aegis.ReasonIssuerMismatch
	case ErrAudience:
		return aegis.ReasonAudienceMismatch
	case ErrTokenUse:
		return aegis.ReasonTokenUseRejected
	case ErrClaims:
		return aegis.ReasonClaimsInvalid
	default: // ErrMalformed
		return aegis.ReasonTokenMalformed
	}
}

// unavailable returns the refusal for an endpoint that gave no trustworthy
// answer, matching ErrUnavailable, caused by err.
func unavailable(err error) error {
	cause := ErrUnavailable
	if err != nil {
		cause = fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return aegis.Unavailable(aegis.ReasonIntrospectionUnavailable, DefaultRetryAfter, cause)
}
