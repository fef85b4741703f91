package core

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/internal/strictjson"
)

// StepUp is what a resource requires of the user's authentication (RFC
// 9470): how the user authenticated (acr) and how long ago (auth_time).
// The claims are read from the token's top level, or else from Ory Hydra's
// ext, where a consent app puts them (session.access_token); null or empty
// counts as absent. JWTs and introspection answers are read alike.
//
// An M2M token carries no user authentication, so it never meets a StepUp
// with requirements: it is refused like a user token that lacks them (401
// insufficient_user_authentication). Such a client cannot step up; the
// answer tells its operator that the resource is for users.
type StepUp struct {
	// ACRValues are the acceptable acr values; empty accepts any (and
	// none).
	ACRValues []string
	// MaxAge is the longest time since the user authenticated (auth_time);
	// 0 sets no limit. A token without auth_time does not meet a MaxAge.
	MaxAge time.Duration
}

// StepUp checks p, a Principal this Checker admitted for the same request,
// against s. A refusal (ReasonInsufficientUserAuthentication, carrying the
// requirements for the challenge) is recorded.
func (c *Checker) StepUp(ctx context.Context, cred Credential, p *Principal, s StepUp) *aegis.Refusal {
	r := stepUpRefusal(p, s, c.now())
	if r != nil {
		c.record(ctx, cred, refusedDecision(r, p), r)
	}
	return r
}

// stepUpRefusal is the refusal s gives p at now, or nil.
func stepUpRefusal(p *Principal, s StepUp, now time.Time) *aegis.Refusal {
	if len(s.ACRValues) == 0 && s.MaxAge <= 0 {
		return nil
	}
	refuse := func(detail string, err error) *aegis.Refusal {
		r := aegis.Refuse(aegis.ReasonInsufficientUserAuthentication, err)
		switch detail {
		case "acr":
			r.Description = "A different authentication level is required"
		case "max_age":
			r.Description = "More recent authentication is required"
		}
		r.ACRValues = slices.Clone(s.ACRValues)
		if s.MaxAge > 0 {
			r.MaxAge = s.MaxAge
		}
		return r
	}
	if p.Kind == KindM2M {
		return refuse("", nil)
	}
	acr, authTime, err := userAuthentication(p)
	if err != nil {
		return refuse("", err)
	}
	if len(s.ACRValues) > 0 && !slices.Contains(s.ACRValues, acr) {
		return refuse("acr", nil)
	}
	if s.MaxAge > 0 && (authTime.IsZero() || now.Sub(authTime) > s.MaxAge || authTime.After(now.Add(aegis.DefaultLeeway))) {
		// An auth_time in the future (beyond clock skew) would meet any
		// MaxAge forever.
		return refuse("max_age", nil)
	}
	return nil
}

// userAuthentication reads acr and auth_time from the top-level claims, or
// else from Hydra's ext, each on its own.
func userAuthentication(p *Principal) (acr string, authTime time.Time, err error) {
	ext, _ := p.Claim("ext")
	read := func(name string) ([]byte, error) {
		if raw, ok := p.Claim(name); ok && !absent(raw) {
			return raw, nil
		}
		if len(ext) == 0 || ext[0] != '{' {
			return nil, nil
		}
		v, found, err := strictjson.Find(ext, name, strictjson.MaxClaimsDepth-1)
		if err != nil || !found || absent(v) {
			return nil, err
		}
		return v, nil
	}
	raw, err := read("acr")
	if err != nil {
		return "", time.Time{}, err
	}
	if raw != nil {
		if acr, err = strictjson.String(raw); err != nil {
			return "", time.Time{}, fmt.Errorf("acr claim: %w", err)
		}
	}
	if raw, err = read("auth_time"); err != nil {
		return "", time.Time{}, err
	}
	if raw != nil {
		if authTime, err = numericDate(raw); err != nil {
			return "", time.Time{}, fmt.Errorf("auth_time claim: %w", err)
		}
	}
	return acr, authTime, nil
}

// absent reports a claim value that counts as missing: null or "".
func absent(raw []byte) bool { return string(raw) == "null" || string(raw) == `""` }

// numericDate reads a NumericDate (RFC 7519 §2) as strictly as exp is
// read.
func numericDate(raw []byte) (time.Time, error) { return strictjson.NumericDate(raw) }
