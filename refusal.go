package aegis

import (
	"slices"
	"time"
)

// Defaults shared by every part of Aegis that reads tokens.
const (
	// DefaultLeeway is the clock skew tolerated on exp, nbf and iat unless
	// configured otherwise.
	DefaultLeeway = 30 * time.Second
	// MaxLeeway is the largest leeway accepted.
	MaxLeeway = 5 * time.Minute
	// DefaultMaxTokenLength bounds a token before any decoding.
	DefaultMaxTokenLength = 8 << 10
)

// Reason is the stable, machine-readable cause of a verdict on a
// credential: ReasonAccepted, or why it was refused. Logs, metrics and
// every transport's answers carry it; its text never changes.
type Reason string

// Every reason Aegis gives.
const (
	// ReasonAccepted: the credential passed every check.
	ReasonAccepted Reason = "accepted"

	// ReasonTokenMissing: the request carries no token at all.
	ReasonTokenMissing Reason = "token_missing"
	// ReasonRequestMalformed: the request presents its token wrongly
	// (two tokens, two Authorization headers, a bad header, an empty
	// token, a token in a source that is not accepted).
	ReasonRequestMalformed Reason = "request_malformed"
	// ReasonTokenTooLong: the token exceeds the configured length.
	ReasonTokenTooLong Reason = "token_too_long"
	// ReasonTokenMalformed: the token is not well-formed (not strict
	// base64url JSON of a JWT, or not a b64token for introspection).
	ReasonTokenMalformed Reason = "token_malformed"
	// ReasonTokenInvalid: the token was refused for no more precise reason
	// (a custom validator's plain error, say).
	ReasonTokenInvalid Reason = "token_invalid"
	// ReasonAlgorithmRejected: the JWT's alg is not allowed, or is not
	// its key's algorithm.
	ReasonAlgorithmRejected Reason = "algorithm_rejected"
	// ReasonKeyUnknown: the issuer's key set has no key for the JWT.
	ReasonKeyUnknown Reason = "key_unknown"
	// ReasonSignatureInvalid: the JWT's signature does not verify.
	ReasonSignatureInvalid Reason = "signature_invalid"
	// ReasonTypeRejected: the JWT is typed for another use (an ID token,
	// dpop+jwt…), or not at+jwt while that is required.
	ReasonTypeRejected Reason = "type_rejected"
	// ReasonIssuerMismatch: the token's iss is not a trusted issuer.
	ReasonIssuerMismatch Reason = "issuer_mismatch"
	// ReasonAudienceMismatch: the token's aud lacks the configured audience.
	ReasonAudienceMismatch Reason = "audience_mismatch"
	// ReasonTokenExpired: exp has passed.
	ReasonTokenExpired Reason = "token_expired"
	// ReasonTokenNotYetValid: nbf or iat is in the future.
	ReasonTokenNotYetValid Reason = "token_not_yet_valid"
	// ReasonClaimsInvalid: a required claim is missing or a claim has the
	// wrong type (sub, client_id, exp, scope, email…).
	ReasonClaimsInvalid Reason = "claims_invalid"
	// ReasonTokenInactive: the issuer's introspection says the token is
	// not active (revoked, expired or unknown to it).
	ReasonTokenInactive Reason = "token_inactive"
	// ReasonTokenUseRejected: introspection says it is not an access token.
	ReasonTokenUseRejected Reason = "token_use_rejected"
	// ReasonInvalidDPoPProof: the DPoP proof (RFC 9449) is missing, not
	// one, malformed, not signed by its own key, not for this request
	// (htm, htu), too old or too new (iat), replayed (jti), not for this
	// token (ath), or its key is not the one the token is bound to
	// (cnf.jkt).
	ReasonInvalidDPoPProof Reason = "invalid_dpop_proof"
	// ReasonUseDPoPNonce: the DPoP proof lacks the server's current nonce
	// (RFC 9449 §8); retry with the nonce of the DPoP-Nonce header.
	ReasonUseDPoPNonce Reason = "use_dpop_nonce"
	// ReasonBindingMismatch: the token is not presented as its binding
	// demands (RFC 9449 §7): a DPoP-bound token (cnf.jkt) as a Bearer
	// token, an unbound token under the DPoP scheme, a Bearer token where
	// only DPoP is accepted, a DPoP proof beside a Bearer token where that
	// is refused, or a DPoP-bound token where DPoP is off.
	ReasonBindingMismatch Reason = "binding_mismatch"
	// ReasonCertificateMismatch: the token is bound to a client
	// certificate (RFC 8705 cnf x5t#S256) and the request's TLS client
	// certificate is absent or another.
	ReasonCertificateMismatch Reason = "certificate_mismatch"

	// ReasonInsufficientScope: the token lacks a scope the resource needs.
	ReasonInsufficientScope Reason = "insufficient_scope"
	// ReasonInsufficientUserAuthentication: the user's authentication
	// behind the token does not meet the resource's requirements (acr,
	// auth_time; RFC 9470), or there is no user (an M2M token).
	ReasonInsufficientUserAuthentication Reason = "insufficient_user_authentication"

	// ReasonRateLimited: the client's rate limit is exhausted.
	ReasonRateLimited Reason = "rate_limited"

	// ReasonKeysUnavailable: the issuer's keys cannot be obtained.
	ReasonKeysUnavailable Reason = "keys_unavailable"
	// ReasonIntrospectionUnavailable: the introspection endpoint gives no
	// trustworthy answer (down, 5xx, refused our credentials, overloaded).
	ReasonIntrospectionUnavailable Reason = "introspection_unavailable"
	// ReasonIntrospectionUnconfigured: the token needs introspection and
	// none is configured for its issuer.
	ReasonIntrospectionUnconfigured Reason = "introspection_unconfigured"
	// ReasonRateLimitUnavailable: the rate limiter's store cannot decide.
	ReasonRateLimitUnavailable Reason = "rate_limit_unavailable"
	// ReasonReplayStoreUnavailable: the store of DPoP proofs already seen
	// cannot decide whether a proof is a replay.
	ReasonReplayStoreUnavailable Reason = "replay_store_unavailable"
	// ReasonValidationAborted: the request's context ended first.
	ReasonValidationAborted Reason = "validation_aborted"
)

// Reasons lists every reason Aegis gives, ReasonAccepted first.
func Reasons() []Reason {
	return slices.Clone(reasonOrder)
}

// Class groups refusals by what the caller should do about them.
type Class string

const (
	// ClassInvalid: the credential (or how it was presented) is not
	// acceptable; a new token may help.
	ClassInvalid Class = "invalid"
	// ClassForbidden: the credential is valid but does not grant what the
	// resource needs.
	ClassForbidden Class = "forbidden"
	// ClassUnavailable: Aegis cannot decide now (a dependency is down);
	// retry after RetryAfter.
	ClassUnavailable Class = "unavailable"
	// ClassLimited: the caller's rate limit is exhausted; retry after
	// RetryAfter.
	ClassLimited Class = "limited"
)

// Class returns the class of a reason Aegis gives; ClassInvalid for any
// other reason.
func (r Reason) Class() Class {
	if info, ok := reasonInfo[r]; ok {
		return info.class
	}
	return ClassInvalid
}

// Description returns Aegis's own sentence for a reason, safe to show the
// caller; empty for reasons Aegis does not give.
func (r Reason) Description() string { return reasonInfo[r].description }

type reasonEntry struct {
	class       Class
	description string
}

var reasonOrder = []Reason{
	ReasonAccepted, ReasonTokenMissing, ReasonRequestMalformed, ReasonTokenTooLong, ReasonTokenMalformed,
	ReasonTokenInvalid, ReasonAlgorithmRejected, ReasonKeyUnknown, ReasonSignatureInvalid, ReasonTypeRejected,
	ReasonIssuerMismatch, ReasonAudienceMismatch, ReasonTokenExpired, ReasonTokenNotYetValid, ReasonClaimsInvalid,
	ReasonTokenInactive, ReasonTokenUseRejected, ReasonInvalidDPoPProof, ReasonUseDPoPNonce, ReasonBindingMismatch,
	ReasonCertificateMismatch, ReasonInsufficientScope, ReasonInsufficientUserAuthentication, ReasonRateLimited,
	ReasonKeysUnavailable, ReasonIntrospectionUnavailable, ReasonIntrospectionUnconfigured,
	ReasonRateLimitUnavailable, ReasonReplayStoreUnavailable, ReasonValidationAborted,
}

var reasonInfo = map[Reason]reasonEntry{
	ReasonAccepted:          {"", ""},
	ReasonTokenMissing:      {ClassInvalid, ""},
	ReasonRequestMalformed:  {ClassInvalid, "The request is malformed"},
	ReasonTokenTooLong:      {ClassInvalid, "The access token is too long"},
	ReasonTokenMalformed:    {ClassInvalid, "The access token is malformed"},
	ReasonTokenInvalid:      {ClassInvalid, "The access token is invalid"},
	ReasonAlgorithmRejected: {ClassInvalid, "The access token's signing algorithm is not accepted"},
	ReasonKeyUnknown:        {ClassInvalid, "The access token is signed by an unknown key"},
	ReasonSignatureInvalid:  {ClassInvalid, "The access token's signature is invalid"},
	ReasonTypeRejected:      {ClassInvalid, "The token is not a JWT access token"},
	ReasonIssuerMismatch:    {ClassInvalid, "The access token is not from a trusted issuer"},
	ReasonAudienceMismatch:  {ClassInvalid, "The access token is not meant for this API"},
	ReasonTokenExpired:      {ClassInvalid, "The access token expired"},
	ReasonTokenNotYetValid:  {ClassInvalid, "The access token is not valid yet"},
	ReasonClaimsInvalid:     {ClassInvalid, "The access token's claims are invalid"},
	ReasonTokenInactive:     {ClassInvalid, "The access token is not active"},
	ReasonTokenUseRejected:  {ClassInvalid, "The token is not an access token"},
	ReasonInvalidDPoPProof:  {ClassInvalid, "The DPoP proof is invalid"},
	ReasonUseDPoPNonce:      {ClassInvalid, "The DPoP proof must carry the server's nonce"},
	ReasonBindingMismatch:   {ClassInvalid, "The access token is not presented as its binding requires"},
	ReasonCertificateMismatch: {ClassInvalid,
		"The access token is bound to another client certificate"},
	ReasonInsufficientScope: {ClassForbidden, "The access token does not grant the scope this resource needs"},
	ReasonInsufficientUserAuthentication: {ClassInvalid,
		"The user's authentication does not meet this resource's requirements"},
	ReasonRateLimited:     {ClassLimited, "The client's rate limit is exhausted; retry later"},
	ReasonKeysUnavailable: {ClassUnavailable, "The issuer's keys cannot be obtained; try again later"},
	ReasonIntrospectionUnavailable: {ClassUnavailable,
		"The issuer cannot confirm the access token now; try again later"},
	ReasonIntrospectionUnconfigured: {ClassUnavailable, "Token introspection is not configured for this issuer"},
	ReasonRateLimitUnavailable:      {ClassUnavailable, "The rate limiter cannot decide now; try again later"},
	ReasonReplayStoreUnavailable:    {ClassUnavailable, "The DPoP replay check cannot decide now; try again later"},
	ReasonValidationAborted:         {ClassUnavailable, "Validation did not complete; try again"},
}

// Refusal is why a credential is not admitted: the one error type every
// part of Aegis refuses with. jwks, introspect and ratelimit return it
// (their own sentinel errors stay reachable through errors.Is), a custom
// validator may return one to choose its verdict, and each transport
// renders it (an HTTP status and RFC 6750 challenge, a gRPC code…).
type Refusal struct {
	// Reason is the stable cause.
	Reason Reason
	// Class says what the caller should do: get a new token, get more
	// scope, or retry later.
	Class Class
	// Description is a sentence safe to show the caller: Aegis's own
	// text, never a token or a library's error.
	Description string
	// Scope is what the resource needs, on ReasonInsufficientScope; it
	// becomes the challenge's scope parameter.
	Scope string
	// RetryAfter is when to try again, for ClassUnavailable and
	// ClassLimited.
	RetryAfter time.Duration
	// ACRValues and MaxAge are what the resource requires of the user's
	// authentication, on ReasonInsufficientUserAuthentication: they become
	// the challenge's acr_values and max_age (RFC 9470 §3). MaxAge 0 is
	// none.
	ACRValues []string
	MaxAge    time.Duration
	// Err is the underlying cause, for logs only.
	Err error
}

// Refuse returns a refusal for reason with its standard class and
// description, caused by err (nil for none).
func Refuse(reason Reason, err error) *Refusal {
	info := reasonInfo[reason]
	class := info.class
	if class == "" {
		class = ClassInvalid
	}
	return &Refusal{Reason: reason, Class: class, Description: info.description, Err: err}
}

// Unavailable returns a ClassUnavailable refusal for reason, to be retried
// after retryAfter, caused by err. It is the "cannot decide now" error of
// jwks (keys), introspect (the endpoint) and ratelimit (the store).
func Unavailable(reason Reason, retryAfter time.Duration, err error) *Refusal {
	r := Refuse(reason, err)
	r.Class, r.RetryAfter = ClassUnavailable, retryAfter
	return r
}

// Error describes the refusal in Aegis's own words, with its cause.
func (r *Refusal) Error() string {
	if r == nil {
		return "aegis: <nil>"
	}
	s := "aegis: " + string(r.Reason)
	if r.Description != "" {
		s += ": " + r.Description
	}
	if r.Err != nil {
		s += ": " + r.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (r *Refusal) Unwrap() error {
	if r == nil {
		return nil
	}
	return r.Err
}
