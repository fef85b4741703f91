package middleware_test

import (
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/introspect"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/core"
)

// mode is how a test's Guard validates tokens of its issuer(s).
type mode string

const (
	// modeJWT validates JWTs locally (core.NewJWT behind core.Cached);
	// opaque tokens are malformed. An Introspection.Endpoint makes
	// RequireIntrospection available without accepting opaque tokens.
	modeJWT mode = "jwt"
	// modeHybrid validates JWTs locally and introspects opaque tokens.
	modeHybrid mode = "hybrid"
	// modeIntrospect introspects every token; JWTs are routed by iss first.
	modeIntrospect mode = "introspect"
)

// setup is a test's Guard: the adapter's middleware.Config, plus what its
// core.Validator is composed of. Issuer, Audience, Now, Logger and
// HTTPClient are shared by the JWT and introspection validators, as are
// Leeway and Bearer.MaxLength.
type setup struct {
	middleware.Config
	Mode                      mode
	AnyAudience               bool
	Keys                      jwks.KeySource
	JWKS                      jwks.Config
	Algorithms                []string
	Leeway                    time.Duration
	RequireJWTAccessTokenType bool
	// Introspection configures the issuer's introspection validator.
	Introspection introspect.Config
	// Issuers, when set, replaces Issuer, Audience and Introspection:
	// JWTs are routed by iss (core.ByIssuer), opaque tokens go to the first
	// issuer that introspects.
	Issuers []issuerSetup
	// VerifiedCache configures core.Cached around each JWT validator.
	VerifiedCache cacheSetup
	HTTPClient    *http.Client
}

type issuerSetup struct {
	Issuer, Audience string
	Introspection    introspect.Config
}

type cacheSetup struct {
	Disabled   bool
	TTL        time.Duration
	MaxEntries int
}

// plain reports whether the setup is the quick start's: Issuer and
// Audience alone.
func (s *setup) plain() bool {
	return s.Validator == nil && s.Mode == "" && !s.AnyAudience && s.Keys == nil && reflect.ValueOf(s.JWKS).IsZero() &&
		s.Algorithms == nil && s.Leeway == 0 && !s.RequireJWTAccessTokenType && s.Introspection.Endpoint == "" &&
		s.Issuers == nil && s.VerifiedCache == (cacheSetup{}) && s.HTTPClient == nil
}

// config returns the middleware.Config of the setup, composing its
// Validator.
func (s *setup) config() (middleware.Config, error) {
	cfg := s.Config
	if s.plain() {
		return cfg, nil
	}
	if s.Validator != nil {
		return cfg, nil
	}
	switch s.Mode {
	case "", modeJWT, modeHybrid, modeIntrospect:
	default:
		return cfg, setupError("unknown mode " + string(s.Mode))
	}
	issuers := s.Issuers
	if issuers == nil {
		issuers = []issuerSetup{{Issuer: s.Issuer, Audience: s.Audience, Introspection: s.Introspection}}
	}
	cfg.Issuer, cfg.Audience = "", ""
	m := make(map[string]core.Validator, len(issuers))
	var opaque core.Validator
	var jwtOnly core.Validator
	for _, is := range issuers {
		intro, err := s.introspection(is)
		if err != nil {
			return cfg, err
		}
		var v core.Validator
		if s.Mode == modeIntrospect {
			v = intro
		} else {
			jwtCfg := core.JWTConfig{Issuer: is.Issuer, Audience: is.Audience, AnyAudience: s.AnyAudience, Keys: s.Keys,
				JWKS: s.JWKS, Algorithms: s.Algorithms, Leeway: s.Leeway, RequireJWTAccessTokenType: s.RequireJWTAccessTokenType,
				MaxTokenLength: s.Bearer.MaxLength, Now: s.Now}
			if jwtCfg.JWKS.HTTPClient == nil {
				jwtCfg.JWKS.HTTPClient = s.HTTPClient
			}
			if jwtCfg.JWKS.Logger == nil {
				jwtCfg.JWKS.Logger = s.Logger
			}
			jwt, err := core.NewJWT(jwtCfg)
			if err != nil {
				return cfg, err
			}
			v = jwt
			if !s.VerifiedCache.Disabled {
				v = core.Cached(jwt, core.CacheConfig{TTL: s.VerifiedCache.TTL, MaxEntries: s.VerifiedCache.MaxEntries, Now: s.Now})
			}
			switch {
			case len(issuers) == 1 && intro == nil:
				jwtOnly = v
			case len(issuers) == 1 && s.Mode != modeHybrid:
				// A JWT-only Guard whose RequireIntrospection routes
				// confirm with the issuer.
				jwtOnly, cfg.Introspection = v, intro
			case intro != nil:
				// Only JWTs reach it (core.ByIssuer); the introspection
				// validator is there for RequireIntrospection.
				v = core.Hybrid(v, intro)
			}
		}
		if _, dup := m[is.Issuer]; dup {
			return cfg, errDuplicateIssuer
		}
		m[is.Issuer] = v
		if opaque == nil && intro != nil && s.Mode != modeJWT && s.Mode != "" {
			opaque = intro
		}
	}
	switch {
	case jwtOnly != nil:
		cfg.Validator = jwtOnly
	case opaque != nil:
		cfg.Validator = core.Hybrid(core.ByIssuer(m), opaque)
	default:
		cfg.Validator = core.ByIssuer(m)
	}
	return cfg, nil
}

// introspection returns the introspection validator of an issuer, or nil
// when it has none: in modeJWT and for other issuers than the first, an
// issuer introspects only when its endpoint is set.
func (s *setup) introspection(is issuerSetup) (*core.Introspection, error) {
	ic := is.Introspection
	single := s.Issuers == nil
	if ic.Endpoint == "" && s.Mode != modeIntrospect && (s.Mode != modeHybrid || !single) {
		return nil, nil
	}
	if ic.Issuer == "" {
		ic.Issuer = is.Issuer
	}
	if ic.Audience == "" && !ic.AnyAudience {
		ic.Audience, ic.AnyAudience = is.Audience, s.AnyAudience
	}
	if ic.HTTPClient == nil {
		ic.HTTPClient = s.HTTPClient
	}
	if ic.Logger == nil {
		ic.Logger = s.Logger
	}
	if ic.Now == nil {
		ic.Now = s.Now
	}
	if ic.Leeway == 0 {
		ic.Leeway = s.Leeway
	}
	return core.NewIntrospection(ic)
}

type setupError string

func (e setupError) Error() string { return string(e) }

const errDuplicateIssuer = setupError("issuer listed twice")

// newGuard builds the setup's Guard.
func (s *setup) newGuard() (*middleware.Guard, error) {
	cfg, err := s.config()
	if err != nil {
		return nil, err
	}
	return middleware.New(cfg)
}

// mustGuard builds the setup's Guard or fails the test.
func mustGuard(t testing.TB, s setup) *middleware.Guard {
	t.Helper()
	g, err := s.newGuard()
	require.NoError(t, err)
	return g
}
