package middleware

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"

	"github.com/olympus/aegis/internal/strictjson"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/scopes"
)

// jwtValidator validates JWT access tokens locally.
type jwtValidator struct {
	v *jwks.Validator
}

func newJWTValidator(cfg Config, log *slog.Logger) (*jwtValidator, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("aegis: Config.Issuer is required")
	}
	keys := cfg.Keys
	if keys == nil {
		kc := cfg.JWKS
		if kc.Issuer == "" {
			kc.Issuer = cfg.Issuer
		}
		if kc.URL == "" {
			kc.URL = cfg.JWKSURL
		}
		if kc.HTTPClient == nil {
			kc.HTTPClient = cfg.HTTPClient
		}
		if kc.Logger == nil {
			kc.Logger = log
		}
		if kc.Now == nil {
			kc.Now = cfg.Now
		}
		remote, err := jwks.NewRemote(kc)
		if err != nil {
			return nil, err
		}
		keys = remote
	}
	v, err := jwks.NewValidator(jwks.ValidatorConfig{
		Issuer:                    cfg.Issuer,
		Audience:                  cfg.Audience,
		AnyAudience:               cfg.AnyAudience,
		Keys:                      keys,
		Algorithms:                cfg.Algorithms,
		Leeway:                    cfg.Leeway,
		RequireJWTAccessTokenType: cfg.RequireJWTAccessTokenType,
		MaxTokenLength:            cfg.Bearer.withDefaults().MaxLength,
		Now:                       cfg.Now,
	})
	if err != nil {
		return nil, err
	}
	return &jwtValidator{v: v}, nil
}

func (j *jwtValidator) ValidateToken(ctx context.Context, token string) (*Principal, error) {
	c, err := j.v.Validate(ctx, token)
	if err != nil {
		return nil, err
	}
	granted, e := grantedScopes(c.Raw)
	if e != nil {
		return nil, e
	}
	email, e := emailOf(c.Raw)
	if e != nil {
		return nil, e
	}
	return &Principal{
		Subject:  c.Subject,
		ClientID: c.ClientID,
		Email:    email,
		Scopes:   granted,
		Issuer:   c.Issuer,
		Audience: c.Audience,
		Expiry:   c.Expiry,
		TokenID:  c.TokenID,
		Method:   MethodJWT,
		claims:   c.Raw,
	}, nil
}

// grantedScopes unites the scope (string) and scp (array or string) claims.
func grantedScopes(claim func(string) (json.RawMessage, bool)) (scopes.Set, *Error) {
	var granted scopes.Set
	for _, name := range []string{"scope", "scp"} {
		raw, ok := claim(name)
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
func emailOf(claim func(string) (json.RawMessage, bool)) (string, *Error) {
	if raw, ok := claim("email"); ok && string(raw) != "null" {
		email, err := strictjson.String(raw)
		if err != nil {
			return "", errEmailClaim.withCause(err)
		}
		return email, nil
	}
	raw, ok := claim("ext")
	if !ok || len(raw) == 0 || raw[0] != '{' {
		return "", nil
	}
	members, err := strictjson.Object(raw, 16)
	if err != nil {
		return "", errEmailClaim.withCause(err)
	}
	for _, m := range members {
		if m.Name == "email" {
			email, err := strictjson.String(m.Value)
			if err != nil {
				return "", errEmailClaim.withCause(err)
			}
			return email, nil
		}
	}
	return "", nil
}
