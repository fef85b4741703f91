// Package hydra is Aegis's end-to-end suite against a real Ory Hydra v2.3.0.
//
// It is a nested module (github.com/olympus/aegis/examples/hydra) so that
// Hydra and its many dependencies never enter the root go.mod: Hydra is a
// tool dependency of this module only (see go.mod), built with
//
//	CGO_ENABLED=1 GOWORK=off go build -tags sqlite,sqlite_omit_load_extension -o hydra github.com/ory/hydra/v2
//
// The tests start Hydra (in-memory, --dev, JWT access tokens by default,
// opaque ones for clients that ask) and examples/server binaries built from
// the repository root (in jwt, introspect and hybrid modes, and with
// per-client rate limits from Hydra's client metadata, in memory or shared
// through a private redis-server), each on free loopback ports, drive them
// over HTTP, and run examples/worker against them. Run them with
//
//	cd examples/hydra && GOWORK=off go test ./...
//
// which builds Hydra itself unless AEGIS_HYDRA_BIN names a binary. See
// README.md for the environment variables.
package hydra
