// Package jwks validates JWT access tokens locally against an issuer's keys.
//
// A Remote holds an issuer's JSON Web Key Set: discovered from the issuer's
// metadata or fetched from a configured URL, refreshed in the background,
// refetched (once per cooldown, shared by concurrent callers) when a token
// names an unknown kid, and kept when a refresh fails. ParseSet reads a key
// set strictly and leaves out every key unfit to verify access tokens.
//
// A Validator applies RFC 8725 and RFC 9068 §4 to a token: strict compact
// serialization and JSON, an allowlist of asymmetric algorithms, the key's
// own algorithm, iss before any key lookup, the signature (SignatureVerifier,
// the standard library's crypto), then exp, nbf, iat, aud, sub and
// client_id. It refuses whatever the underlying JOSE library would accept by
// default but these rules do not. Every refusal is an *aegis.Refusal (its
// Reason says why) that also matches one of the Err values with errors.Is;
// a key set that cannot be had is one of class unavailable.
//
// Used through the core (package github.com/olympus/aegis/middleware/core),
// core.NewJWT builds both; used alone, a Config's Observer reports the key
// set's fetches.
//
// This is the only package of Aegis that imports a JOSE library
// (github.com/lestrrat-go/jwx/v2, to read keys).
package jwks
