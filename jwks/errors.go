package jwks

import (
	"errors"
	"fmt"
	"time"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/internal/refusal"
)

// Reasons a token is refused. Every refusal is an *aegis.Refusal whose
// cause wraps exactly one of them, so callers branch with errors.Is, or
// read the Refusal's Reason. Their text is Aegis's own and never contains any
// part of the token.
var (
	// ErrMalformed: not a compact JWS of three canonical base64url parts
	// with JSON header and claims, or an unusable header.
	ErrMalformed = errors.New("jwks: malformed token")
	// ErrNotJWT: not shaped like a JWT at all (an opaque token, say). It
	// matches ErrMalformed too.
	ErrNotJWT = fmt.Errorf("%w: not a JWT", ErrMalformed)
	// ErrAlgorithm: the header's alg is not allowed, or not the algorithm
	// of the key that would verify it.
	ErrAlgorithm = errors.New("jwks: algorithm not allowed")
	// ErrUnknownKey: the issuer's key set has no key for the token.
	ErrUnknownKey = errors.New("jwks: no key for the token")
	// ErrSignature: the signature does not verify.
	ErrSignature = errors.New("jwks: signature invalid")
	// ErrType: not a JWT access token: typ names another kind of JWT
	// (dpop+jwt, logout+jwt…), or is not at+jwt while that is required, or
	// the claims are an OpenID Connect ID token's (nonce, at_hash, c_hash).
	ErrType = errors.New("jwks: wrong token type")
	// ErrIssuer: iss is not the configured issuer.
	ErrIssuer = errors.New("jwks: issuer mismatch")
	// ErrAudience: aud does not contain the configured audience.
	ErrAudience = errors.New("jwks: audience mismatch")
	// ErrExpired: exp is not in the future.
	ErrExpired = errors.New("jwks: token expired")
	// ErrNotYetValid: nbf or iat is in the future.
	ErrNotYetValid = errors.New("jwks: token not yet valid")
	// ErrClaims: a required claim is missing or a claim has the wrong type.
	ErrClaims = errors.New("jwks: invalid claims")
	// ErrKeysUnavailable: the key set could not be obtained and none is
	// cached, or the token's kid is not among the cached keys while the key
	// set cannot be fetched (it may be the issuer's new key). This is the
	// server's problem, not the token's; the error is an
	// *aegis.Refusal of class unavailable carrying a retry hint.
	ErrKeysUnavailable = errors.New("jwks: keys unavailable")
)

// refuse returns the *aegis.Refusal for reason (one of the Err values
// above, still reachable through errors.Is) with Aegis's short detail.
func refuse(reason error, detail string) error {
	return refusal.With(reasonOf(reason), reason, detail)
}

// reasonOf maps each Err value to the reason code of its refusal.
func reasonOf(err error) aegis.Reason {
	switch err {
	case ErrAlgorithm:
		return aegis.ReasonAlgorithmRejected
	case ErrUnknownKey:
		return aegis.ReasonKeyUnknown
	case ErrSignature:
		return aegis.ReasonSignatureInvalid
	case ErrType:
		return aegis.ReasonTypeRejected
	case ErrIssuer:
		return aegis.ReasonIssuerMismatch
	case ErrAudience:
		return aegis.ReasonAudienceMismatch
	case ErrExpired:
		return aegis.ReasonTokenExpired
	case ErrNotYetValid:
		return aegis.ReasonTokenNotYetValid
	case ErrClaims:
		return aegis.ReasonClaimsInvalid
	default: // ErrMalformed, ErrNotJWT
		return aegis.ReasonTokenMalformed
	}
}

// unavailable returns the refusal for keys that cannot be had, matching
// ErrKeysUnavailable, to be retried after retry.
func unavailable(retry time.Duration, cause error) error {
	err := ErrKeysUnavailable
	if cause != nil {
		err = fmt.Errorf("%w: %w", ErrKeysUnavailable, cause)
	}
	return aegis.Unavailable(aegis.ReasonKeysUnavailable, retry, err)
}
