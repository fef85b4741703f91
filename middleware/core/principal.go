package core

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/scopes"
)

// Kind tells machine-to-machine callers from people.
type Kind string

const (
	// KindM2M is a backend client acting for itself (client_credentials).
	KindM2M Kind = "m2m"
	// KindUser is an application acting for a person.
	KindUser Kind = "user"
)

// Method names how a token was validated.
type Method string

const (
	// MethodJWT: signature and claims checked locally against the issuer's keys.
	MethodJWT Method = "jwt"
	// MethodIntrospection: the issuer vouched for the token (RFC 7662).
	MethodIntrospection Method = "introspection"
)

// Principal is the caller a valid token stands for. Every field is owned
// by the Principal: none points into the token's decoded bytes, so a
// handler may keep any of them. Treat it as read-only: its slices may be
// shared with a cache.
type Principal struct {
	// Kind is KindM2M or KindUser, as decided by the Checker's Classifier.
	Kind Kind
	// Subject is the token's sub.
	Subject string
	// ClientID is the OAuth2 client the token was issued to (client_id).
	ClientID string
	// Email is the top-level email claim, or Ory Hydra's ext.email; empty
	// when there is none.
	Email string
	// Scopes are the granted scopes, from scope (string) and scp (array or
	// string) together.
	Scopes scopes.Set
	// Issuer is the token's iss.
	Issuer string
	// Audience is the token's aud.
	Audience []string
	// Expiry is the token's exp.
	Expiry time.Time
	// TokenID is the token's jti; empty when absent.
	TokenID string
	// Method is how the token was validated.
	Method Method

	claims claimLookup
	// checker is the Checker that admitted the Principal; nil for one made
	// by NewPrincipal.
	checker *Checker
	// key tells Cached whether the key that verified a JWT is still the
	// issuer's; nil for other Principals, which Cached does not keep.
	key keyPresence
	// verifiedBy is the key that verified the JWT.
	verifiedBy jwks.Key
	// validUntil is when the validator would refuse the token as expired
	// (exp plus its leeway); Cached serves it no longer.
	validUntil time.Time
	// cached marks a Principal served by Cached.
	cached bool
	// binding records what the request proved (binding.go).
	binding uint8
}

// claimLookup finds a claim's JSON value by name: *jwks.Claims and
// *introspect.Result are ones (held without allocating a closure).
type claimLookup interface {
	Raw(name string) (json.RawMessage, bool)
}

// claimFunc adapts NewPrincipal's function to claimLookup.
type claimFunc func(name string) (json.RawMessage, bool)

func (f claimFunc) Raw(name string) (json.RawMessage, bool) { return f(name) }

// NewPrincipal builds a Principal for custom validators and tests; claims
// looks up any claim by name and may be nil.
func NewPrincipal(p Principal, claims func(name string) (json.RawMessage, bool)) *Principal {
	p.checker, p.key, p.verifiedBy, p.cached, p.validUntil = nil, nil, jwks.Key{}, false, time.Time{}
	p.claims = nil
	if claims != nil {
		p.claims = claimFunc(claims)
	}
	return &p
}

// ErrNoClaim reports a claim the token does not carry.
var ErrNoClaim = errors.New("aegis: no such claim")

// Claim returns the JSON value of any top-level claim as the token carried
// it, a copy the caller owns.
func (p *Principal) Claim(name string) (json.RawMessage, bool) {
	if p == nil || p.claims == nil {
		return nil, false
	}
	raw, ok := p.claims.Raw(name)
	if !ok {
		return nil, false
	}
	return bytes.Clone(raw), true
}

// DecodeClaim decodes the named claim into v with encoding/json. A missing
// claim gives ErrNoClaim.
func (p *Principal) DecodeClaim(name string, v any) error {
	raw, ok := p.Claim(name)
	if !ok {
		return fmt.Errorf("%w: %q", ErrNoClaim, name)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("aegis: claim %q: %w", name, err)
	}
	return nil
}

// ClaimAs returns the named claim decoded as a T:
//
//	tenant, err := core.ClaimAs[string](p, "tenant")
func ClaimAs[T any](p *Principal, name string) (T, error) {
	var v T
	err := p.DecodeClaim(name, &v)
	return v, err
}

// Cached reports whether the Principal was served by the verified-token
// cache rather than checked anew.
func (p *Principal) Cached() bool { return p != nil && p.cached }

// Classifier decides a Principal's Kind. It sees every field but Kind.
type Classifier func(p *Principal) Kind

// DefaultClassifier is Athena IAM's documented rule: a token is M2M when its
// subject is its client ID and it carries no email; otherwise it is a user's.
func DefaultClassifier(p *Principal) Kind {
	if p.ClientID != "" && p.Subject == p.ClientID && p.Email == "" {
		return KindM2M
	}
	return KindUser
}

type principalKey struct{}

// WithPrincipal returns a copy of ctx carrying p, for transports and for
// tests of handlers that read PrincipalFrom. A transport's own checks do
// not trust such a Principal: they authenticate the request themselves.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the Principal a transport put in ctx.
func PrincipalFrom(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}

// AdmittedBy reports whether c admitted p (and charged its rate limit).
func (p *Principal) AdmittedBy(c *Checker) bool { return p != nil && c != nil && p.checker == c }
