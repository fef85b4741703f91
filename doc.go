// Package aegis holds the vocabulary every part of Aegis shares: the
// Reason of each verdict and the Refusal error. The work is done in its
// subpackages:
//
//   - middleware: the HTTP adapter (a Guard for chi and net/http).
//   - middleware/core: the transport-agnostic core: composable validators
//     (JWT, introspection, hybrid, by issuer, the verified-token cache), the
//     decision (scopes, rate limits) and the observability seam.
//   - jwks: an issuer's key set and strict JWT access-token validation.
//   - introspect: RFC 7662 token introspection with its cache.
//   - scopes: scope sets and requirements.
//   - ratelimit: per-client limits, in memory or shared.
//   - jwks/jwkstest: the test kit, an in-process issuer.
package aegis
