package middleware

import (
	"context"
	"encoding/json"

	"github.com/olympus/aegis/middleware/core"
)

// Principal is the caller a valid token stands for; see core.Principal.
type Principal = core.Principal

// Kind tells machine-to-machine callers from people.
type Kind = core.Kind

// Method names how a token was validated.
type Method = core.Method

// Classifier decides a Principal's Kind.
type Classifier = core.Classifier

// Kinds and methods, as in package core.
const (
	KindM2M             = core.KindM2M
	KindUser            = core.KindUser
	MethodJWT           = core.MethodJWT
	MethodIntrospection = core.MethodIntrospection
)

// ErrNoClaim reports a claim the token does not carry.
var ErrNoClaim = core.ErrNoClaim

// DefaultClassifier is Athena IAM's documented rule: a token is M2M when its
// subject is its client ID and it carries no email; otherwise it is a user's.
func DefaultClassifier(p *Principal) Kind { return core.DefaultClassifier(p) }

// NewPrincipal builds a Principal for custom validators and tests; claims
// looks up any claim by name and may be nil.
func NewPrincipal(p Principal, claims func(name string) (json.RawMessage, bool)) *Principal {
	return core.NewPrincipal(p, claims)
}

// ClaimAs returns the named claim decoded as a T:
//
//	tenant, err := middleware.ClaimAs[string](p, "tenant")
func ClaimAs[T any](p *Principal, name string) (T, error) { return core.ClaimAs[T](p, name) }

// WithPrincipal returns a copy of ctx carrying p, for tests of handlers
// that read PrincipalFrom. A Guard's Require does not trust such a
// Principal: it authenticates the request itself.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return core.WithPrincipal(ctx, p)
}

// PrincipalFrom returns the Principal a Guard put in ctx.
func PrincipalFrom(ctx context.Context) (*Principal, bool) { return core.PrincipalFrom(ctx) }
