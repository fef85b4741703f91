package jwks

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
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
	alg string
	// verifier is jwx's verifier for alg, except for PS*: jwx verifies
	// those with any salt length (rsa.PSSSaltLengthAuto), RFC 7518 §3.5
	// fixes it to the hash length, so pss holds the hash to verify them
	// here instead.
	verifier jws.Verifier
	pss      *pssHash
}

type pssHash struct {
	id  crypto.Hash
	new func() hash.Hash
}

var pssHashes = map[string]*pssHash{
	PS256: {crypto.SHA256, sha256.New},
	PS384: {crypto.SHA384, sha512.New384},
	PS512: {crypto.SHA512, sha512.New},
}

// pssOptions demand a salt as long as the hash, as RFC 7518 §3.5 does.
var pssOptions = rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}

// NewSignatureVerifier returns the verifier for alg, which must be one of
// DefaultAlgorithms(); any other name, "none" and the HMAC family included,
// gives an error matching ErrAlgorithm.
func NewSignatureVerifier(alg string) (*SignatureVerifier, error) {
	if !slices.Contains(DefaultAlgorithms(), alg) {
		return nil, fmt.Errorf("%w: %q is not an allowed signature algorithm", ErrAlgorithm, clip(alg))
	}
	if pss, ok := pssHashes[alg]; ok {
		return &SignatureVerifier{alg: alg, pss: pss}, nil
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
// RSASSA-PKCS1-v1_5 for RS*, RSASSA-PSS with MGF1 of the same hash and a
// salt exactly as long as the hash for PS*, ECDSA with the raw fixed-size
// r||s encoding for ES*, Ed25519 for EdDSA. PS* signatures are checked with
// crypto/rsa directly, the others through jwx's verifiers.
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
	if v.pss != nil {
		pub, ok := key.Public.(*rsa.PublicKey)
		if !ok {
			return false
		}
		h := v.pss.new()
		h.Write(signingInput)
		var digest [sha512.Size]byte
		return rsa.VerifyPSS(pub, v.pss.id, h.Sum(digest[:0]), signature, &pssOptions) == nil
	}
	return v.verifier.Verify(signingInput, signature, key.Public) == nil
}
