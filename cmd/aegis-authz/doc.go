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
// -dpop allow|require|off, -dpop-nonce, -metrics-addr and -log-level. Its
// own:
//
//	-addr                HTTP decisions (default 127.0.0.1:8081)
//	-grpc-addr           Envoy's gRPC ext_authz, envoy.service.auth.v3.Authorization/Check (default: off)
//	-routes              the routes file
//	-default-policy      deny (default: unmatched requests get 403) or authenticated (any valid token)
//	-http-mode           auto (default: forward auth when X-Forwarded-Uri is present, else Envoy's HTTP
//	                     ext_authz), forward-auth or envoy: pin your gateway's, so no client header switches it
//	-client-cert-header  the header in which the gateway forwards the client's TLS certificate (default: none)
//	-client-cert-format  how: escaped-pem (default; nginx $ssl_client_escaped_cert), base64-der
//	                     (Caddy {http.request.tls.client.certificate_der_base64}) or xfcc (Envoy x-forwarded-client-cert)
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
// token. dpop ("allow", "require" or "off") sets the rule's DPoP policy in
// place of -dpop's. Unknown or duplicate members, empty lists, a public rule with
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
// Sender-constrained tokens are decided on the client's request as the
// client made it. DPoP (RFC 9449): the DPoP header, copied as the client
// sent it (two are refused), and the URL the client addressed, which a
// proof's htu must name: the scheme of X-Forwarded-Proto ("http" or
// "https", one value; default http) and the host (and port) of
// X-Forwarded-Host (one valid host[:port]; default the request's Host
// header), with the forwarded path. Envoy's HTTP ext_authz sends the
// client's own Host, so X-Forwarded-Host is read only with X-Forwarded-Uri.
// Certificate-bound tokens (RFC 8705): the certificate of the
// -client-cert-header header, read only over https (a client certificate
// exists only over TLS); a value that cannot be read, or more than one, is
// no certificate, so certificate-bound tokens are then refused (401) and
// others pass. Any other X-Forwarded-Proto or X-Forwarded-Host value is
// refused with 400, as a malformed forwarded URI is.
//
// The decision service trusts X-Forwarded-Method, X-Forwarded-Uri,
// X-Forwarded-Proto, X-Forwarded-Host and the -client-cert-header header:
// it must be reachable only by the gateway, never by clients, who could
// otherwise ask about a path other than the one they request, or claim a
// certificate they do not hold; and the gateway must set these headers
// itself, overwriting whatever the client sent (nginx: proxy_set_header in
// the auth_request location, which also drops the client's header of that
// name when the value is empty; Caddy's forward_auth sets the
// X-Forwarded-* headers itself, remove the certificate header with
// request_header -X-SSL-Client-Cert; Envoy: use x-forwarded-client-cert
// with forward_client_cert_details SANITIZE_SET, or the gRPC service's
// source.certificate).
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
// With -dpop-nonce, an answer to a DPoP request carries DPoP-Nonce, the
// nonce the client's next proof must hold; forward-auth gateways must pass
// it on to the client (nginx: auth_request_set and add_header).
//
// Refused: exactly the middleware's answer: its status (400, 401, 403, 429
// or 503), WWW-Authenticate, DPoP-Nonce, Retry-After, rate-limit headers
// and application/problem+json body. A request no rule matches under
// -default-policy deny gets 403 with a problem+json body and no challenge.
// Under -dpop allow, a 401 carries two WWW-Authenticate fields, a Bearer
// and a DPoP challenge (RFC 9449 §7.1); the one with the error code comes
// first, so that a gateway that passes only the first field on (nginx
// before 1.23 reads only the first into $upstream_http_www_authenticate)
// passes the one that says what is wrong.
//
// # Envoy ext_authz over gRPC
//
// With -grpc-addr, envoy.service.auth.v3.Authorization/Check decides on
// attributes.request.http (method, scheme, host, path with query, the
// authorization and dpop headers) exactly as above; for a request with a
// DPoP proof or a certificate, a scheme other than http or https, or a
// host that is not host[:port], is refused with 400. The client
// certificate is attributes.source.certificate alone (set
// include_peer_certificate: true in Envoy), over https only: never a
// header, since Envoy passes the client's own headers on. Allowed: status OK, the five identity headers set
// (OVERWRITE_IF_EXISTS_OR_ADD, kept when empty), every other x-auth-*
// header the client sent in headers_to_remove, the rate-limit headers and
// DPoP-Nonce in response_headers_to_add. Refused: denied_response with the
// HTTP status, WWW-Authenticate (both challenges: the second
// APPEND_IF_EXISTS_OR_ADD), DPoP-Nonce, Retry-After, rate-limit headers and
// the problem+json body. Set failure_mode_allow: false in Envoy. The same
// listener serves grpc.health.v1: SERVING for "" and for
// envoy.service.auth.v3.Authorization (NOT_SERVING once shutdown begins).
package main
