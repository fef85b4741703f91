package introspect

import (
	"errors"
	"time"
)

// Reasons a token is refused. Introspect wraps one of them; their text is
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
	// ErrClaims: the answer lacks sub.
	ErrClaims = errors.New("introspect: invalid claims")
	// ErrUnavailable: no trustworthy answer could be had (server down, 5xx,
	// malformed or oversized answer, our credentials refused, too many calls
	// under way). The error is an *UnavailableError.
	ErrUnavailable = errors.New("introspect: server unavailable")
	// ErrCredentials: the server refused Aegis's own client credentials.
	// It comes wrapped in an *UnavailableError.
	ErrCredentials = errors.New("introspect: the server refused our client credentials")
)

// RefusalError is a refusal with a reason (one of the Err values above,
// reachable through errors.Is) and a short detail written by Aegis.
type RefusalError struct {
	Reason error
	Detail string
}

// Error describes the refusal in Aegis's own words.
func (e *RefusalError) Error() string {
	if e.Detail == "" {
		return e.Reason.Error()
	}
	return e.Reason.Error() + ": " + e.Detail
}

// Unwrap returns the reason.
func (e *RefusalError) Unwrap() error { return e.Reason }

func refuse(reason error, detail string) error { return &RefusalError{Reason: reason, Detail: detail} }

// UnavailableError reports that no trustworthy answer could be had. It
// matches ErrUnavailable with errors.Is.
type UnavailableError struct {
	// RetryAfter suggests when to try again.
	RetryAfter time.Duration
	// Err is the cause.
	Err error
}

// Error describes the failure.
func (e *UnavailableError) Error() string {
	if e.Err == nil {
		return ErrUnavailable.Error()
	}
	return ErrUnavailable.Error() + ": " + e.Err.Error()
}

// Is reports whether target is ErrUnavailable.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// Unwrap returns the cause.
func (e *UnavailableError) Unwrap() error { return e.Err }
