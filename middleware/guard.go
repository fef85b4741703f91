package middleware

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/internal/issuerhttp"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/middleware/dpop"
	"github.com/olympus/aegis/middleware/resource"
	"github.com/olympus/aegis/scopes"
)

// Config configures a Guard. For JWT access tokens from one issuer, Issuer
// and Audience are all that is required; for anything else, compose a
// core.Validator and set Validator instead.
type Config struct {
	// Issuer is the exact iss of accepted JWTs, whose keys are discovered
	// from it. With Audience it is shorthand for
	//
	//	core.Cached(core.NewJWT(core.JWTConfig{Issuer: Issuer, Audience: Audience}), core.CacheConfig{})
	//
	// Set either Issuer or Validator.
	Issuer string
	// Audience must be among each token's aud values (RFC 9068 §4);
	// required with Issuer, unless Resource stands in for it.
	Audience string
	// Resource is this API's resource identifier (RFC 8707, RFC 9728):
	// an https URL (http on loopback). When set, every 400, 401 and 403
	// challenge carries resource_metadata with the URL of the resource's
	// metadata (resource.WellKnownURL; serve the document there with
	// resource.Handler), and the Issuer shorthand's Audience defaults to
	// it.
	Resource string
	// AllowInsecureHTTP lets the shorthand's Issuer (and the key set it
	// names) be http:// on a host other than loopback, for a plain-HTTP
	// issuer inside a private network (a container's "http://hydra:4444").
	// Tokens and keys then cross the network unprotected: avoid it.
	AllowInsecureHTTP bool
	// Validator validates tokens: any composition of core.NewJWT,
	// core.NewIntrospection, core.Hybrid, core.ByIssuer and core.Cached, or
	// a validator of your own.
	Validator core.Validator
	// Introspection confirms JWTs on RequireIntrospection routes when
	// Validator holds no introspection for their issuer (a JWT-only
	// Validator, the quick start's included).
	Introspection *core.Introspection

	// RateLimit charges every admitted request to its client; nil means
	// no limits.
	RateLimit *RateLimitConfig
	// Bearer configures where tokens are taken from.
	Bearer BearerConfig
	// DPoP configures DPoP-bound tokens (RFC 9449): the default policy
	// (dpop.Allow unless set; WithDPoP sets a route's) and the proof
	// Verifier. Certificate-bound tokens (RFC 8705) are checked against the
	// TLS client certificate: the TLS peer's when the Guard's server
	// terminates TLS, or the one a trusted proxy names in
	// Proxy.ClientCertHeader.
	DPoP DPoPConfig
	// Proxy says what a trusted reverse proxy tells the Guard: the URL
	// clients address (DPoP proofs' htu) and the client certificate
	// (certificate-bound tokens) when the proxy terminates TLS. Its
	// headers are never believed unless configured.
	Proxy ProxyConfig
	// Realm is the realm of WWW-Authenticate challenges; default "api".
	Realm string
	// Classifier decides each Principal's Kind; default DefaultClassifier.
	Classifier Classifier
	// ErrorWriter writes refusals; default WriteProblem.
	ErrorWriter ErrorWriter
	// Logger receives every decision (see core.Config.Logger); default
	// slog.Default(). Tokens are never logged.
	Logger *slog.Logger
	// Observer receives decisions and dependency events, for metrics and
	// traces (the nested modules prommetrics and otelmetrics); nil observes
	// nothing.
	Observer core.Observer
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// RateLimitConfig charges every admitted request to its client's
// per-minute limit; see core.RateLimitConfig.
type RateLimitConfig = core.RateLimitConfig

// Guard is HTTP middleware that admits requests bearing a valid access
// token and the scopes a route needs: an adapter that takes the token from
// the request, asks a core.Checker, and renders its verdict. It is safe for
// concurrent use.
type Guard struct {
	checker    *core.Checker
	bearer     BearerConfig
	realm      string
	writeError ErrorWriter
	// metadataURL is Config.Resource's metadata URL, for challenges.
	metadataURL string
	// dpopPolicy is the routes' own DPoP policy (WithDPoP); empty means
	// the Checker's.
	dpopPolicy dpop.Policy
	proxy      ProxyConfig
	challenges Challenges
	logger     *slog.Logger
}

// New checks cfg and returns a Guard. It makes no network request: keys
// are fetched on first use. Every problem with cfg is reported at once.
func New(cfg Config) (*Guard, error) {
	var errs []error
	v := cfg.Validator
	var metadataURL string
	if cfg.Resource != "" {
		u, err := resource.WellKnownURL(cfg.Resource)
		if err != nil {
			errs = append(errs, fmt.Errorf("Config.Resource: %w", err))
		}
		metadataURL = u
		if cfg.Validator == nil && cfg.Audience == "" {
			cfg.Audience = cfg.Resource // RFC 8707: tokens for this resource name it in aud
		}
	}
	switch {
	case cfg.Validator != nil && (cfg.Issuer != "" || cfg.Audience != "" || cfg.AllowInsecureHTTP):
		// Resource alone is not shorthand: it only names the resource.
		errs = append(errs, errors.New("Config.Issuer, Audience and AllowInsecureHTTP are shorthand for a Validator: set them or Config.Validator, not both"))
	case cfg.Validator == nil:
		var issErrs []error
		if cfg.Issuer == "" {
			issErrs = append(issErrs, errors.New("Config.Issuer is required (or set Config.Validator)"))
		}
		if cfg.Audience == "" {
			issErrs = append(issErrs, errors.New("Config.Audience is required (for any audience, compose core.NewJWT with AnyAudience)"))
		}
		if len(issErrs) > 0 {
			errs = append(errs, issErrs...)
			break
		}
		if !cfg.AllowInsecureHTTP && errors.Is(issuerhttp.CheckURL(cfg.Issuer, false), issuerhttp.ErrInsecureHTTP) {
			errs = append(errs, fmt.Errorf("Config.Issuer %q uses http on a host other than loopback: set Config.AllowInsecureHTTP to permit it", issuerhttp.Redact(cfg.Issuer)))
			break
		}
		jwt, err := core.NewJWT(core.JWTConfig{Issuer: cfg.Issuer, Audience: cfg.Audience, MaxTokenLength: cfg.Bearer.MaxLength,
			JWKS: jwks.Config{Logger: cfg.Logger, AllowInsecureHTTP: cfg.AllowInsecureHTTP}, Now: cfg.Now})
		if err != nil {
			errs = append(errs, err)
			break
		}
		v = core.Cached(jwt, core.CacheConfig{Now: cfg.Now})
	}
	if cfg.Bearer.MaxLength < 0 {
		errs = append(errs, errors.New("Config.Bearer.MaxLength must not be negative"))
	}
	if cfg.Bearer.MaxFormBytes < 0 {
		errs = append(errs, errors.New("Config.Bearer.MaxFormBytes must not be negative"))
	}
	errs = append(errs, cfg.Proxy.problems()...)
	if len(errs) > 0 {
		return nil, errors.Join(append([]error{errConfig}, errs...)...)
	}
	bearer := cfg.Bearer.withDefaults()
	checker, err := core.New(core.Config{
		Validator:      v,
		Introspection:  cfg.Introspection,
		MaxTokenLength: bearer.MaxLength,
		Classifier:     cfg.Classifier,
		RateLimit:      cfg.RateLimit,
		DPoP:           cfg.DPoP,
		Observer:       cfg.Observer,
		Logger:         cfg.Logger,
		Now:            cfg.Now,
	})
	if err != nil {
		return nil, errors.Join(errConfig, err)
	}
	g := &Guard{checker: checker, bearer: bearer, realm: cfg.Realm, writeError: cfg.ErrorWriter, metadataURL: metadataURL,
		proxy: cfg.Proxy, logger: cfg.Logger}
	if g.logger == nil {
		g.logger = slog.Default()
	}
	if g.realm == "" {
		g.realm = "api"
	}
	if g.writeError == nil {
		g.writeError = WriteProblem
	}
	g.challenges = NewChallenges(g.realm, g.metadataURL, checker.DPoPVerifier().Algorithms())
	return g, nil
}

var errConfig = errors.New("aegis: invalid middleware.Config")

// Checker returns the core.Checker behind the Guard, for other transports
// that must decide exactly as it does.
func (g *Guard) Checker() *core.Checker { return g.checker }

// Validate validates a bearer token outside HTTP (WebSocket messages, say).
// The Principal is classified as for a request; no scope or rate limit is
// checked. A refusal is an *aegis.Refusal.
func (g *Guard) Validate(ctx context.Context, token string) (*Principal, error) {
	return g.checker.Validate(ctx, token)
}

// Authenticate is middleware that admits requests with a valid token and
// puts their Principal in the request context. It checks no scope.
func (g *Guard) Authenticate(next http.Handler) http.Handler {
	return g.Require()(next)
}

// Require is middleware that admits requests whose token grants every
// requirement given (none: any valid token). It authenticates the request
// itself unless an earlier middleware of the same Guard already did, so it
// works alone or after Authenticate:
//
//	r.With(guard.Require(scopes.All("data:read"))).Get("/data", list)
func (g *Guard) Require(reqs ...scopes.Requirement) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Only a Principal this Guard admitted counts: another Guard
			// may trust other issuers or audiences.
			if p, ok := PrincipalFrom(r.Context()); ok && p.AdmittedBy(g.checker) {
				if ref := g.reauthorize(r, p, reqs); ref != nil {
					g.render(w, r, ref)
					return
				}
				next.ServeHTTP(w, r)
				return
			}
			g.decide(w, r, next, func(cred core.Credential) core.Verdict {
				return g.checker.Check(r.Context(), cred, reqs...)
			})
		})
	}
}

// RequireUserAuthentication is middleware for routes that need a recent or
// strong user authentication (RFC 9470 step-up): the token's acr must be
// one of s.ACRValues and its auth_time no older than s.MaxAge (see
// core.StepUp for where they are read, and what an M2M token gets). A
// token that falls short gets 401 with error="insufficient_user_authentication"
// and the requirements (acr_values, max_age) in the challenge, so the client
// can ask the authorization server for a new one. It authenticates the
// request itself unless an earlier middleware of the same Guard did:
//
//	r.With(guard.Require(scopes.All("data:read")), guard.RequireUserAuthentication(core.StepUp{ACRValues: []string{"mfa"}, MaxAge: 5 * time.Minute})).Get("/admin", admin)
func (g *Guard) RequireUserAuthentication(s core.StepUp) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		stepUp := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, _ := PrincipalFrom(r.Context())
			if ref := g.checker.StepUp(r.Context(), credential(r), p, s); ref != nil {
				g.render(w, r, ref)
				return
			}
			next.ServeHTTP(w, r)
		})
		return g.Authenticate(stepUp)
	}
}

// RequireIntrospection is middleware for revocation-sensitive routes: the
// token must be confirmed active by the issuer's introspection endpoint
// even when it is a valid JWT (the answer is cached as the introspection
// validator's introspect.CacheConfig says). It authenticates the request
// itself when needed. It panics at route setup when the Guard's Validator
// holds no core.NewIntrospection validator and Config.Introspection is nil.
//
//	r.With(guard.RequireIntrospection()).Delete("/account", closeAccount)
func (g *Guard) RequireIntrospection() func(http.Handler) http.Handler {
	if !g.checker.CanConfirm() {
		panic("aegis: RequireIntrospection needs introspection: compose a core.NewIntrospection validator into Config.Validator, or set Config.Introspection")
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			prev, ok := PrincipalFrom(r.Context())
			if ok && prev.AdmittedBy(g.checker) && prev.Method == MethodIntrospection {
				// Introspected already: only this route's DPoP policy,
				// which may be stricter, is left to check.
				if ref := g.reauthorize(r, prev, nil); ref != nil {
					g.render(w, r, ref)
					return
				}
				next.ServeHTTP(w, r)
				return
			}
			g.decide(w, r, next, func(cred core.Credential) core.Verdict {
				return g.checker.Confirm(r.Context(), cred, prev)
			})
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

// decide takes r's token, has check decide on it, and renders the
// verdict: the rate-limit headers, then the refusal or next with the
// Principal in the context.
func (g *Guard) decide(w http.ResponseWriter, r *http.Request, next http.Handler, check func(core.Credential) core.Verdict) {
	cred, bad := g.credential(r)
	token, ref := g.extract(w, r)
	if ref == nil {
		ref = bad
	}
	if ref != nil {
		g.render(w, r, g.checker.Refuse(r.Context(), cred, ref))
		return
	}
	cred.Token = token
	v := check(cred)
	g.setNonce(w, cred, v.Refusal)
	if v.RateLimit != nil {
		setRateLimitHeaders(w.Header(), *v.RateLimit)
	}
	if v.Refusal != nil {
		g.render(w, r, v.Refusal)
		return
	}
	next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), v.Principal)))
}

// credential is the binding evidence of r, without its token.
func credential(r *http.Request) core.Credential {
	return core.Credential{Method: r.Method, URL: r.URL}
}

// render writes the refusal's HTTP answer.
func (g *Guard) render(w http.ResponseWriter, r *http.Request, ref *aegis.Refusal) {
	e := ErrorFor(ref)
	e.ResourceMetadata = g.metadataURL
	g.setChallenges(w, r, e)
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", formatSeconds(e.RetryAfter))
	}
	g.writeError(w, r, e)
}
