// Package wycheproof runs the Wycheproof test vectors (module
// github.com/c2sp/wycheproof, which embeds them) through Aegis's signature
// verification: raw signature vectors through jwks.SignatureVerifier, the
// primitive jwks.Validator verifies with, and the JWS and JWK vectors
// through jwks.ParseSet and a full jwks.Validator.
//
// It is a nested module (github.com/olympus/aegis/jwks/wycheproof) so that
// the vectors, over 100 MB of JSON, never enter the root go.mod; the root
// `go test ./...` does not descend into it. Run it with
//
//	cd jwks/wycheproof && GOWORK=off go test ./...
//
// Every vector Wycheproof marks invalid must be refused. A vector marked
// valid (or acceptable) must be accepted unless Aegis is deliberately
// stricter, and then the test names the reason, per file, group or flag.
// Each file's counts are logged (go test -v) and checked, so that a file
// renamed or emptied upstream fails instead of passing with nothing run.
package wycheproof
