// Command aegis-authz is Aegis's decision service: a gateway in front of
// other services asks it whether each request may pass, and it answers
// from the request's method, path and bearer token, with the same
// validation, scopes, rate limits and refusals as the HTTP middleware.
//
// Usage:
//
//	aegis-authz -issuer https://id.example.com -audience https://api.example.com -routes routes.json [-grpc-addr 127.0.0.1:9191]
//
// It takes examples/server's validation flags, each also an AEGIS_*
// variable (a flag on the command line wins): -issuer, -audience,
// -jwks-url, -allow-insecure-http, -mode jwt|introspect|hybrid,
// -introspection-url/-auth/-client-id/-client-secret/-cache-ttl,
// -introspection-cache local|shared, -clients-url, -clients-cache-ttl,
// -redis-url, -default-rate-limit, -rate-limit-failure open|closed,
// -metrics-addr and -log-level. Its own:
//
//	-addr            HTTP decisions (default 127.0.0.1:8081)
//	-grpc-addr       Envoy's gRPC ext_authz, envoy.service.auth.v3.Authorization/Check (default: off)
//	-routes          the routes file
//	-default-policy  deny (default: unmatched requests get 403) or authenticated (any valid token)
//
// # The routes file
//
//	{"routes": [
//	  {"methods": ["GET"],  "path": "/data",      "scopes": {"all": ["data:read"]}},
//	  {"methods": ["POST"], "path": "/data",      "scopes": {"all": ["data:write"]}},
//	  {"path": "/reports/*", "scopes": {"any": ["reports:read", "admin"]}},
//	  {"path": "/public/*", "public": true},
//	  {"path": "/whoami"}
//	]}
//
// The first rule that matches wins. methods omitted matches every method
// (methods are case-sensitive: "GET", not "get"). path is exact, or a
// prefix when it ends in "/*": "/reports/*" matches "/reports/" and
// everything below it, not "/reports". The match is made on the decoded
// path alone, without the query. scopes.all needs every scope listed,
// scopes.any at least one (both may be given: both must hold); a rule with
// neither scopes nor public needs any valid token; public passes without a
// token. Unknown or duplicate members, empty lists, a public rule with
// scopes, and paths that are not absolute and clean stop startup with an
// error naming the rule: `routes[2] (path "/x"): ...`.
//
// # What it decides on
//
// A request carrying X-Forwarded-Uri is decided on X-Forwarded-Method
// (required with it) and X-Forwarded-Uri, with its Authorization header:
// nginx auth_request, Caddy forward_auth and Traefik ForwardAuth. A
// request without it is decided on its own method and request URI: Envoy's
// HTTP ext_authz. GET /.aegis/healthz without X-Forwarded-Uri answers 200.
//
// The decision service trusts X-Forwarded-Method and X-Forwarded-Uri: it
// must be reachable only by the gateway, never by clients, who could
// otherwise ask about a path other than the one they request.
//
// Paths are not normalised: a request whose path is not already clean is
// refused with 400 (problem+json), so that no rule can be matched on a
// path other than the one the upstream serves. Refused: a target that does
// not start with "/", a fragment, invalid %-escapes, an encoded slash or
// backslash (%2F, %5C), a backslash or control character, an empty
// segment ("//"), and "." or ".." segments (also as "..;param").
//
// # Answers over HTTP
//
// Allowed: 200 with X-Auth-Subject, X-Auth-Client-Id, X-Auth-Kind (m2m or
// user), X-Auth-Scopes (space-separated) and X-Auth-Email. All five are
// always present, empty when the token has no such value, so a gateway
// that copies them overwrites whatever a client sent; on a public rule
// all five are present and empty (no identity). The rate-limit headers
// (RateLimit-Policy, RateLimit, X-RateLimit-*) are set as the middleware
// sets them.
//
// Refused: exactly the middleware's answer: its status (400, 401, 403, 429
// or 503), WWW-Authenticate, Retry-After, rate-limit headers and
// application/problem+json body. A request no rule matches under
// -default-policy deny gets 403 with a problem+json body and no challenge.
//
// # Envoy ext_authz over gRPC
//
// With -grpc-addr, envoy.service.auth.v3.Authorization/Check decides on
// attributes.request.http (method, path with query, the authorization
// header) exactly as above. Allowed: status OK, the five identity headers
// set (OVERWRITE_IF_EXISTS_OR_ADD, kept when empty), every other x-auth-*
// header the client sent in headers_to_remove, the rate-limit headers in
// response_headers_to_add. Refused: denied_response with the HTTP status,
// WWW-Authenticate, Retry-After, rate-limit headers and the problem+json
// body. Set failure_mode_allow: false in Envoy.
package main
