package jwks

import (
	"fmt"
	"slices"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// SignatureVerifier checks raw JWS signatures of one allowed algorithm: the
// primitive under Validator, which verifies every token signature through
// one. It is exported so that the signature step can be tested on its own,
// against test vectors that sign arbitrary messages rather than tokens.
// A SignatureVerifier is immutable and safe for concurrent use.
type SignatureVerifier struct {
	alg      string
	verifier jws.Verifier
}

// NewSignatureVerifier returns the verifier for alg, which must be one of
// DefaultAlgorithms(); any other name, "none" and the HMAC family included,
// gives an error matching ErrAlgorithm.
func NewSignatureVerifier(alg string) (*SignatureVerifier, error) {
	if !slices.Contains(DefaultAlgorithms(), alg) {
		return nil, fmt.Errorf("%w: %q is not an allowed signature algorithm", ErrAlgorithm, clip(alg))
	}
	verifier, err := jws.NewVerifier(jwa.SignatureAlgorithm(alg))
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrAlgorithm, alg, err)
	}
	return &SignatureVerifier{alg: alg, verifier: verifier}, nil
}

// Algorithm returns the JWS alg this verifier checks.
func (v *SignatureVerifier) Algorithm() string { return v.alg }

// Verify checks that signature is a valid signature of signingInput under
// key with the verifier's algorithm, as RFC 7518 §3 defines it for JWS:
// RSASSA-PKCS1-v1_5 for RS*, RSASSA-PSS with MGF1 of the same hash for PS*,
// ECDSA with the raw fixed-size r||s encoding for ES*, Ed25519 for EdDSA.
// For a token, signingInput is its header and payload as sent, joined by a
// period, and signature is the decoded third part.
//
// A key that may not verify this algorithm (see Key.Verifies) gives an error
// matching ErrAlgorithm; a signature that does not verify, one matching
// ErrSignature. Keys are trusted to be as NewSet and ParseSet leave them:
// Verify does not check their strength again. It never modifies its
// arguments.
func (v *SignatureVerifier) Verify(key Key, signingInput, signature []byte) error {
	if !key.Verifies(v.alg) {
		return refuse(ErrAlgorithm, "alg is not the algorithm of the key")
	}
	if !v.verify(key, signingInput, signature) {
		return refuse(ErrSignature, "signature does not verify")
	}
	return nil
}

// verify is Verify for a key already known to fit the algorithm.
func (v *SignatureVerifier) verify(key Key, signingInput, signature []byte) bool {
	return v.verifier.Verify(signingInput, signature, key.Public) == nil
}
