package middleware

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/olympus/aegis/internal/strictjson"
	"github.com/olympus/aegis/introspect"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/scopes"
)

// Mode selects how tokens are validated.
type Mode string

const (
	// ModeJWT validates JWT access tokens locally against the issuer's
	// keys; opaque tokens are refused. The default.
	ModeJWT Mode = "jwt"
	// ModeIntrospect asks the issuer about every token (RFC 7662).
	ModeIntrospect Mode = "introspect"
	// ModeHybrid validates JWT-shaped tokens locally and introspects the
	// others (Hydra's opaque "ory_at_…" tokens).
	ModeHybrid Mode = "hybrid"
)

// IssuerConfig describes one trusted issuer when a Guard trusts several.
type IssuerConfig struct {
	// Issuer is the exact iss of its tokens.
	Issuer string
	// Audience must be among its tokens' aud values, unless AnyAudience.
	Audience    string
	AnyAudience bool
	// JWKSURL is its jwks_uri; empty means discovered.
	JWKSURL string
	// JWKS tunes its key set; Keys replaces it.
	JWKS jwks.Config
	Keys jwks.KeySource
	// Introspection configures its introspection client. Its Issuer,
	// Audience, AnyAudience, HTTPClient, Logger and Now default to the
	// issuer's and the Guard's; an empty Endpoint is discovered (Hydra
	// publishes none: set it).
	Introspection introspect.Config
}

// issuerValidator validates the tokens of one issuer.
type issuerValidator struct {
	issuer string
	jwt    *jwks.Validator    // nil in ModeIntrospect
	keys   keyPresence        // the JWT key set, when it can tell which keys it holds
	intro  *introspect.Client // nil when introspection is not configured
}

// dispatcher routes each token to its issuer and validation path.
type dispatcher struct {
	mode      Mode
	maxLength int
	issuers   []*issuerValidator
	byIss     map[string]*issuerValidator
	// opaque is the issuer whose introspection handles tokens that are not
	// JWTs: the first issuer that can introspect.
	opaque *issuerValidator
}

func (c Config) issuers() []IssuerConfig {
	if len(c.Issuers) > 0 {
		return c.Issuers
	}
	return []IssuerConfig{{
		Issuer: c.Issuer, Audience: c.Audience, AnyAudience: c.AnyAudience,
		JWKSURL: c.JWKSURL, JWKS: c.JWKS, Keys: c.Keys, Introspection: c.Introspection,
	}}
}

func newDispatcher(cfg Config, obs *observer) (*dispatcher, error) {
	d := &dispatcher{mode: cfg.Mode, maxLength: cfg.Bearer.withDefaults().MaxLength, byIss: map[string]*issuerValidator{}}
	switch d.mode {
	case "":
		d.mode = ModeJWT
	case ModeJWT, ModeIntrospect, ModeHybrid:
	default:
		return nil, fmt.Errorf("aegis: unknown Mode %q (jwt, introspect or hybrid)", cfg.Mode)
	}
	for _, ic := range cfg.issuers() {
		if ic.Issuer == "" {
			return nil, errors.New("aegis: Config.Issuer is required")
		}
		if _, dup := d.byIss[ic.Issuer]; dup {
			return nil, fmt.Errorf("aegis: issuer %q configured twice", ic.Issuer)
		}
		v := &issuerValidator{issuer: ic.Issuer}
		if d.mode != ModeIntrospect {
			jv, keys, err := newJWTValidator(cfg, ic, obs)
			if err != nil {
				return nil, err
			}
			v.jwt = jv
			v.keys, _ = keys.(keyPresence)
		}
		if d.mode != ModeJWT || ic.Introspection.Endpoint != "" {
			client, err := newIntrospector(cfg, ic, obs)
			if err != nil {
				return nil, err
			}
			v.intro = client
			if d.opaque == nil {
				d.opaque = v
			}
		}
		d.issuers = append(d.issuers, v)
		d.byIss[ic.Issuer] = v
	}
	return d, nil
}

func newJWTValidator(cfg Config, ic IssuerConfig, obs *observer) (*jwks.Validator, jwks.KeySource, error) {
	keys := ic.Keys
	if keys == nil {
		kc := ic.JWKS
		if kc.Issuer == "" {
			kc.Issuer = ic.Issuer
		}
		if kc.URL == "" {
			kc.URL = ic.JWKSURL
		}
		if kc.HTTPClient == nil {
			kc.HTTPClient = cfg.HTTPClient
		}
		if kc.Logger == nil {
			kc.Logger = obs.log
		}
		if kc.Now == nil {
			kc.Now = cfg.Now
		}
		kc.Hooks = obs.jwksHooks(ic.Issuer, kc.Hooks)
		remote, err := jwks.NewRemote(kc)
		if err != nil {
			return nil, nil, err
		}
		keys = remote
	}
	v, err := jwks.NewValidator(jwks.ValidatorConfig{
		Issuer:                    ic.Issuer,
		Audience:                  ic.Audience,
		AnyAudience:               ic.AnyAudience,
		Keys:                      keys,
		Algorithms:                cfg.Algorithms,
		Leeway:                    cfg.Leeway,
		RequireJWTAccessTokenType: cfg.RequireJWTAccessTokenType,
		MaxTokenLength:            cfg.Bearer.withDefaults().MaxLength,
		Now:                       cfg.Now,
	})
	return v, keys, err
}

func newIntrospector(cfg Config, ic IssuerConfig, obs *observer) (*introspect.Client, error) {
	c := ic.Introspection
	if c.Issuer == "" {
		c.Issuer = ic.Issuer
	}
	if c.Audience == "" && !c.AnyAudience {
		c.Audience, c.AnyAudience = ic.Audience, ic.AnyAudience
	}
	if c.HTTPClient == nil {
		c.HTTPClient = cfg.HTTPClient
	}
	if c.Logger == nil {
		c.Logger = obs.log
	}
	c.Hooks = obs.introspectionHooks(ic.Issuer, c.Hooks)
	if c.Now == nil {
		c.Now = cfg.Now
	}
	if c.Leeway == 0 {
		c.Leeway = cfg.Leeway
	}
	if c.MaxTokenLength == 0 {
		c.MaxTokenLength = cfg.Bearer.withDefaults().MaxLength
	}
	return introspect.New(c)
}

var errUntrustedIssuer = errorf(http.StatusUnauthorized, CodeInvalidToken, "issuer_mismatch", "The access token is not from a trusted issuer")

// ValidateToken implements TokenValidator. A JWT is read once, routed by
// the iss it claims (refused before any network call when that is not a
// trusted issuer) and verified by its issuer's validator, or introspected;
// other tokens are introspected, or refused in ModeJWT.
func (d *dispatcher) ValidateToken(ctx context.Context, token string) (*Principal, error) {
	t, err := jwks.ParseToken(token, d.maxLength)
	switch {
	case errors.Is(err, jwks.ErrNotJWT):
		if d.mode == ModeJWT {
			return nil, err
		}
		return d.introspectAt(ctx, d.opaque, token)
	case err != nil:
		return nil, err
	}
	v, ok := d.byIss[t.Issuer()]
	if !ok {
		return nil, errUntrustedIssuer
	}
	if d.mode == ModeIntrospect {
		return d.introspectAt(ctx, v, token)
	}
	return v.verifyJWT(ctx, t)
}

// introspect validates token by introspection at its issuer: a JWT's iss,
// or the issuer that handles opaque tokens (none in ModeJWT).
func (d *dispatcher) introspect(ctx context.Context, token string) (*Principal, error) {
	t, err := jwks.ParseToken(token, d.maxLength)
	switch {
	case errors.Is(err, jwks.ErrNotJWT):
		if d.mode == ModeJWT {
			return nil, err
		}
		return d.introspectAt(ctx, d.opaque, token)
	case err != nil:
		return nil, err
	}
	v, ok := d.byIss[t.Issuer()]
	if !ok {
		return nil, errUntrustedIssuer
	}
	return d.introspectAt(ctx, v, token)
}

func (d *dispatcher) introspectAt(ctx context.Context, v *issuerValidator, token string) (*Principal, error) {
	if v == nil || v.intro == nil {
		return nil, errNoIntrospection
	}
	res, err := v.intro.Introspect(ctx, token)
	if err != nil {
		return nil, err
	}
	return principalFromIntrospection(res, v.issuer)
}

func (d *dispatcher) canIntrospect() bool { return d.opaque != nil }

var errNoIntrospection = &Error{Status: http.StatusServiceUnavailable, Reason: "introspection_unconfigured",
	Description: "Token introspection is not configured for this issuer", RetryAfter: time.Minute}

func (v *issuerValidator) verifyJWT(ctx context.Context, t *jwks.Token) (*Principal, error) {
	c, err := v.jwt.Verify(ctx, t)
	if err != nil {
		return nil, err
	}
	p, e := newPrincipal(c, MethodJWT)
	if e != nil {
		return nil, e
	}
	// The claims' strings are views into the token's buffer: the client ID
	// and subject are copied, since rate limiters, limit sources and
	// metrics keep them as map keys and labels long after the token.
	p.Subject, p.ClientID = strings.Clone(c.Subject), strings.Clone(c.ClientID)
	p.Issuer, p.Audience, p.Expiry, p.TokenID = c.Issuer, c.Audience, c.Expiry, c.TokenID
	p.keyID, p.keys = c.KeyID, v.keys
	return p, nil
}

func principalFromIntrospection(r *introspect.Result, issuer string) (*Principal, error) {
	p, e := newPrincipal(r, MethodIntrospection)
	if e != nil {
		return nil, e
	}
	p.Subject, p.ClientID, p.Audience, p.Expiry, p.TokenID = r.Subject, r.ClientID, r.Audience, r.Expiry, r.TokenID
	p.Issuer = r.Issuer
	if p.Issuer == "" {
		p.Issuer = issuer
	}
	return p, nil
}

// newPrincipal reads what both paths carry the same way: scopes and email.
func newPrincipal(claims claimLookup, m Method) (*Principal, *Error) {
	granted, e := grantedScopes(claims)
	if e != nil {
		return nil, e
	}
	email, e := emailOf(claims)
	if e != nil {
		return nil, e
	}
	return &Principal{Scopes: granted, Email: email, Method: m, claims: claims}, nil
}

// grantedScopes unites the scope (string) and scp (array or string) claims.
func grantedScopes(claims claimLookup) (scopes.Set, *Error) {
	var granted scopes.Set
	for _, name := range []string{"scope", "scp"} {
		raw, ok := claims.Raw(name)
		if !ok {
			continue
		}
		s, err := scopes.FromClaim(raw)
		if err != nil {
			return scopes.Set{}, errScopeClaim.withCause(err)
		}
		if granted.Len() == 0 {
			granted = s
		} else {
			granted = granted.Union(s)
		}
	}
	return granted, nil
}

// emailOf reads the top-level email claim, or Ory Hydra's ext.email.
func emailOf(claims claimLookup) (string, *Error) {
	if raw, ok := claims.Raw("email"); ok && string(raw) != "null" {
		email, err := strictjson.String(raw)
		if err != nil {
			return "", errEmailClaim.withCause(err)
		}
		return email, nil
	}
	raw, ok := claims.Raw("ext")
	if !ok || len(raw) == 0 || raw[0] != '{' {
		return "", nil
	}
	value, found, err := strictjson.Find(raw, "email", 16)
	if err != nil {
		return "", errEmailClaim.withCause(err)
	}
	if !found {
		return "", nil
	}
	email, err := strictjson.String(value)
	if err != nil {
		return "", errEmailClaim.withCause(err)
	}
	return email, nil
}
