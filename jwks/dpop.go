package jwks

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/internal/cache"
	"github.com/olympus/aegis/internal/refusal"
	"github.com/olympus/aegis/internal/strictjson"
)

// ErrProof: a DPoP proof (RFC 9449 §4.2) is not well-formed, is not typed
// dpop+jwt, names an algorithm that is not allowed, carries no usable
// public key, or its signature does not verify with that key. Its refusal
// has the reason aegis.ReasonInvalidDPoPProof.
var ErrProof = errors.New("jwks: invalid DPoP proof")

// DefaultMaxProofLength bounds a DPoP proof before any decoding: room for
// an RSA key of 8192 bits in its header and a long htu.
const DefaultMaxProofLength = 8 << 10

// Proof is a DPoP proof JWT whose signature has been verified with the
// public key its own header carries (RFC 9449 §4.3 checks 2 to 6). The
// request-specific checks (htm, htu, iat, jti, ath, nonce, the key's
// binding to the access token) are the caller's: package dpop makes them.
// Its strings are its own.
type Proof struct {
	// Algorithm is the header's alg.
	Algorithm string
	// Key is the header's jwk.
	Key Key
	// Thumbprint is the RFC 7638 SHA-256 thumbprint of Key, base64url
	// encoded without padding: what an access token's cnf.jkt names.
	Thumbprint string

	// Method is htm; URI is htu, as sent.
	Method, URI string
	// ID is jti.
	ID string
	// IssuedAt is iat.
	IssuedAt time.Time
	// TokenHash is ath, as sent; empty when absent.
	TokenHash string
	// Nonce is nonce, as sent; empty when absent.
	Nonce string
}

// proofHeaders are the only header members a proof may carry: a proof
// names its key by value (jwk), never by reference (kid, jku, x5u, x5c),
// and nothing may change how it is processed (crit, b64, zip, enc).
var proofHeaders = []string{"typ", "alg", "jwk"}

// ParseProof reads a DPoP proof strictly and verifies its signature with
// the public key of its header, for one of algorithms (nil:
// DefaultAlgorithms(); any other name, none and HMAC included, is never
// accepted). maxLength (0: DefaultMaxProofLength) bounds the proof before
// any decoding.
//
// The proof must be a compact JWS of three canonical base64url parts; its
// header a strict JSON object with typ "dpop+jwt" exactly (RFC 9449 §4.2),
// an alg of the allowlist, and a jwk that is a public key read as ParseSet
// reads keys (exact member names, no private members, no symmetric key,
// sound material) whose alg, if it names one, is the header's; no other
// member. Its claims must be a strict JSON object with string jti, htm and
// htu, a NumericDate iat, and, when present, string ath and nonce.
//
// Every failure is an *aegis.Refusal with aegis.ReasonInvalidDPoPProof
// whose cause matches ErrProof. Nothing in its text comes from the proof
// but clipped member names.
func ParseProof(proof string, algorithms []string, maxLength int) (*Proof, error) {
	return parseProof(proof, algorithms, maxLength, nil)
}

// DefaultMaxProofKeys is how many proof keys a ProofParser remembers by
// default.
const DefaultMaxProofKeys = 4096

// ProofParserConfig configures a ProofParser.
type ProofParserConfig struct {
	// Algorithms is the allowlist of proof algorithms; nil:
	// DefaultAlgorithms().
	Algorithms []string
	// MaxLength bounds a proof before any decoding; 0:
	// DefaultMaxProofLength.
	MaxLength int
	// MaxKeys bounds the keys remembered; 0: DefaultMaxProofKeys;
	// negative: none.
	MaxKeys int
}

// ProofParser parses DPoP proofs exactly as ParseProof does, remembering
// the keys of the proofs it verified: a client signs many proofs with one
// key, whose reading and RFC 7638 thumbprint are then done once. A key is
// remembered by the exact bytes of its jwk, and only once a proof's
// signature verified with it; every proof's signature is still verified.
// It is safe for concurrent use.
type ProofParser struct {
	algorithms []string
	maxLength  int
	keys       *cache.Cache[proofKey] // nil: none remembered
}

// proofKey is a jwk as read, and its thumbprint.
type proofKey struct {
	key        Key
	thumbprint string
}

// NewProofParser returns a ProofParser configured by cfg.
func NewProofParser(cfg ProofParserConfig) *ProofParser {
	pp := &ProofParser{algorithms: slices.Clone(cfg.Algorithms), maxLength: cfg.MaxLength}
	switch {
	case cfg.MaxKeys == 0:
		pp.keys = cache.New[proofKey](cache.Config{MaxEntries: DefaultMaxProofKeys})
	case cfg.MaxKeys > 0:
		pp.keys = cache.New[proofKey](cache.Config{MaxEntries: cfg.MaxKeys})
	}
	return pp
}

// Parse is ParseProof with the parser's configuration.
func (pp *ProofParser) Parse(proof string) (*Proof, error) {
	return parseProof(proof, pp.algorithms, pp.maxLength, pp.keys)
}

// parseProof is ParseProof, looking keys up in keys first and keeping
// there those a proof's signature verified with, when keys is not nil.
func parseProof(proof string, algorithms []string, maxLength int, keys *cache.Cache[proofKey]) (*Proof, error) {
	if maxLength <= 0 {
		maxLength = DefaultMaxProofLength
	}
	if len(proof) > maxLength {
		return nil, proofErr("proof too long")
	}
	first := strings.IndexByte(proof, '.')
	second := -1
	if first > 0 {
		second = strings.IndexByte(proof[first+1:], '.')
	}
	if second < 0 || strings.IndexByte(proof[first+1+second+1:], '.') >= 0 {
		return nil, proofErr("not a compact JWS of three parts")
	}
	last := first + 1 + second
	if first+1 == last || last == len(proof)-1 {
		return nil, proofErr("empty payload or signature")
	}
	buf := make([]byte, b64.DecodedLen(first)+b64.DecodedLen(last-first-1)+b64.DecodedLen(len(proof)-last-1))
	headerJSON, rest, err := decodeInto(buf, proof[:first])
	if err != nil {
		return nil, proofErr("header is not canonical base64url")
	}
	payload, rest, err := decodeInto(rest, proof[first+1:last])
	if err != nil {
		return nil, proofErr("payload is not canonical base64url")
	}
	sig, _, err := decodeInto(rest, proof[last+1:])
	if err != nil {
		return nil, proofErr("signature is not canonical base64url")
	}
	p := &Proof{}
	jwkRaw, remembered, err := parseProofHeader(p, headerJSON, algorithms, keys)
	if err != nil {
		return nil, err
	}
	if err := parseProofClaims(p, payload); err != nil {
		return nil, err
	}
	v := signatureAlgorithms[p.Algorithm] // in DefaultAlgorithms: checked
	if !p.Key.Verifies(p.Algorithm) {
		return nil, proofErr("alg does not fit the jwk")
	}
	if !v.verify(p.Key, []byte(proof[:last]), sig) {
		return nil, proofErr("signature does not verify with the jwk")
	}
	if keys != nil && !remembered {
		keys.Set(string(jwkRaw), proofKey{key: p.Key, thumbprint: p.Thumbprint}, time.Time{})
	}
	return p, nil
}

// parseProofHeader reads the header into p and returns its jwk's bytes,
// and whether its key came from keys (when not nil) rather than being read.
func parseProofHeader(p *Proof, data []byte, algorithms []string, keys *cache.Cache[proofKey]) (jwkRaw []byte, remembered bool, err error) {
	jwkRaw, err = readProofHeader(p, data, algorithms)
	if err != nil {
		return nil, false, err
	}
	if keys != nil {
		if k, ok := keys.Get(string(jwkRaw), time.Time{}); ok {
			p.Key, p.Thumbprint = k.key, k.thumbprint
			return jwkRaw, true, nil
		}
	}
	k, err := parseKey(jwkRaw)
	if err != nil {
		return nil, false, proofErr("jwk: " + err.Error())
	}
	k.ID = "" // a kid inside the jwk names nothing here
	p.Key = k
	p.Thumbprint, err = Thumbprint(k.Public)
	if err != nil {
		return nil, false, proofErr("jwk: " + err.Error())
	}
	return jwkRaw, false, nil
}

// readProofHeader checks the header's members and reads typ and alg into
// p, returning the jwk member's bytes.
func readProofHeader(p *Proof, data []byte, algorithms []string) ([]byte, error) {
	members, err := strictjson.Object(data, 8)
	if err != nil {
		return nil, proofErr("header is not a strict JSON object")
	}
	var typ string
	var jwkRaw []byte
	for _, m := range members {
		if !slices.Contains(proofHeaders, m.Name) {
			return nil, proofErr("header " + clip(m.Name) + " is not accepted")
		}
		switch m.Name {
		case "typ":
			typ, err = strictjson.String(m.Value)
		case "alg":
			p.Algorithm, err = strictjson.String(m.Value)
		case "jwk":
			jwkRaw = m.Value
		}
		if err != nil {
			return nil, proofErr("header " + m.Name + " is not a string")
		}
	}
	if typ != "dpop+jwt" {
		return nil, proofErr(`typ is not "dpop+jwt"`)
	}
	if algorithms == nil {
		algorithms = DefaultAlgorithms()
	}
	if _, ok := signatureAlgorithms[p.Algorithm]; !ok || !slices.Contains(algorithms, p.Algorithm) {
		return nil, proofErr("alg is not allowed")
	}
	if len(jwkRaw) == 0 || jwkRaw[0] != '{' {
		return nil, proofErr("header has no jwk object")
	}
	return jwkRaw, nil
}

func parseProofClaims(p *Proof, data []byte) error {
	members, err := strictjson.Object(data, strictjson.MaxClaimsDepth)
	if err != nil {
		return proofErr("claims are not a strict JSON object")
	}
	var hasIAT bool
	for _, m := range members {
		var err error
		switch m.Name {
		case "jti":
			p.ID, err = strictjson.String(m.Value)
		case "htm":
			p.Method, err = strictjson.String(m.Value)
		case "htu":
			p.URI, err = strictjson.String(m.Value)
		case "ath":
			p.TokenHash, err = strictjson.String(m.Value)
		case "nonce":
			p.Nonce, err = strictjson.String(m.Value)
		case "iat":
			p.IssuedAt, err = strictjson.NumericDate(m.Value)
			hasIAT = true
		}
		if err != nil {
			return proofErr(m.Name + " has the wrong type")
		}
	}
	switch {
	case p.ID == "":
		return proofErr("jti is missing or empty")
	case p.Method == "":
		return proofErr("htm is missing or empty")
	case p.URI == "":
		return proofErr("htu is missing or empty")
	case !hasIAT:
		return proofErr("iat is missing")
	}
	return nil
}

// proofErr is the refusal of a malformed or unverifiable proof.
func proofErr(detail string) error {
	return refusal.With(aegis.ReasonInvalidDPoPProof, ErrProof, detail)
}

// Thumbprint returns the RFC 7638 JWK thumbprint of pub with SHA-256,
// base64url encoded without padding (RFC 9449 §6's jkt, RFC 8705's
// x5t#S256 is another thing). The JSON hashed holds only the required
// members of the key type, in lexicographic order, without whitespace
// (§3.2): {"e":…,"kty":"RSA","n":…}, {"crv":…,"kty":"EC","x":…,"y":…},
// {"crv":"Ed25519","kty":"OKP","x":…}; integers are big-endian without
// leading zeros (RSA) or of the curve's full size (EC coordinates, RFC
// 7518 §6.2.1.2).
func Thumbprint(pub crypto.PublicKey) (string, error) {
	var s string
	enc := base64.RawURLEncoding
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil || k.X == nil || k.Y == nil {
			return "", errors.New("incomplete EC key")
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		s = `{"crv":"` + k.Curve.Params().Name + `","kty":"EC","x":"` + enc.EncodeToString(k.X.FillBytes(make([]byte, size))) +
			`","y":"` + enc.EncodeToString(k.Y.FillBytes(make([]byte, size))) + `"}`
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return "", errors.New("Ed25519 key of the wrong size")
		}
		s = `{"crv":"Ed25519","kty":"OKP","x":"` + enc.EncodeToString(k) + `"}`
	default:
		rsaKey, ok := rsaPublic(pub)
		if !ok {
			return "", errors.New("unsupported key type")
		}
		s = `{"e":"` + enc.EncodeToString(big.NewInt(int64(rsaKey.E)).Bytes()) + `","kty":"RSA","n":"` +
			enc.EncodeToString(rsaKey.N.Bytes()) + `"}`
	}
	sum := sha256.Sum256([]byte(s))
	return enc.EncodeToString(sum[:]), nil
}

// rsaPublic returns pub as a complete RSA public key.
func rsaPublic(pub crypto.PublicKey) (*rsa.PublicKey, bool) {
	k, ok := pub.(*rsa.PublicKey)
	if !ok || k == nil || k.N == nil || k.N.Sign() <= 0 || k.E <= 0 {
		return nil, false
	}
	return k, true
}
