// Package gateways holds the gateway configurations of the README's "In
// front of other services" (nginx.conf, Caddyfile, routes.json) and the
// end-to-end tests that run them: cmd/aegis-authz, built from this
// repository, decides for a real nginx (auth_request) and a real Caddy
// (forward_auth), each in front of an upstream that echoes the headers it
// received.
//
// The tests need nginx with its auth_request module (Debian: nginx-core) and
// caddy on PATH; without them a test fails when the environment variable CI
// is set, and is skipped otherwise. .ci/run installs both.
package gateways
