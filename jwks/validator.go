package jwks

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/olympus/aegis/internal/strictjson"
)

// DefaultLeeway is the clock skew tolerated on exp, nbf and iat when
// ValidatorConfig.Leeway is zero.
const DefaultLeeway = 30 * time.Second

// MaxLeeway is the largest leeway a Validator accepts.
const MaxLeeway = 5 * time.Minute

// DefaultMaxTokenLength bounds the size of a token before any decoding.
const DefaultMaxTokenLength = 8 << 10

// maxCandidateKeys bounds how many keys one token without kid is tried
// against.
const maxCandidateKeys = 8

// KeySource supplies verification keys. *Set and *Remote implement it.
type KeySource interface {
	// LookupKeys returns the keys with the given kid, or every key when kid
	// is empty. Finding none is not an error; failing to obtain any keys at
	// all is, and must match ErrKeysUnavailable.
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
	// Keys supplies verification keys, normally a *Remote for Issuer.
	Keys KeySource
	// Algorithms is the allowlist of header alg values; default
	// DefaultAlgorithms(). Only asymmetric algorithms are accepted.
	Algorithms []string
	// Leeway is the clock skew tolerated on exp, nbf and iat: zero means
	// DefaultLeeway, a negative value means none, at most MaxLeeway.
	Leeway time.Duration
	// RequireJWTAccessTokenType demands the RFC 9068 typ header "at+jwt"
	// (or "application/at+jwt"), compared case-insensitively. Off by
	// default, since Ory Hydra sends "JWT".
	RequireJWTAccessTokenType bool
	// MaxTokenLength bounds the token before any decoding; zero means
	// DefaultMaxTokenLength.
	MaxTokenLength int
	// Now returns the current time; default time.Now.
	Now func() time.Time
}

// Validator validates JWT access tokens: RFC 8725 and RFC 9068 §4, strictly,
// whatever the underlying JOSE library would accept on its own.
type Validator struct {
	cfg       ValidatorConfig
	leeway    time.Duration
	verifiers map[string]jws.Verifier
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
	v := &Validator{cfg: cfg, verifiers: make(map[string]jws.Verifier, len(cfg.Algorithms))}
	for _, alg := range cfg.Algorithms {
		if !slices.Contains(DefaultAlgorithms(), alg) {
			return nil, fmt.Errorf("jwks: algorithm %q is not allowed: only asymmetric signature algorithms are", alg)
		}
		verifier, err := jws.NewVerifier(jwa.SignatureAlgorithm(alg))
		if err != nil {
			return nil, fmt.Errorf("jwks: algorithm %q: %w", alg, err)
		}
		v.verifiers[alg] = verifier
	}
	switch {
	case cfg.Leeway == 0:
		v.leeway = DefaultLeeway
	case cfg.Leeway < 0:
		v.leeway = 0
	case cfg.Leeway > MaxLeeway:
		return nil, fmt.Errorf("jwks: leeway %v is over the maximum %v", cfg.Leeway, MaxLeeway)
	default:
		v.leeway = cfg.Leeway
	}
	if v.cfg.MaxTokenLength <= 0 {
		v.cfg.MaxTokenLength = DefaultMaxTokenLength
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
	if len(token) > v.cfg.MaxTokenLength {
		return nil, refuse(ErrMalformed, "token too long")
	}
	first := strings.IndexByte(token, '.')
	last := strings.LastIndexByte(token, '.')
	if first <= 0 || first == last || strings.IndexByte(token[first+1:last], '.') >= 0 {
		return nil, refuse(ErrMalformed, "not a compact JWS of three parts")
	}
	if last == len(token)-1 {
		return nil, refuse(ErrMalformed, "no signature")
	}
	if first+1 == last {
		return nil, refuse(ErrMalformed, "empty payload")
	}
	headerJSON, err := b64.DecodeString(token[:first])
	if err != nil {
		return nil, refuse(ErrMalformed, "header is not canonical base64url")
	}
	h, err := parseHeader(headerJSON)
	if err != nil {
		return nil, err
	}
	verifier, ok := v.verifiers[h.alg]
	if !ok {
		return nil, refuse(ErrAlgorithm, "alg not in the allowlist")
	}
	if v.cfg.RequireJWTAccessTokenType && !isATJWT(h.typ) {
		return nil, refuse(ErrType, "typ is not at+jwt")
	}
	sig, err := b64.DecodeString(token[last+1:])
	if err != nil {
		return nil, refuse(ErrMalformed, "signature is not canonical base64url")
	}
	payload, err := b64.DecodeString(token[first+1 : last])
	if err != nil {
		return nil, refuse(ErrMalformed, "payload is not canonical base64url")
	}
	keys, err := v.cfg.Keys.LookupKeys(ctx, h.kid)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, refuse(ErrUnknownKey, "no key with the token's kid")
	}
	signingInput := []byte(token[:last])
	fitting, verified := 0, false
	for _, k := range keys {
		if !k.Verifies(h.alg) {
			continue
		}
		fitting++
		if fitting > maxCandidateKeys {
			break
		}
		if verifier.Verify(signingInput, sig, k.Public) == nil {
			verified = true
			break
		}
	}
	switch {
	case fitting == 0:
		return nil, refuse(ErrAlgorithm, "alg is not the algorithm of the token's key")
	case !verified:
		return nil, refuse(ErrSignature, "signature does not verify")
	}
	c, err := parseClaims(payload)
	if err != nil {
		return nil, err
	}
	c.KeyID, c.Algorithm, c.Type = h.kid, h.alg, h.typ
	if err := v.checkClaims(c); err != nil {
		return nil, err
	}
	return c, nil
}

type header struct {
	alg, kid, typ string
}

func parseHeader(data []byte) (header, error) {
	var h header
	members, err := strictjson.Object(data, 8)
	if err != nil {
		return h, refuse(ErrMalformed, "header is not a strict JSON object")
	}
	hasAlg := false
	for _, m := range members {
		switch m.Name {
		case "alg":
			hasAlg = true
			h.alg, err = strictjson.String(m.Value)
		case "kid":
			h.kid, err = strictjson.String(m.Value)
		case "typ":
			h.typ, err = strictjson.String(m.Value)
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
		return h, refuse(ErrMalformed, "header has no alg")
	}
	return h, nil
}

func isATJWT(typ string) bool {
	return strings.EqualFold(typ, "at+jwt") || strings.EqualFold(typ, "application/at+jwt")
}

func (v *Validator) checkClaims(c *Claims) error {
	if c.Issuer != v.cfg.Issuer {
		return refuse(ErrIssuer, "iss is not the configured issuer")
	}
	if c.Subject == "" {
		return refuse(ErrClaims, "sub is missing or empty")
	}
	if c.ClientID == "" {
		return refuse(ErrClaims, "client_id is missing or empty")
	}
	if c.idTokenClaim != "" {
		return refuse(ErrType, "an ID token ("+c.idTokenClaim+"), not an access token")
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
	if !v.cfg.AnyAudience && !slices.Contains(c.Audience, v.cfg.Audience) {
		return refuse(ErrAudience, "aud does not contain the configured audience")
	}
	return nil
}

// UnverifiedIssuer returns the iss a JWT claims, without verifying
// anything, so that a token can be routed to its issuer's validator (or
// refused) before any key lookup or network call. ok is false when token is
// not shaped like a compact JWS with a string iss.
func UnverifiedIssuer(token string) (iss string, ok bool) {
	first := strings.IndexByte(token, '.')
	last := strings.LastIndexByte(token, '.')
	if first <= 0 || first == last || len(token) > DefaultMaxTokenLength*8 {
		return "", false
	}
	payload, err := b64.DecodeString(token[first+1 : last])
	if err != nil {
		return "", false
	}
	members, err := strictjson.Object(payload, maxClaimsDepth)
	if err != nil {
		return "", false
	}
	for _, m := range members {
		if m.Name == "iss" {
			s, err := strictjson.String(m.Value)
			return s, err == nil
		}
	}
	return "", false
}

// LooksLikeJWT reports whether token has the shape of a compact JWS: three
// base64url parts whose first decodes to a JSON object naming an alg. Opaque
// tokens such as Hydra's "ory_at_….…" do not. It says nothing of validity:
// a JWT-shaped token with a forbidden header is still JWT-shaped, and
// Validate refuses it.
func LooksLikeJWT(token string) bool {
	first := strings.IndexByte(token, '.')
	last := strings.LastIndexByte(token, '.')
	if first <= 0 || first == last || strings.IndexByte(token[first+1:last], '.') >= 0 || first > 4096 {
		return false
	}
	header, err := b64.DecodeString(token[:first])
	if err != nil {
		return false
	}
	members, err := strictjson.Object(header, 8)
	if err != nil {
		return false
	}
	for _, m := range members {
		if m.Name == "alg" {
			return true
		}
	}
	return false
}
