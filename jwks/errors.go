package jwks

import (
	"errors"
	"fmt"
	"time"
)

// Reasons a token is refused. Validate wraps exactly one of them, so callers
// branch with errors.Is. Their text is Aegis's own and never contains any
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
	// server's problem, not the token's; the error is an *UnavailableError
	// carrying a retry hint.
	ErrKeysUnavailable = errors.New("jwks: keys unavailable")
)

// ValidationError is a refusal with a reason (one of the Err values above,
// reachable through errors.Is) and a short detail written by Aegis.
type ValidationError struct {
	Reason error
	Detail string
}

// Error describes the refusal in Aegis's own words.
func (e *ValidationError) Error() string {
	if e.Detail == "" {
		return e.Reason.Error()
	}
	return e.Reason.Error() + ": " + e.Detail
}

// Unwrap returns the reason.
func (e *ValidationError) Unwrap() error { return e.Reason }

func refuse(reason error, detail string) error {
	return &ValidationError{Reason: reason, Detail: detail}
}

// UnavailableError reports that keys could not be had. It matches
// ErrKeysUnavailable with errors.Is.
type UnavailableError struct {
	// RetryAfter is when a new attempt will be made, at the earliest.
	RetryAfter time.Duration
	// Err is the cause of the last failed fetch.
	Err error
}

// Error describes the failure.
func (e *UnavailableError) Error() string {
	if e.Err == nil {
		return ErrKeysUnavailable.Error()
	}
	return ErrKeysUnavailable.Error() + ": " + e.Err.Error()
}

// Is reports whether target is ErrKeysUnavailable.
func (e *UnavailableError) Is(target error) bool { return target == ErrKeysUnavailable }

// Unwrap returns the cause.
func (e *UnavailableError) Unwrap() error { return e.Err }
