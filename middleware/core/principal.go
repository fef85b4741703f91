package core

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

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
	// jwt is the validator that verified a JWT, whose key set tells
	// Cached whether the key that verified it (in claims) is still the
	// issuer's, and whose leeway after Expiry is when it would refuse the
	// token as expired; nil for other Principals, which Cached does not
	// keep. (Derived rather than copied: every request's Principal is a
	// copy, and smaller is cheaper.)
	jwt *JWT
	// slot is the context node allocated with the Principal (see
	// principalContext); nil for a Principal allocated alone.
	slot *principalContext
	// cached marks a Principal served by Cached.
	cached bool
	// binding records what the request proved (binding.go).
	binding uint8
	// cnf records, when the Principal was made from claims, whether they
	// hold a cnf claim (binding.go), so that the many tokens bound to
	// nothing skip reading it on every request.
	cnf uint8
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
	p.checker, p.jwt, p.cached = nil, nil, false
	p.claims, p.slot = nil, nil
	p.binding, p.cnf = 0, 0 // nothing proved yet; cnf read from the claims given
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
	if p != nil {
		// A Principal this package allocated comes with the context node
		// that carries it: the first WithPrincipal of that very Principal
		// (not of a copy) takes it, without allocating.
		if pc := p.slot; pc != nil && &pc.p == p && pc.taken.CompareAndSwap(false, true) {
			pc.Context = ctx
			return pc
		}
	}
	return context.WithValue(ctx, principalKey{}, p)
}

// principalContext is a Principal allocated together with the context
// node that will carry it: a transport puts the Principal of every
// admitted request in the request's context, and one allocation then
// serves both. Until WithPrincipal takes it, it is not a context.
type principalContext struct {
	context.Context // the parent, set by the WithPrincipal that takes it
	p               Principal
	taken           atomic.Bool
}

// allocPrincipal returns a copy of p allocated with its context node.
func allocPrincipal(p Principal) *Principal {
	pc := &principalContext{p: p}
	pc.p.slot = pc
	return &pc.p
}

// Value is the Principal for its key, and the parent's value for any other.
func (c *principalContext) Value(key any) any {
	if _, ok := key.(principalKey); ok {
		return &c.p
	}
	return c.Context.Value(key)
}

// String names the node as context.WithValue's do.
func (c *principalContext) String() string {
	if s, ok := c.Context.(fmt.Stringer); ok {
		return s.String() + ".WithValue(core.principalKey, *core.Principal)"
	}
	return "context.WithValue(core.principalKey, *core.Principal)"
}

// PrincipalFrom returns the Principal a transport put in ctx.
func PrincipalFrom(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}

// AdmittedBy reports whether c admitted p (and charged its rate limit).
func (p *Principal) AdmittedBy(c *Checker) bool { return p != nil && c != nil && p.checker == c }
