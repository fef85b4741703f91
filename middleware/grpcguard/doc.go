// Package grpcguard is Aegis for gRPC servers: unary and stream server
// interceptors that admit calls bearing a valid OAuth2 access token and the
// scopes their method needs.
//
// It is a thin adapter over the transport-agnostic core (package
// middleware/core), so gRPC calls get exactly the validation, caller
// classification, scope checks, rate limits, metrics (Observer) and
// decision logs of the HTTP middleware. A Guard may even share its
// core.Checker with a middleware.Guard (Config.Checker), so that both
// transports charge one rate limit and share one verified-token cache.
//
// The token is read from the call's single "authorization" metadata value,
// "Bearer <token>" with a case-insensitive scheme, as the HTTP middleware
// reads the Authorization header. Requirements are declared per full
// method name ("/pkg.Service/Method") or per service ("/pkg.Service/*");
// a method listed nowhere is refused unless Config.AllowUnlisted is set,
// and Config.Public names the methods that need no token at all.
//
// Refusals become gRPC statuses:
//
//	no token, a malformed authorization value,
//	an invalid or expired token            Unauthenticated
//	missing scope, unlisted method         PermissionDenied
//	rate limit exhausted                   ResourceExhausted (RetryInfo)
//	keys, introspection or the rate-limit
//	store unavailable                      Unavailable (RetryInfo)
//
// Every refusal's status carries an errdetails.ErrorInfo (domain "aegis",
// reason the upper-cased aegis.Reason, e.g. "TOKEN_EXPIRED"), and a
// RetryInfo when the caller should retry later. The RFC 6750 challenge the
// HTTP middleware would send in WWW-Authenticate is sent in the
// "www-authenticate" trailer, and the rate-limit fields (ratelimit-policy,
// ratelimit, x-ratelimit-*) in the header metadata. Status messages are
// Aegis's own sentences: they never contain the token.
//
// Handlers read the caller with core.PrincipalFrom (or
// middleware.PrincipalFrom) on the call's context.
//
// It is a nested module (github.com/olympus/aegis/middleware/grpcguard) so
// that google.golang.org/grpc enters only the builds of programs that use
// it.
package grpcguard
