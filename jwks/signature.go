package jwks

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"math/big"
)

// SignatureVerifier checks raw JWS signatures of one allowed algorithm: the
// primitive under Validator, which verifies every token signature through
// one. It is exported so that the signature step can be tested on its own,
// against test vectors that sign arbitrary messages rather than tokens.
// A SignatureVerifier is immutable and safe for concurrent use.
//
// Signatures are checked by the standard library (crypto/rsa, crypto/ecdsa,
// crypto/ed25519), the same code jwx's verifiers end in, called directly:
// jwx v2 verifies PS* with any salt length where RFC 7518 §3.5 fixes it to
// the hash's (Wycheproof's vectors showed it), and its verifiers copy the
// key and allocate on every call, which the first-seen budget cannot spare.
// jwx still reads the key sets (ParseSet).
type SignatureVerifier struct {
	alg  string
	kind sigKind
	hash crypto.Hash
}

type sigKind int

const (
	sigPKCS1 sigKind = iota // RSASSA-PKCS1-v1_5
	sigPSS                  // RSASSA-PSS, MGF1 with the same hash, salt as long as the hash
	sigECDSA                // ECDSA, r||s of fixed size (RFC 7518 §3.4)
	sigEdDSA                // Ed25519 (RFC 8037)
)

var signatureAlgorithms = map[string]SignatureVerifier{
	RS256:   {alg: RS256, kind: sigPKCS1, hash: crypto.SHA256},
	RS384:   {alg: RS384, kind: sigPKCS1, hash: crypto.SHA384},
	RS512:   {alg: RS512, kind: sigPKCS1, hash: crypto.SHA512},
	PS256:   {alg: PS256, kind: sigPSS, hash: crypto.SHA256},
	PS384:   {alg: PS384, kind: sigPSS, hash: crypto.SHA384},
	PS512:   {alg: PS512, kind: sigPSS, hash: crypto.SHA512},
	ES256:   {alg: ES256, kind: sigECDSA, hash: crypto.SHA256},
	ES384:   {alg: ES384, kind: sigECDSA, hash: crypto.SHA384},
	ES512:   {alg: ES512, kind: sigECDSA, hash: crypto.SHA512},
	EdDSA:   {alg: EdDSA, kind: sigEdDSA},
	Ed25519: {alg: Ed25519, kind: sigEdDSA},
}

// pssOptions demand a salt as long as the hash, as RFC 7518 §3.5 does.
var pssOptions = rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}

// NewSignatureVerifier returns the verifier for alg, which must be one of
// DefaultAlgorithms(); any other name, "none" and the HMAC family included,
// gives an error matching ErrAlgorithm.
func NewSignatureVerifier(alg string) (*SignatureVerifier, error) {
	v, ok := signatureAlgorithms[alg] // exactly DefaultAlgorithms()
	if !ok {
		return nil, fmt.Errorf("%w: %q is not an allowed signature algorithm", ErrAlgorithm, clip(alg))
	}
	return &v, nil
}

// Algorithm returns the JWS alg this verifier checks.
func (v *SignatureVerifier) Algorithm() string { return v.alg }

// Verify checks that signature is a valid signature of signingInput under
// key with the verifier's algorithm, as RFC 7518 §3 defines it for JWS:
// RSASSA-PKCS1-v1_5 for RS*, RSASSA-PSS with MGF1 of the same hash and a
// salt exactly as long as the hash for PS*, ECDSA with the raw fixed-size
// r||s encoding for ES*, Ed25519 for EdDSA and Ed25519.
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
	// Keys from NewSet and ParseSet are sound; a hand-built Key may not be,
	// and must give "does not verify" rather than a panic.
	if v.kind == sigEdDSA {
		pub, ok := key.Public.(ed25519.PublicKey)
		return ok && len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, signingInput, signature)
	}
	var digest []byte
	switch v.hash {
	case crypto.SHA256:
		d := sha256.Sum256(signingInput)
		digest = d[:]
	case crypto.SHA384:
		d := sha512.Sum384(signingInput)
		digest = d[:]
	case crypto.SHA512:
		d := sha512.Sum512(signingInput)
		digest = d[:]
	default:
		return false
	}
	switch v.kind {
	case sigPKCS1, sigPSS:
		pub, ok := key.Public.(*rsa.PublicKey)
		if !ok || pub == nil || pub.N == nil || pub.N.Sign() <= 0 {
			return false
		}
		if v.kind == sigPSS {
			return rsa.VerifyPSS(pub, v.hash, digest, signature, &pssOptions) == nil
		}
		return rsa.VerifyPKCS1v15(pub, v.hash, digest, signature) == nil
	case sigECDSA:
		pub, ok := key.Public.(*ecdsa.PublicKey)
		if !ok || pub == nil || pub.Curve == nil || pub.X == nil || pub.Y == nil {
			return false
		}
		size := (pub.Curve.Params().BitSize + 7) / 8
		if len(signature) != 2*size {
			return false
		}
		r := new(big.Int).SetBytes(signature[:size])
		s := new(big.Int).SetBytes(signature[size:])
		return ecdsa.Verify(pub, digest, r, s)
	}
	return false
}
