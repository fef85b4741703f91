package middleware

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/olympus/aegis/internal/b64token"
	"github.com/olympus/aegis/introspect"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/scopes"
)

// TokenValidator turns a bearer token into a Principal. Its errors decide
// the response: an *Error is used as is; the jwks package's errors map to
// 401 invalid_token, or 503 for jwks.ErrKeysUnavailable; any other error is
// a 401 invalid_token.
type TokenValidator interface {
	ValidateToken(ctx context.Context, token string) (*Principal, error)
}

// Config configures a Guard. For JWT access tokens from one issuer, Issuer
// and Audience are all that is required.
type Config struct {
	// Issuer is the exact iss of accepted tokens, and where keys are
	// discovered unless JWKSURL is set.
	Issuer string
	// Audience must be among each token's aud values (RFC 9068 §4).
	Audience string
	// AnyAudience accepts tokens whatever their audience. Avoid it: a token
	// meant for another API would be accepted here.
	AnyAudience bool
	// JWKSURL is the issuer's jwks_uri; empty means discovered.
	JWKSURL string
	// Algorithms is the allowlist of signature algorithms; default
	// jwks.DefaultAlgorithms() (asymmetric only).
	Algorithms []string
	// Leeway is the clock skew tolerated on exp, nbf and iat; zero means
	// jwks.DefaultLeeway (30 s), negative means none.
	Leeway time.Duration
	// RequireJWTAccessTokenType demands typ "at+jwt" (RFC 9068). Off by
	// default: Ory Hydra sends "JWT".
	RequireJWTAccessTokenType bool
	// JWKS tunes the remote key set (refresh bounds, refetch cooldown,
	// timeouts, size cap). Its Issuer, URL, HTTPClient, Logger and Now
	// default to the fields above.
	JWKS jwks.Config
	// Keys replaces the remote key set, for example with a fixed *jwks.Set.
	Keys jwks.KeySource

	// Mode is ModeJWT (the default), ModeIntrospect or ModeHybrid.
	Mode Mode
	// Introspection configures token introspection (RFC 7662), used in
	// ModeIntrospect and ModeHybrid, and by RequireIntrospection when its
	// Endpoint is set. Its Issuer, Audience, HTTPClient, Logger, Now and
	// Leeway default to the fields of this Config.
	Introspection introspect.Config
	// Issuers lists several trusted issuers; when set, the fields Issuer
	// to Introspection above are ignored. A JWT is routed by its iss,
	// checked against this list before any network call; opaque tokens are
	// introspected at the first issuer that can introspect.
	Issuers []IssuerConfig

	// VerifiedCache configures the cache of verified JWTs (on by default).
	VerifiedCache VerifiedCacheConfig

	// RateLimit charges every authenticated request to its client; nil
	// means no limits.
	RateLimit *RateLimitConfig

	// Bearer configures where tokens are taken from.
	Bearer BearerConfig
	// Realm is the realm of WWW-Authenticate challenges; default "api".
	Realm string
	// Classifier decides each Principal's Kind; default DefaultClassifier.
	Classifier Classifier
	// ErrorWriter writes refusals; default WriteProblem.
	ErrorWriter ErrorWriter
	// Logger receives every decision (acceptances and refusals at debug,
	// 5xx refusals at warn, at most one per reason a second) and dependency
	// failures (warn); default slog.Default(). Tokens are never logged.
	Logger *slog.Logger
	// Metrics receives decisions, key-set fetches, introspection and
	// rate-limit measurements; nil measures nothing. See the prommetrics
	// and otelmetrics subpackages.
	Metrics Metrics
	// TracerProvider, when set, traces validation, key-set fetches,
	// introspection calls and limit lookups with OpenTelemetry spans; nil
	// traces nothing. Pass otel.GetTracerProvider() for the global one.
	TracerProvider trace.TracerProvider
	// HTTPClient makes requests to the issuer.
	HTTPClient *http.Client
	// Now is the clock; default time.Now.
	Now func() time.Time

	// Validator replaces validation altogether; the fields Issuer to
	// Issuers are then ignored.
	Validator TokenValidator
}

// Guard is HTTP middleware that admits requests bearing a valid access
// token and the scopes a route needs. It is safe for concurrent use.
type Guard struct {
	validator  TokenValidator
	dispatch   *dispatcher // nil with a custom Validator
	limiter    *rateLimiter
	verified   *verifiedCache // nil when disabled or with a custom Validator
	now        func() time.Time
	leeway     time.Duration
	bearer     BearerConfig
	realm      string
	classify   Classifier
	writeError ErrorWriter
	log        *slog.Logger
	obs        *observer
}

// New checks cfg and returns a Guard. It makes no network request: keys
// are fetched on first use.
func New(cfg Config) (*Guard, error) {
	g := &Guard{
		validator:  cfg.Validator,
		bearer:     cfg.Bearer.withDefaults(),
		realm:      cfg.Realm,
		classify:   cfg.Classifier,
		writeError: cfg.ErrorWriter,
		log:        cfg.Logger,
	}
	if g.realm == "" {
		g.realm = "api"
	}
	if g.classify == nil {
		g.classify = DefaultClassifier
	}
	if g.writeError == nil {
		g.writeError = WriteProblem
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	g.obs = newObserver(cfg, g.log)
	limiter, err := newRateLimiter(cfg.RateLimit, g.obs)
	if err != nil {
		return nil, err
	}
	g.limiter = limiter
	if g.validator == nil {
		d, err := newDispatcher(cfg, g.obs)
		if err != nil {
			return nil, err
		}
		g.validator, g.dispatch = d, d
		g.verified = newVerifiedCache(cfg.VerifiedCache)
	}
	g.now = cfg.Now
	if g.now == nil {
		g.now = time.Now
	}
	switch {
	case cfg.Leeway == 0:
		g.leeway = jwks.DefaultLeeway
	case cfg.Leeway > 0:
		g.leeway = cfg.Leeway
	}
	return g, nil
}

// Validate validates a bearer token outside HTTP (gRPC, WebSocket
// messages). The Principal is classified as for a request.
func (g *Guard) Validate(ctx context.Context, token string) (*Principal, error) {
	p, e := g.validate(ctx, token)
	if e != nil {
		g.obs.decide(ctx, nil, refused(e, nil), e.Err)
		return nil, e.clone()
	}
	g.obs.decide(ctx, nil, accepted(p), nil)
	return p, nil
}

// Authenticate is middleware that admits requests with a valid token and
// puts their Principal in the request context. It checks no scope.
func (g *Guard) Authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r, ok := g.authenticate(w, r); ok {
			p, _ := PrincipalFrom(r.Context())
			g.obs.decide(r.Context(), r, accepted(p), nil)
			next.ServeHTTP(w, r)
		}
	})
}

// Require is middleware that admits requests whose token grants every
// requirement given (none: any valid token). It authenticates the request
// itself unless an earlier Authenticate already did, so it works alone or
// after Authenticate:
//
//	r.With(guard.Require(scopes.All("data:read"))).Get("/data", list)
func (g *Guard) Require(reqs ...scopes.Requirement) func(http.Handler) http.Handler {
	scope := requiredScope(reqs)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := PrincipalFrom(r.Context())
			decided := ok && p.guard == g
			if !decided {
				// Only a Principal this Guard validated counts: another
				// Guard may trust other issuers or audiences.
				if r, ok = g.authenticate(w, r); !ok {
					return
				}
				p, _ = PrincipalFrom(r.Context())
			}
			for _, req := range reqs {
				if !req.SatisfiedBy(p.Scopes) {
					g.refuse(w, r, insufficientScope(scope))
					return
				}
			}
			if !decided {
				g.obs.decide(r.Context(), r, accepted(p), nil)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// RequireIntrospection is middleware for revocation-sensitive routes: the
// token must be confirmed active by the issuer's introspection endpoint
// even when it is a valid JWT (the answer is cached as configured in
// Introspection.Cache). It authenticates the request itself when needed.
// It panics at route setup when no introspection is configured.
//
//	r.With(guard.RequireIntrospection()).Delete("/account", closeAccount)
func (g *Guard) RequireIntrospection() func(http.Handler) http.Handler {
	if g.dispatch == nil || !g.dispatch.canIntrospect() {
		panic("aegis: RequireIntrospection needs introspection: set Mode to introspect or hybrid, or Introspection.Endpoint")
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p, ok := PrincipalFrom(r.Context()); ok && p.guard == g && p.Method == MethodIntrospection {
				next.ServeHTTP(w, r)
				return
			}
			token, e := g.extract(w, r)
			if e != nil {
				g.refuse(w, r, e)
				return
			}
			p, err := g.dispatch.introspect(r.Context(), token)
			if err != nil {
				g.refuse(w, r, toError(err))
				return
			}
			p.Kind = g.classify(p)
			p.guard = g
			prev, ok := PrincipalFrom(r.Context())
			charged := ok && prev.guard == g // another Guard's charge is not ours
			r = r.WithContext(WithPrincipal(r.Context(), p))
			if !charged {
				if !g.admit(w, r, p) {
					return
				}
				g.obs.decide(r.Context(), r, accepted(p), nil)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Protect wraps h for plain net/http: the request needs a valid token
// granting every requirement given.
//
//	mux.Handle("GET /data", guard.Protect(list, scopes.All("data:read")))
func (g *Guard) Protect(h http.Handler, reqs ...scopes.Requirement) http.Handler {
	return g.Require(reqs...)(h)
}

// requiredScope is the scope parameter of an insufficient_scope challenge.
func requiredScope(reqs []scopes.Requirement) string {
	var s string
	for _, req := range reqs {
		if req.IsZero() {
			continue
		}
		if s != "" {
			s += " "
		}
		s += req.String()
	}
	return s
}

func (g *Guard) authenticate(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	token, e := g.extract(w, r)
	if e != nil {
		g.refuse(w, r, e)
		return r, false
	}
	p, e := g.validate(r.Context(), token)
	if e != nil {
		g.refuse(w, r, e)
		return r, false
	}
	r = r.WithContext(WithPrincipal(r.Context(), p))
	return r, g.admit(w, r, p)
}

// admit charges a newly authenticated request to its client's rate limit,
// after authentication, so a forged token never spends a victim's quota.
func (g *Guard) admit(w http.ResponseWriter, r *http.Request, p *Principal) bool {
	if g.limiter == nil {
		return true
	}
	if e := g.limiter.charge(w, r, p); e != nil {
		g.refuse(w, r, e)
		return false
	}
	return true
}

// validate runs the validator and classifies the Principal, in a span
// when tracing is on.
func (g *Guard) validate(ctx context.Context, token string) (*Principal, *Error) {
	if g.obs.tracer == nil {
		return g.validateToken(ctx, token)
	}
	ctx, span := g.obs.start(ctx, "aegis.validate")
	p, e := g.validateToken(ctx, token)
	if e != nil {
		var failed error
		if e.Status >= 500 {
			failed = e // the Error's text is Aegis's own, never the token
		}
		end(span, failed, attribute.String("aegis.outcome", string(OutcomeRefused)), attribute.String("aegis.reason", e.Reason))
		return nil, e
	}
	end(span, nil, attribute.String("aegis.outcome", string(OutcomeAccepted)), attribute.String("aegis.kind", string(p.Kind)),
		attribute.String("aegis.auth_method", string(p.Method)), attribute.Bool("aegis.cached", p.cached))
	return p, nil
}

func (g *Guard) validateToken(ctx context.Context, token string) (*Principal, *Error) {
	// A token already verified is served from the cache: it passed the
	// checks below when it was first seen, and only the identical token hits.
	if g.verified != nil {
		if p := g.verified.get(token, g.now()); p != nil {
			return p, nil
		}
	}
	if len(token) > g.bearer.MaxLength {
		return nil, errTooLong
	}
	// Aegis's own dispatcher checks the syntax itself, strictly: a JWT's
	// three base64url parts, or b64token before any introspection call. A
	// custom validator gets only well-formed tokens.
	if g.dispatch == nil && !b64token.Valid(token) {
		return nil, errSyntax
	}
	p, err := g.validator.ValidateToken(ctx, token)
	if err != nil {
		return nil, toError(err)
	}
	if p == nil {
		return nil, errInvalid.withCause(errors.New("validator returned no principal"))
	}
	p.Kind = g.classify(p)
	p.guard = g
	if g.verified != nil && p.Method == MethodJWT {
		g.verified.put(token, p, p.Expiry.Add(g.leeway), g.now())
	}
	return p, nil
}

// toError maps a validator's error to the response it deserves.
func toError(err error) *Error {
	var e *Error
	if errors.As(err, &e) && e != nil {
		return e.normalized()
	}
	var unavailable *jwks.UnavailableError
	var introUnavailable *introspect.UnavailableError
	switch {
	case errors.As(err, &introUnavailable):
		return &Error{Status: http.StatusServiceUnavailable, Reason: "introspection_unavailable",
			Description: "The issuer cannot confirm the access token now; try again later",
			RetryAfter:  max(introUnavailable.RetryAfter, time.Second), Err: err}
	case errors.As(err, &unavailable):
		return &Error{Status: http.StatusServiceUnavailable, Reason: "keys_unavailable",
			Description: "The issuer's keys cannot be obtained; try again later",
			RetryAfter:  max(unavailable.RetryAfter, time.Second), Err: err}
	case errors.Is(err, jwks.ErrKeysUnavailable):
		return &Error{Status: http.StatusServiceUnavailable, Reason: "keys_unavailable",
			Description: "The issuer's keys cannot be obtained; try again later", RetryAfter: 10 * time.Second, Err: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &Error{Status: http.StatusServiceUnavailable, Reason: "validation_aborted",
			Description: "Validation did not complete; try again", RetryAfter: time.Second, Err: err}
	}
	for _, m := range jwtRefusals {
		if errors.Is(err, m.err) {
			return m.resp.withCause(err)
		}
	}
	return errInvalid.withCause(err)
}

var jwtRefusals = []struct {
	err  error
	resp *Error
}{
	{jwks.ErrMalformed, errSyntax},
	{jwks.ErrAlgorithm, errorf(http.StatusUnauthorized, CodeInvalidToken, "algorithm_rejected", "The access token's signing algorithm is not accepted")},
	{jwks.ErrUnknownKey, errorf(http.StatusUnauthorized, CodeInvalidToken, "key_unknown", "The access token is signed by an unknown key")},
	{jwks.ErrSignature, errorf(http.StatusUnauthorized, CodeInvalidToken, "signature_invalid", "The access token's signature is invalid")},
	{jwks.ErrType, errorf(http.StatusUnauthorized, CodeInvalidToken, "type_rejected", "The token is not a JWT access token")},
	{jwks.ErrIssuer, errorf(http.StatusUnauthorized, CodeInvalidToken, "issuer_mismatch", "The access token is not from a trusted issuer")},
	{jwks.ErrAudience, errorf(http.StatusUnauthorized, CodeInvalidToken, "audience_mismatch", "The access token is not meant for this API")},
	{jwks.ErrExpired, errorf(http.StatusUnauthorized, CodeInvalidToken, "token_expired", "The access token expired")},
	{jwks.ErrNotYetValid, errorf(http.StatusUnauthorized, CodeInvalidToken, "token_not_yet_valid", "The access token is not valid yet")},
	{jwks.ErrClaims, errorf(http.StatusUnauthorized, CodeInvalidToken, "claims_invalid", "The access token's claims are invalid")},
	{introspect.ErrMalformed, errSyntax},
	{introspect.ErrInactive, errorf(http.StatusUnauthorized, CodeInvalidToken, "token_inactive", "The access token is not active")},
	{introspect.ErrExpired, errorf(http.StatusUnauthorized, CodeInvalidToken, "token_expired", "The access token expired")},
	{introspect.ErrNotYetValid, errorf(http.StatusUnauthorized, CodeInvalidToken, "token_not_yet_valid", "The access token is not valid yet")},
	{introspect.ErrIssuer, errorf(http.StatusUnauthorized, CodeInvalidToken, "issuer_mismatch", "The access token is not from a trusted issuer")},
	{introspect.ErrAudience, errorf(http.StatusUnauthorized, CodeInvalidToken, "audience_mismatch", "The access token is not meant for this API")},
	{introspect.ErrTokenUse, errorf(http.StatusUnauthorized, CodeInvalidToken, "token_use_rejected", "The token is not an access token")},
	{introspect.ErrClaims, errorf(http.StatusUnauthorized, CodeInvalidToken, "claims_invalid", "The access token's claims are invalid")},
}

// ValidatorFunc adapts a function to TokenValidator.
type ValidatorFunc func(ctx context.Context, token string) (*Principal, error)

// ValidateToken calls f.
func (f ValidatorFunc) ValidateToken(ctx context.Context, token string) (*Principal, error) {
	return f(ctx, token)
}
