package jwks

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/titanous/rocacheck"

	"github.com/olympus/aegis/internal/strictjson"
)

// Signature algorithms Aegis can verify. Only asymmetric algorithms exist
// here: "none" and the HMAC family can never be configured.
const (
	RS256 = "RS256"
	RS384 = "RS384"
	RS512 = "RS512"
	PS256 = "PS256"
	PS384 = "PS384"
	PS512 = "PS512"
	ES256 = "ES256"
	ES384 = "ES384"
	ES512 = "ES512"
	EdDSA = "EdDSA"
	// Ed25519 is EdDSA on Ed25519 under its fully-specified name
	// (RFC 9864), which replaces EdDSA.
	Ed25519 = "Ed25519"
)

// DefaultAlgorithms is the allowlist used when none is configured: every
// algorithm above.
func DefaultAlgorithms() []string {
	return []string{RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA, Ed25519}
}

const (
	minRSABits = 2048
	maxRSABits = 8192
)

// Key is a public key fit to verify access tokens.
type Key struct {
	// ID is the JWK's kid, possibly empty.
	ID string
	// Algorithm is the JWK's alg, or empty when the JWK named none; then
	// every allowed algorithm that fits the key's type may use it.
	Algorithm string
	// Public is a *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey.
	Public crypto.PublicKey
}

// Verifies reports whether a token whose header names alg may be verified
// with k: alg must be the key's own algorithm when it has one, and must fit
// the key's type and size (ES256 only on P-256, and so on).
func (k Key) Verifies(alg string) bool {
	if k.Algorithm != "" && k.Algorithm != alg {
		return false
	}
	return algorithmFits(alg, k.Public)
}

func algorithmFits(alg string, pub crypto.PublicKey) bool {
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		switch alg {
		case RS256, RS384, RS512, PS256, PS384, PS512:
			return true
		}
	case *ecdsa.PublicKey:
		if pub == nil {
			return false
		}
		switch alg {
		case ES256:
			return pub.Curve == elliptic.P256()
		case ES384:
			return pub.Curve == elliptic.P384()
		case ES512:
			return pub.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == EdDSA || alg == Ed25519
	}
	return false
}

// checkPublicKey refuses keys too weak or too malformed to verify with.
func checkPublicKey(pub crypto.PublicKey) error {
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		if pub.N == nil {
			return errors.New("RSA key without modulus")
		}
		bits := pub.N.BitLen()
		if bits < minRSABits {
			return fmt.Errorf("RSA key of %d bits, under %d", bits, minRSABits)
		}
		if bits > maxRSABits {
			return fmt.Errorf("RSA key of %d bits, over %d", bits, maxRSABits)
		}
		if pub.E < 3 || pub.E%2 == 0 {
			return errors.New("RSA key with an invalid public exponent")
		}
		if rocacheck.IsWeak(pub) {
			// Infineon's RSALib keys (ROCA, CVE-2017-15361) can be factored.
			return errors.New("RSA key with the ROCA weakness (CVE-2017-15361)")
		}
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return errors.New("EC key on an unsupported curve")
		}
		if pub.X == nil || pub.Y == nil {
			return errors.New("EC key without a point")
		}
		if _, err := pub.ECDH(); err != nil {
			return errors.New("EC key whose point is not on its curve")
		}
	case ed25519.PublicKey:
		if len(pub) != ed25519.PublicKeySize {
			return errors.New("Ed25519 key of the wrong size")
		}
	default:
		return fmt.Errorf("unsupported key type %T", pub)
	}
	return nil
}

// Rejected names a JWK that was left out of a set, and why.
type Rejected struct {
	// ID is the JWK's kid, if it had a readable one.
	ID string
	// Reason is a short explanation written by Aegis.
	Reason string
}

// Set is an immutable collection of verification keys, indexed by kid.
type Set struct {
	keys []Key
	byID map[string][]Key
}

// NewSet builds a set from keys, refusing any key that is too weak or
// malformed, or whose Algorithm does not fit it.
func NewSet(keys ...Key) (*Set, error) {
	for _, k := range keys {
		if err := checkPublicKey(k.Public); err != nil {
			return nil, fmt.Errorf("jwks: key %q: %v", k.ID, err)
		}
		if k.Algorithm != "" && !algorithmFits(k.Algorithm, k.Public) {
			return nil, fmt.Errorf("jwks: key %q: algorithm %q does not fit the key", k.ID, k.Algorithm)
		}
	}
	return newSet(slices.Clone(keys)), nil
}

func newSet(keys []Key) *Set {
	s := &Set{keys: keys, byID: make(map[string][]Key, len(keys))}
	for _, k := range keys {
		s.byID[k.ID] = append(s.byID[k.ID], k)
	}
	return s
}

// Len returns the number of keys.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.keys)
}

// Keys returns a copy of the keys in their original order.
func (s *Set) Keys() []Key {
	if s == nil {
		return nil
	}
	return slices.Clone(s.keys)
}

// Lookup returns the keys with the given kid. An empty kid matches every key:
// a token without kid may be tried against each key that fits its alg.
func (s *Set) Lookup(kid string) []Key {
	if s == nil {
		return nil
	}
	if kid == "" {
		return s.keys
	}
	return s.byID[kid]
}

// maxKeys bounds the number of keys read from one document.
const maxKeys = 100

// ParseSet reads a JWK Set document (RFC 7517 §5). Keys unfit to verify
// access tokens are left out one by one and reported, without losing the
// rest: symmetric keys, RSA keys under 2048 bits, keys for encryption
// (use other than "sig", key_ops without "verify"), unknown key types,
// EC points off their curve, keys carrying private material, and keys whose
// alg is not an allowed signature algorithm fitting the key. Members are read
// by their exact names (RFC 7517 §4); a JWK with duplicate members, or with
// a member whose name differs only in case from a registered JWK parameter
// ("USE" beside or instead of "use"), is left out as malformed, so that
// Aegis and jwx can never read one JWK as two different keys. A document
// that is not a JSON object with a "keys" array is an error.
func ParseSet(data []byte) (*Set, []Rejected, error) {
	members, err := strictjson.Shallow(data, 16)
	if err != nil {
		return nil, nil, fmt.Errorf("jwks: key set is not a strict JSON object: %w", err)
	}
	var rawKeys [][]byte
	found, more := false, false
	for _, m := range members {
		if m.Name == "keys" {
			found = true
			if rawKeys, more, err = strictjson.Elements(m.Value, 15, maxKeys); err != nil {
				return nil, nil, errors.New("jwks: key set's \"keys\" is not an array")
			}
		}
	}
	if !found {
		return nil, nil, errors.New("jwks: key set has no \"keys\" array")
	}
	var keys []Key
	var rejected []Rejected
	for _, raw := range rawKeys {
		k, err := parseKey(raw)
		if err != nil {
			rejected = append(rejected, Rejected{ID: k.ID, Reason: err.Error()})
			continue
		}
		keys = append(keys, k)
	}
	if more {
		rejected = append(rejected, Rejected{Reason: fmt.Sprintf("more than %d keys: the rest are ignored", maxKeys)})
	}
	return newSet(keys), rejected, nil
}

// jwkHeader holds the JWK members Aegis reads itself (RFC 7517 §4); jwx
// reads the key parameters.
type jwkHeader struct {
	Kty, Alg, Kid string
	Use           *string
	KeyOps        []string
	hasKeyOps     bool
	private       bool // d or k present, whatever its value
}

// jwkNames are the member names RFC 7517 and RFC 7518 register for a JWK:
// those Aegis reads and those jwx reads. A member whose name differs from
// one of them only in case makes the key malformed, for encoding/json would
// have read it as that member while jwx reads it as another.
var jwkNames = []string{"kty", "use", "key_ops", "alg", "kid", "x5u", "x5c", "x5t", "x5t#S256",
	"crv", "x", "y", "d", "n", "e", "p", "q", "dp", "dq", "qi", "oth", "k"}

// readJWKHeader reads the members Aegis decides on by their exact names
// from a strict JSON object (no duplicate names). A null value is absent,
// as encoding/json read it; d and k count whatever their value.
func readJWKHeader(raw []byte) (jwkHeader, error) {
	var h jwkHeader
	members, err := strictjson.Object(raw, 8)
	if err != nil {
		return h, errors.New("not a strict JSON object")
	}
	for _, m := range members {
		for _, name := range jwkNames {
			if m.Name != name && strings.EqualFold(m.Name, name) {
				return h, fmt.Errorf("member %q differs from %q only in case", clip(m.Name), name)
			}
		}
		if string(m.Value) == "null" && m.Name != "d" && m.Name != "k" {
			continue
		}
		var err error
		switch m.Name {
		case "kty":
			h.Kty, err = strictjson.String(m.Value)
		case "alg":
			h.Alg, err = strictjson.String(m.Value)
		case "kid":
			h.Kid, err = strictjson.String(m.Value)
		case "use":
			var use string
			use, err = strictjson.String(m.Value)
			h.Use = &use
		case "key_ops":
			h.KeyOps, err = strictjson.Strings(m.Value)
			h.hasKeyOps = true
		case "d", "k":
			h.private = true
		}
		if err != nil {
			return jwkHeader{Kid: h.Kid}, errors.New("a member has the wrong type")
		}
	}
	return h, nil
}

func parseKey(raw []byte) (Key, error) {
	h, err := readJWKHeader(raw)
	if err != nil {
		return Key{ID: h.Kid}, err
	}
	k := Key{ID: h.Kid, Algorithm: h.Alg}
	switch h.Kty {
	case "RSA", "EC", "OKP":
	case "oct":
		return k, errors.New("symmetric (oct) key")
	case "":
		return k, errors.New("no kty")
	default:
		return k, fmt.Errorf("unsupported kty %q", clip(h.Kty))
	}
	if h.Use != nil && *h.Use != "sig" {
		return k, fmt.Errorf("use %q, not sig", clip(*h.Use))
	}
	if h.hasKeyOps && !slices.Contains(h.KeyOps, "verify") {
		return k, errors.New("key_ops without verify")
	}
	if h.private {
		return k, errors.New("private key material published")
	}
	if h.Alg != "" && !slices.Contains(DefaultAlgorithms(), h.Alg) {
		return k, fmt.Errorf("alg %q is not an allowed signature algorithm", clip(h.Alg))
	}
	parsed, err := jwk.ParseKey(raw)
	if err != nil {
		return k, errors.New("key parameters unreadable")
	}
	var pub any
	if err := parsed.Raw(&pub); err != nil {
		return k, errors.New("key parameters unreadable")
	}
	switch p := pub.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey:
	case ed25519.PublicKey:
		pub = p
	default:
		return k, fmt.Errorf("unsupported key type %T", pub)
	}
	if err := checkPublicKey(pub); err != nil {
		return k, err
	}
	if h.Alg != "" && !algorithmFits(h.Alg, pub) {
		return k, fmt.Errorf("alg %q does not fit the key", h.Alg)
	}
	k.Public = pub
	return k, nil
}

// clip keeps untrusted text short in messages.
func clip(s string) string {
	const max = 32
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// HasKey reports whether the set holds a key with this kid (any key, for
// an empty kid).
func (s *Set) HasKey(kid string) bool { return len(s.Lookup(kid)) > 0 }

// Holds reports whether the set holds k itself: a key with k's kid (or
// none, as k) and the same public key. A key republished under its kid
// with new material is not k. now is ignored: a Set does not change.
func (s *Set) Holds(k Key, _ time.Time) bool {
	for _, h := range s.Lookup(k.ID) {
		if h.ID == k.ID && samePublicKey(h.Public, k.Public) {
			return true
		}
	}
	return false
}

// samePublicKey reports whether a and b are the same public key: the same
// value (a key set read once), or equal material.
func samePublicKey(a, b crypto.PublicKey) bool {
	switch a := a.(type) {
	case *rsa.PublicKey:
		b, ok := b.(*rsa.PublicKey)
		return ok && a != nil && b != nil && (a == b || a.Equal(b))
	case *ecdsa.PublicKey:
		b, ok := b.(*ecdsa.PublicKey)
		return ok && a != nil && b != nil && (a == b || a.Equal(b))
	case ed25519.PublicKey:
		b, ok := b.(ed25519.PublicKey)
		return ok && a.Equal(b)
	}
	return false
}
