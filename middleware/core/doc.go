// Package core is Aegis's transport-agnostic core: it turns a Credential
// (a bearer token, and whatever binding evidence the transport has) into
// either a Principal or an *aegis.Refusal.
//
// Validators are values composed from constructors:
//
//   - NewJWT checks JWT access tokens locally against an issuer's keys
//     (package jwks);
//   - NewIntrospection asks the issuer (RFC 7662, package introspect);
//   - Hybrid sends JWT-shaped tokens to one validator and opaque ones to
//     another;
//   - ByIssuer routes a JWT by its strictly parsed iss, before any network
//     call, to that issuer's validator;
//   - Cached serves a token verified before from a bounded cache.
//
// A Checker, made by New, runs a validator and then decides: it classifies
// the caller (m2m or user), enforces scope requirements, charges the
// client's rate limit, and reports every verdict and dependency call to an
// Observer and a log/slog logger. Transports (the middleware package for
// net/http, gRPC interceptors, a gateway decision service) are thin adapters
// that build a Credential and render the Verdict.
//
// Tokens and credentials never appear in errors, logs or events.
package core
