// Package middleware guards HTTP APIs that accept OAuth2 bearer access
// tokens.
//
// A Guard, built by New from a Config, takes the bearer token of each
// request (RFC 6750), validates it (locally as a JWT against the issuer's
// keys, by introspection, or both), classifies the caller as a machine
// (client_credentials) or a user, charges the client's rate limit, and puts
// a Principal in the request context. Authenticate, Require and Protect wrap
// handlers for chi and plain net/http; RequireIntrospection guards
// revocation-sensitive routes; Validate serves other transports. Refusals
// are RFC 6750 challenges with problem+json bodies, each with a stable
// reason code that the Guard also reports to its logger, its Metrics and
// its OpenTelemetry spans; tokens never appear in any of them.
package middleware
