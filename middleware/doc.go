// Package middleware guards HTTP APIs that accept OAuth2 bearer access
// tokens: it is the net/http adapter over Aegis's transport-agnostic core
// (package middleware/core).
//
// A Guard, built by New from a Config, takes the bearer token of each
// request (RFC 6750: the Authorization header, and the form body or query
// when enabled), hands it to a core.Checker, and renders the verdict: the
// Principal in the request context, or the refusal as an RFC 6750
// challenge with a problem+json body and, when the client is rate limited,
// the rate-limit headers. The Checker validates the token with the
// Config's Validator (for the quick start, Issuer and Audience: JWTs checked
// locally against the issuer's keys), classifies the caller as a machine
// (client_credentials) or a user, enforces the route's scopes, charges the
// client's rate limit, and reports every decision to its logger and its
// core.Observer; tokens never appear in any of them.
//
// Authenticate, Require and Protect wrap handlers for chi and plain
// net/http; RequireIntrospection guards revocation-sensitive routes;
// Validate serves other transports. ErrorFor is the one place where a
// refusal becomes HTTP.
package middleware
