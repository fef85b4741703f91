// Package aegis holds the vocabulary every part of Aegis shares: the
// Reason and Class of each verdict, the Refusal error, the shared defaults
// and the events the leaf packages report. The work is done in its
// subpackages:
//
//   - middleware: the HTTP adapter (a Guard for chi and net/http); start
//     here: middleware.New(middleware.Config{Issuer: …, Audience: …}).
//   - middleware/core: the transport-agnostic core: composable validators
//     (JWT, introspection, hybrid, by issuer, the verified-token cache), the
//     Checker's decision (classification, rate limits, scopes) and the
//     Observer seam for metrics and traces.
//   - jwks: an issuer's key set and strict JWT access-token validation.
//   - introspect: RFC 7662 token introspection with its cache.
//   - scopes: scope sets and requirements.
//   - ratelimit: per-client limits in memory, limit sources (Hydra's client
//     metadata, a map, a claim), failover.
//   - jwks/jwkstest: the test kit, an in-process issuer minting Hydra-shaped
//     tokens.
//
// Nested modules bring the heavy integrations, so that a program importing
// middleware compiles none of them: middleware/prommetrics and
// middleware/otelmetrics (Observers for Prometheus and OpenTelemetry),
// ratelimit/redisstore (limits shared through Redis) and examples (demo,
// devissuer, server, worker, nethttp).
package aegis
