package jwks

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/olympus/aegis"

	"github.com/olympus/aegis/internal/audience"
	"github.com/olympus/aegis/internal/refusal"
	"github.com/olympus/aegis/internal/strictjson"
)

// maxCandidateKeys bounds how many keys one token without kid is tried
// against.
const maxCandidateKeys = 8

// KeySource supplies verification keys. *Set and *Remote implement it.
type KeySource interface {
	// LookupKeys returns the keys with the given kid, or every key when kid
	// is empty. Finding none is not an error; failing to obtain any keys at
	// all is, and must match ErrKeysUnavailable, as may failing to refresh
	// the keys to look for a kid not yet known.
	LookupKeys(ctx context.Context, kid string) ([]Key, error)
}

// LookupKeys implements KeySource for a fixed set.
func (s *Set) LookupKeys(_ context.Context, kid string) ([]Key, error) {
	return s.Lookup(kid), nil
}

// ValidatorConfig configures a Validator. Issuer, Keys and either Audience
// or AnyAudience are required.
type ValidatorConfig struct {
	// Issuer is the exact iss every token must carry.
	Issuer string
	// Audience must be one of the token's aud values (RFC 9068 §4).
	Audience string
	// AnyAudience skips the audience check. It exists for issuers that
	// cannot set an audience; leaving it off is strongly advised.
	AnyAudience bool
	// CanonicalAudience compares URL audiences in canonical form: letter
	// case in scheme and host, and one trailing slash, do not matter
	// (RFC 8707 resource indicators written two ways). Off by default: aud
	// must hold Audience exactly.
	CanonicalAudience bool
	// Keys supplies verification keys, normally a *Remote for Issuer.
	Keys KeySource
	// Algorithms is the allowlist of header alg values; default
	// DefaultAlgorithms(). Only asymmetric algorithms are accepted.
	Algorithms []string
	// Leeway is the clock skew tolerated on exp, nbf and iat: zero means
	// aegis.DefaultLeeway, a negative value means none, at most
	// aegis.MaxLeeway.
	Leeway time.Duration
	// RequireJWTAccessTokenType demands the RFC 9068 typ header "at+jwt"
	// (or "application/at+jwt"), compared case-insensitively. Off by
	// default, since Ory Hydra sends "JWT"; then a typ is still refused
	// unless it is absent, JWT or at+jwt (with or without "application/").
	RequireJWTAccessTokenType bool
	// MaxTokenLength bounds the token before any decoding; zero means
	// aegis.DefaultMaxTokenLength.
	MaxTokenLength int
	// MaxLifetime, when positive, bounds how long a token may live: a token
	// whose exp is more than MaxLifetime after its iat (or, without iat,
	// more than MaxLifetime plus the leeway after now) is refused with
	// ErrClaims (claims_invalid). Zero, the default, sets no bound; a
	// negative value is an error.
	MaxLifetime time.Duration
	// Now returns the current time; default time.Now.
	Now func() time.Time
}

// Validator validates JWT access tokens: RFC 8725 and RFC 9068 §4, strictly,
// whatever the underlying JOSE library would accept on its own.
type Validator struct {
	cfg       ValidatorConfig
	leeway    time.Duration
	verifiers map[string]*SignatureVerifier
}

// NewValidator checks cfg and returns a Validator.
func NewValidator(cfg ValidatorConfig) (*Validator, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("jwks: ValidatorConfig.Issuer is required")
	}
	if cfg.Audience == "" && !cfg.AnyAudience {
		return nil, errors.New("jwks: ValidatorConfig.Audience is required (or set AnyAudience)")
	}
	if cfg.Keys == nil {
		return nil, errors.New("jwks: ValidatorConfig.Keys is required")
	}
	if cfg.Algorithms == nil {
		cfg.Algorithms = DefaultAlgorithms()
	}
	if len(cfg.Algorithms) == 0 {
		return nil, errors.New("jwks: ValidatorConfig.Algorithms is empty")
	}
	v := &Validator{cfg: cfg, verifiers: make(map[string]*SignatureVerifier, len(cfg.Algorithms))}
	for _, alg := range cfg.Algorithms {
		if !slices.Contains(DefaultAlgorithms(), alg) {
			return nil, fmt.Errorf("jwks: algorithm %q is not allowed: only asymmetric signature algorithms are", alg)
		}
		verifier, err := NewSignatureVerifier(alg)
		if err != nil {
			return nil, fmt.Errorf("jwks: algorithm %q: %w", alg, err)
		}
		v.verifiers[alg] = verifier
	}
	switch {
	case cfg.Leeway == 0:
		v.leeway = aegis.DefaultLeeway
	case cfg.Leeway < 0:
		v.leeway = 0
	case cfg.Leeway > aegis.MaxLeeway:
		return nil, fmt.Errorf("jwks: leeway %v is over the maximum %v", cfg.Leeway, aegis.MaxLeeway)
	default:
		v.leeway = cfg.Leeway
	}
	if cfg.MaxLifetime < 0 {
		return nil, fmt.Errorf("jwks: MaxLifetime %v is negative", cfg.MaxLifetime)
	}
	if v.cfg.MaxTokenLength <= 0 {
		v.cfg.MaxTokenLength = aegis.DefaultMaxTokenLength
	}
	if v.cfg.Now == nil {
		v.cfg.Now = time.Now
	}
	return v, nil
}

// Issuer returns the issuer this validator trusts.
func (v *Validator) Issuer() string { return v.cfg.Issuer }

var b64 = base64.RawURLEncoding.Strict()

// Headers that would make a recipient fetch or trust keys named by the token
// itself, or change how the payload is read. Aegis never honours them, so a
// token carrying any is refused.
var forbiddenHeaders = []string{"jku", "x5u", "jwk", "x5c", "crit", "b64", "enc", "zip"}

// Validate checks token and returns its claims. A refusal wraps one of the
// Err values of this package; ErrKeysUnavailable means the keys could not be
// had, not that the token is bad.
func (v *Validator) Validate(ctx context.Context, token string) (*Claims, error) {
	t, err := ParseToken(token, v.cfg.MaxTokenLength)
	if err != nil {
		return nil, err
	}
	return v.Verify(ctx, t)
}

// Token is a compact JWS whose serialization, header and claims have been
// read strictly, but whose signature has not been verified: nothing in it
// is to be trusted before Verify. It lets a caller route a token to the
// validator of the issuer it names, once, without decoding it twice.
type Token struct {
	signingInput string
	sig          []byte
	header       header
	claims       Claims
	// members is room for the claims' members (and first the header's):
	// a token from Hydra has about ten, so one allocation holds the Token
	// and them.
	members [12]strictjson.Member
	// audience is room for aud: one value, as Hydra sends, or two.
	audience [2]string
}

// Issuer is the iss the token claims, unverified.
func (t *Token) Issuer() string { return t.claims.Issuer }

// ParseToken reads token without verifying it: exactly three canonical
// base64url parts, a strict JSON header with an alg and none of the
// forbidden parameters, strict JSON claims of the right types. A token
// that is not shaped like a JWT at all (an opaque token) gives an error
// matching ErrNotJWT; a token longer than maxLength (0: the default) is
// refused before any decoding.
func ParseToken(token string, maxLength int) (*Token, error) {
	if maxLength <= 0 {
		maxLength = aegis.DefaultMaxTokenLength
	}
	if len(token) > maxLength {
		return nil, refuse(ErrMalformed, "token too long")
	}
	// Forward scans only: IndexByte is vectorized, LastIndexByte is not.
	first := strings.IndexByte(token, '.')
	second := -1
	if first > 0 {
		second = strings.IndexByte(token[first+1:], '.')
	}
	if second < 0 || strings.IndexByte(token[first+1+second+1:], '.') >= 0 {
		return nil, refuse(ErrNotJWT, "not a compact JWS of three parts")
	}
	last := first + 1 + second
	// One buffer holds the three decoded parts; the header's and the
	// claims' strings are views into it (strictjson.StringView), so it is
	// never written again once decoded.
	buf := make([]byte, b64.DecodedLen(first)+b64.DecodedLen(last-first-1)+b64.DecodedLen(len(token)-last-1))
	headerJSON, rest, err := decodeInto(buf, token[:first])
	if err != nil {
		return nil, refuse(ErrNotJWT, "header is not canonical base64url")
	}
	t := &Token{signingInput: token[:last]}
	// The header's members pass through the claims' room: alg, kid and
	// typ are views into buf, and the claims' members replace them.
	h, err := parseHeader(t.members[:0], headerJSON)
	if err != nil {
		return nil, err
	}
	if last == len(token)-1 {
		return nil, refuse(ErrMalformed, "no signature")
	}
	if first+1 == last {
		return nil, refuse(ErrMalformed, "empty payload")
	}
	sig, rest, err := decodeInto(rest, token[last+1:])
	if err != nil {
		return nil, refuse(ErrMalformed, "signature is not canonical base64url")
	}
	payload, _, err := decodeInto(rest, token[first+1:last])
	if err != nil {
		return nil, refuse(ErrMalformed, "payload is not canonical base64url")
	}
	t.sig, t.header = sig, h
	if err := parseClaims(&t.claims, t.members[:0], t.audience[:0], payload); err != nil {
		return nil, err
	}
	t.claims.KeyID, t.claims.Algorithm, t.claims.Type = h.kid, h.alg, h.typ
	return t, nil
}

// errAlphabet: a part holds a byte outside the base64url alphabet.
var errAlphabet = errors.New("byte outside the base64url alphabet")

// decodeInto decodes the base64url part into the front of buf and returns
// it and what is left of buf. Any byte outside the alphabet is refused:
// the strict decoder refuses all of them but \r and \n, which
// encoding/base64 skips even in strict mode (one token would have
// unlimited spellings), so those two are looked for first, with vectorized
// scans.
func decodeInto(buf []byte, part string) (decoded, rest []byte, err error) {
	if strings.IndexByte(part, '\n') >= 0 || strings.IndexByte(part, '\r') >= 0 {
		return nil, nil, errAlphabet
	}
	n, err := b64.Decode(buf, unsafe.Slice(unsafe.StringData(part), len(part)))
	if err != nil {
		return nil, nil, err
	}
	return buf[:n:n], buf[n:], nil
}

// Verify checks a parsed token: its algorithm, its issuer (before any key
// lookup, so a foreign token costs no network call), its signature with the
// issuer's key, then its claims (RFC 8725, RFC 9068 §4).
func (v *Validator) Verify(ctx context.Context, t *Token) (*Claims, error) {
	h := t.header
	verifier, ok := v.verifiers[h.alg]
	if !ok {
		return nil, refuse(ErrAlgorithm, "alg not in the allowlist")
	}
	switch {
	case v.cfg.RequireJWTAccessTokenType && !isATJWT(h.typ):
		return nil, refuse(ErrType, "typ is not at+jwt")
	case !isAccessTokenType(h.typ):
		// Explicit typing (RFC 8725 §3.11): a JWT typed for another use
		// (dpop+jwt, logout+jwt, secevent+jwt…) is never an access token.
		return nil, refuse(ErrType, "typ names another kind of JWT")
	}
	if t.claims.Issuer != v.cfg.Issuer {
		return nil, refuse(ErrIssuer, refusal.Mismatch("iss", []string{t.claims.Issuer}, v.cfg.Issuer))
	}
	keys, err := v.cfg.Keys.LookupKeys(ctx, h.kid)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, refuse(ErrUnknownKey, "no key with the token's kid")
	}
	// The verifier only reads the signing input (it hashes it), so the
	// token's own bytes serve without a copy.
	signingInput := unsafe.Slice(unsafe.StringData(t.signingInput), len(t.signingInput))
	fitting, verified := 0, false
	for _, k := range keys {
		if !k.Verifies(h.alg) {
			continue
		}
		fitting++
		if fitting > maxCandidateKeys {
			break
		}
		if verifier.verify(k, signingInput, t.sig) {
			verified = true
			t.claims.Key = k
			break
		}
	}
	switch {
	case fitting == 0:
		return nil, refuse(ErrAlgorithm, "alg is not the algorithm of the token's key")
	case !verified:
		return nil, refuse(ErrSignature, "signature does not verify")
	}
	if err := v.checkClaims(&t.claims); err != nil {
		return nil, err
	}
	return &t.claims, nil
}

type header struct {
	alg, kid, typ string
}

func parseHeader(room []strictjson.Member, data []byte) (header, error) {
	var h header
	members, err := strictjson.AppendObject(room, data, 8)
	if err != nil {
		return h, refuse(ErrNotJWT, "header is not a strict JSON object")
	}
	hasAlg := false
	for _, m := range members {
		switch m.Name {
		case "alg":
			hasAlg = true
			h.alg, err = strictjson.StringView(m.Value)
		case "kid":
			h.kid, err = strictjson.StringView(m.Value)
		case "typ":
			h.typ, err = strictjson.StringView(m.Value)
		default:
			if slices.Contains(forbiddenHeaders, m.Name) {
				return h, refuse(ErrMalformed, "header "+m.Name+" is not accepted")
			}
		}
		if err != nil {
			return h, refuse(ErrMalformed, "header "+m.Name+" is not a string")
		}
	}
	if !hasAlg {
		return h, refuse(ErrNotJWT, "header has no alg")
	}
	return h, nil
}

func isATJWT(typ string) bool {
	return strings.EqualFold(typ, "at+jwt") || strings.EqualFold(typ, "application/at+jwt")
}

// isAccessTokenType reports whether typ may head an access token when
// at+jwt is not required: none, the generic JWT (Ory Hydra's), or at+jwt,
// each with or without the "application/" prefix (RFC 7515 §4.1.9).
func isAccessTokenType(typ string) bool {
	return typ == "" || strings.EqualFold(typ, "jwt") || strings.EqualFold(typ, "application/jwt") || isATJWT(typ)
}

// checkClaims applies the claim rules Verify has not applied yet (iss was
// checked before the key lookup).
func (v *Validator) checkClaims(c *Claims) error {
	if c.Subject == "" {
		return refuse(ErrClaims, "sub is missing or empty")
	}
	if c.ClientID == "" {
		return refuse(ErrClaims, "client_id is missing or empty")
	}
	if c.idTokenClaim != "" {
		return refuse(ErrType, "an ID token ("+c.idTokenClaim+"), not an access token")
	}
	if c.Expiry.IsZero() {
		return refuse(ErrClaims, "exp is missing")
	}
	now := v.cfg.Now()
	if !now.Before(c.Expiry.Add(v.leeway)) {
		return refuse(ErrExpired, "exp is not in the future")
	}
	if !c.NotBefore.IsZero() && now.Add(v.leeway).Before(c.NotBefore) {
		return refuse(ErrNotYetValid, "nbf is in the future")
	}
	if !c.IssuedAt.IsZero() && now.Add(v.leeway).Before(c.IssuedAt) {
		return refuse(ErrNotYetValid, "iat is in the future")
	}
	if limit := v.cfg.MaxLifetime; limit > 0 {
		switch {
		case !c.IssuedAt.IsZero() && c.Expiry.Sub(c.IssuedAt) > limit:
			return refuse(ErrClaims, "exp - iat exceeds the maximum lifetime")
		case c.IssuedAt.IsZero() && c.Expiry.Sub(now) > limit+v.leeway:
			return refuse(ErrClaims, "exp - now exceeds the maximum lifetime (no iat)")
		}
	}
	if !v.cfg.AnyAudience && !audience.Contains(c.Audience, v.cfg.Audience, v.cfg.CanonicalAudience) {
		return refuse(ErrAudience, refusal.Mismatch("aud", c.Audience, v.cfg.Audience))
	}
	return nil
}
