package grpcguard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/middleware/dpop"
	"github.com/olympus/aegis/scopes"
)

// Config configures a Guard. Say how tokens are validated with Issuer and
// Audience (JWT access tokens of one issuer), Validator (any composition
// of core validators), or Checker (one shared with a middleware.Guard);
// and what each method requires with Methods, Public and AllowUnlisted.
type Config struct {
	// Issuer is the exact iss of accepted JWTs, whose keys are discovered
	// from it. With Audience it is shorthand for
	//
	//	core.Cached(core.NewJWT(core.JWTConfig{Issuer: Issuer, Audience: Audience}), core.CacheConfig{})
	//
	// Set Issuer and Audience, Validator, or Checker.
	Issuer string
	// Audience must be among each token's aud values (RFC 9068 §4);
	// required with Issuer.
	Audience string
	// AllowInsecureHTTP lets the shorthand's Issuer (and the key set it
	// names) be http:// on a host other than loopback. Tokens and keys then
	// cross the network unprotected: avoid it.
	AllowInsecureHTTP bool
	// Validator validates tokens: any composition of core.NewJWT,
	// core.NewIntrospection, core.Hybrid, core.ByIssuer and core.Cached, or
	// a validator of your own.
	Validator core.Validator
	// MaxTokenLength bounds a token before any validator sees it; default
	// aegis.DefaultMaxTokenLength (8 KiB).
	MaxTokenLength int
	// Classifier decides each Principal's Kind; default
	// core.DefaultClassifier.
	Classifier core.Classifier
	// RateLimit charges every admitted call to its client; nil means no
	// limits. Give several replicas one shared Store (the nested module
	// ratelimit/redisstore) so that the limit holds across them.
	RateLimit *core.RateLimitConfig
	// Observer receives decisions and dependency events, for metrics and
	// traces (the nested modules prommetrics and otelmetrics); nil
	// observes nothing.
	Observer core.Observer
	// Logger receives every decision (see core.Config.Logger); default
	// slog.Default(). Tokens are never logged.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// DPoP configures sender-constrained tokens (see core.DPoPConfig): the
	// default DPoP policy (dpop.Allow unless set), the proof Verifier (its
	// algorithms, replay store and nonces) and whether a proof beside a
	// Bearer token is refused. Certificate-bound tokens (RFC 8705) are
	// checked against the client's TLS certificate whatever it says.
	DPoP core.DPoPConfig

	// Checker, when set, decides instead of a Checker built from the
	// fields above (which must then be left unset, DPoP included): pass a
	// middleware.Guard's Checker() so that HTTP and gRPC calls share one
	// verified-token cache, one rate limit, one Observer and one log.
	Checker *core.Checker

	// Methods maps full method names ("/pkg.Service/Method") to the scope
	// requirements a call's token must all grant (scopes.All, scopes.Any);
	// none means any valid token. A key "/pkg.Service/*" covers every
	// method of the service that is not listed by its own name.
	Methods map[string][]scopes.Requirement
	// Public lists the full method names ("/pkg.Service/Method") or
	// services ("/pkg.Service/*") that need no token: the interceptors let
	// their calls through without looking at the authorization metadata,
	// and put no Principal in the context. A method named in both Methods
	// and Public is a configuration error.
	Public []string
	// AllowUnlisted admits a call to a method that Methods and Public do
	// not cover when its token is valid, as if it were listed with no
	// requirement. By default such a call is refused with PermissionDenied
	// before its token is validated, so that a method added to the server
	// is closed until its requirements are declared.
	AllowUnlisted bool
	// DPoPMethods sets the DPoP policy (dpop.Allow, dpop.Require or
	// dpop.Off) of methods or services that Methods lists, by the same
	// keys; the others follow the Checker's default (Config.DPoP.Policy,
	// or the shared Checker's).
	DPoPMethods map[string]dpop.Policy
	// BaseURI is the URL clients address, "https://api.example.com" or
	// "https://api.example.com:8443": a scheme (http or https) and a
	// host, with no path other than "/", no query and no fragment. A DPoP
	// proof's htu must be BaseURI followed by the full method name, e.g.
	// "https://api.example.com/pkg.Service/Method" (RFC 9449 §4.3). Unset,
	// it is taken from each call: https when the server's transport is TLS,
	// http otherwise, and the call's :authority. Set it when a proxy or
	// load balancer stands between clients and the server, or when the
	// :authority clients send is not the one they sign; a client chooses
	// its :authority, so BaseURI is also the stricter choice.
	BaseURI string
	// Realm is the realm of the www-authenticate challenges; default "api".
	Realm string
}

// Guard holds a pair of gRPC server interceptors, Unary and Stream, that
// admit calls bearing a valid access token and the scopes their method
// needs: an adapter that takes the token from the call's metadata, asks a
// core.Checker and renders its verdict as a gRPC status. It is safe for
// concurrent use.
type Guard struct {
	checker       *core.Checker
	methods       map[string]*rule // by full method name
	services      map[string]*rule // by "/pkg.Service/"
	allowUnlisted bool
	unlisted      *rule // the rule of unlisted methods under AllowUnlisted
	realm         string
	// base is Config.BaseURI parsed; nil derives each call's from the call.
	base       *url.URL
	challenges middleware.Challenges
}

// rule is what one method, or every method of a service, requires.
type rule struct {
	public bool
	reqs   []scopes.Requirement
	// url names the method in decision logs; nil for a service's rule
	// (each call then names its own method).
	url *url.URL
	// htu is the method's absolute URL under Config.BaseURI, a DPoP
	// proof's htu; nil for a service's rule or without BaseURI.
	htu *url.URL
	// dpop is the DPoP policy of the rule's methods; dpop.PolicyDefault
	// means the Checker's.
	dpop dpop.Policy
}

// ErrConfig is matched (errors.Is) by every error New returns.
var ErrConfig = errors.New("aegis: invalid grpcguard.Config")

// New checks cfg and returns a Guard. It makes no network request: keys
// are fetched on first use. Every problem with cfg is reported at once,
// naming its field; the error matches ErrConfig.
func New(cfg Config) (*Guard, error) {
	errs := checkNames(cfg)
	base, err := parseBaseURI(cfg.BaseURI)
	if err != nil {
		errs = append(errs, err)
	}
	checker, err := checkerOf(cfg)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(append([]error{ErrConfig}, errs...)...)
	}
	g := &Guard{
		checker:       checker,
		methods:       make(map[string]*rule, len(cfg.Methods)+len(cfg.Public)),
		services:      make(map[string]*rule),
		allowUnlisted: cfg.AllowUnlisted,
		unlisted:      &rule{},
		realm:         cfg.Realm,
		base:          base,
	}
	if g.realm == "" {
		g.realm = "api"
	}
	g.challenges = middleware.NewChallenges(g.realm, "", checker.DPoPVerifier().Algorithms())
	add := func(name string, r *rule) {
		if service, ok := strings.CutSuffix(name, "/*"); ok {
			g.services[service+"/"] = r
			return
		}
		r.url = &url.URL{Path: name}
		if base != nil {
			r.htu = htuOf(base, name)
		}
		g.methods[name] = r
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Methods)) {
		add(name, &rule{reqs: slices.Clone(cfg.Methods[name]), dpop: cfg.DPoPMethods[name]})
	}
	for _, name := range cfg.Public {
		add(name, &rule{public: true})
	}
	return g, nil
}

// checkNames reports every malformed or contradictory method name of cfg.
func checkNames(cfg Config) []error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(cfg.Methods)) {
		if !validName(name) {
			errs = append(errs, fmt.Errorf("Config.Methods: %q is not a full method name (\"/pkg.Service/Method\") nor a service (\"/pkg.Service/*\")", name))
		}
		if slices.ContainsFunc(cfg.Methods[name], scopes.Requirement.IsZero) {
			errs = append(errs, fmt.Errorf("Config.Methods[%q] holds a zero scopes.Requirement, which no token grants: build each with scopes.All or scopes.Any", name))
		}
	}
	seen := make(map[string]bool, len(cfg.Public))
	for _, name := range cfg.Public {
		switch {
		case !validName(name):
			errs = append(errs, fmt.Errorf("Config.Public: %q is not a full method name (\"/pkg.Service/Method\") nor a service (\"/pkg.Service/*\")", name))
		case seen[name]:
			errs = append(errs, fmt.Errorf("Config.Public lists %q twice", name))
		case hasKey(cfg.Methods, name):
			errs = append(errs, fmt.Errorf("%q is in both Config.Methods and Config.Public", name))
		}
		seen[name] = true
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.DPoPMethods)) {
		if !hasKey(cfg.Methods, name) {
			errs = append(errs, fmt.Errorf("Config.DPoPMethods: %q is not a key of Config.Methods", name))
		}
		if _, err := dpop.ParsePolicy(string(cfg.DPoPMethods[name])); err != nil {
			errs = append(errs, fmt.Errorf("Config.DPoPMethods[%q]: %q is not dpop.Allow, dpop.Require or dpop.Off", name, cfg.DPoPMethods[name]))
		}
	}
	return errs
}

func hasKey(m map[string][]scopes.Requirement, k string) bool {
	_, ok := m[k]
	return ok
}

// validName reports whether name is "/service/method" or "/service/*",
// with no other slash.
func validName(name string) bool {
	rest, ok := strings.CutPrefix(name, "/")
	if !ok {
		return false
	}
	service, method, ok := strings.Cut(rest, "/")
	return ok && service != "" && method != "" && !strings.Contains(method, "/") &&
		strings.TrimSpace(name) == name
}

// checkerOf returns the Checker cfg names or configures.
func checkerOf(cfg Config) (*core.Checker, error) {
	own := cfg.Issuer != "" || cfg.Audience != "" || cfg.AllowInsecureHTTP || cfg.Validator != nil ||
		cfg.MaxTokenLength != 0 || cfg.Classifier != nil || cfg.RateLimit != nil || cfg.Observer != nil ||
		cfg.Logger != nil || cfg.Now != nil || cfg.DPoP != (core.DPoPConfig{})
	if cfg.Checker != nil {
		if own {
			return nil, errors.New("Config.Checker decides alone: leave Issuer, Audience, AllowInsecureHTTP, Validator, MaxTokenLength, Classifier, RateLimit, Observer, Logger, Now and DPoP unset (configure its own Guard or core.Config)")
		}
		return cfg.Checker, nil
	}
	v := cfg.Validator
	switch {
	case v != nil && (cfg.Issuer != "" || cfg.Audience != "" || cfg.AllowInsecureHTTP):
		return nil, errors.New("Config.Issuer, Audience and AllowInsecureHTTP are shorthand for a Validator: set them or Config.Validator, not both")
	case v == nil:
		var errs []error
		if cfg.Issuer == "" {
			errs = append(errs, errors.New("Config.Issuer is required (or set Config.Validator or Config.Checker)"))
		}
		if cfg.Audience == "" {
			errs = append(errs, errors.New("Config.Audience is required (for any audience, compose core.NewJWT with AnyAudience)"))
		}
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
		jwt, err := core.NewJWT(core.JWTConfig{Issuer: cfg.Issuer, Audience: cfg.Audience, MaxTokenLength: cfg.MaxTokenLength,
			JWKS: jwks.Config{Logger: cfg.Logger, AllowInsecureHTTP: cfg.AllowInsecureHTTP}, Now: cfg.Now})
		if err != nil {
			return nil, err
		}
		v = core.Cached(jwt, core.CacheConfig{Now: cfg.Now})
	}
	return core.New(core.Config{
		Validator:      v,
		MaxTokenLength: cfg.MaxTokenLength,
		Classifier:     cfg.Classifier,
		RateLimit:      cfg.RateLimit,
		DPoP:           cfg.DPoP,
		Observer:       cfg.Observer,
		Logger:         cfg.Logger,
		Now:            cfg.Now,
	})
}

// Checker returns the core.Checker behind the Guard.
func (g *Guard) Checker() *core.Checker { return g.checker }

// Unary returns the unary server interceptor:
//
//	grpc.NewServer(grpc.ChainUnaryInterceptor(guard.Unary()), grpc.ChainStreamInterceptor(guard.Stream()))
//
// An admitted call reaches handler with its Principal in the context; a
// refused one gets a status error (see the package documentation), whose
// chain holds the *aegis.Refusal for interceptors outside this one.
func (g *Guard) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := g.decide(ctx, info.FullMethod, nil)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// Stream returns the stream server interceptor, which decides when the
// stream opens, before the handler runs; see Unary.
func (g *Guard) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := g.decide(ss.Context(), info.FullMethod, ss)
		if err != nil {
			return err
		}
		if ctx == ss.Context() {
			return handler(srv, ss)
		}
		return handler(srv, &admittedStream{ServerStream: ss, ctx: ctx})
	}
}

// admittedStream is a stream whose context carries its Principal.
type admittedStream struct {
	grpc.ServerStream
	ctx context.Context
}

// Context returns the stream's context, with the Principal.
func (s *admittedStream) Context() context.Context { return s.ctx }

// decide finds the rule of method, takes the call's credential, has the
// Checker decide and renders the verdict: the rate-limit header metadata,
// then either a status error (with the challenges and the DPoP nonce in
// the trailer) or the context carrying the Principal (with the DPoP nonce
// in the header metadata). ss is the call's stream,
// nil for a unary call.
func (g *Guard) decide(ctx context.Context, method string, ss grpc.ServerStream) (context.Context, error) {
	r := g.ruleOf(method)
	if r != nil && r.public {
		return ctx, nil
	}
	cred := core.Credential{Method: http.MethodPost}
	if r != nil && r.url != nil {
		cred.URL = r.url
	} else {
		cred.URL = &url.URL{Path: method}
	}
	if r == nil && !g.allowUnlisted {
		return ctx, g.refuse(ctx, ss, cred, g.checker.Refuse(ctx, cred, errUnlisted))
	}
	if r == nil {
		r = g.unlisted
	}
	cred.DPoP = r.dpop
	token, scheme, ref := accessToken(ctx)
	cred.Scheme = scheme
	if ref == nil {
		cred.Proof, ref = proof(ctx)
	}
	if ref != nil {
		return ctx, g.refuse(ctx, ss, cred, g.checker.Refuse(ctx, cred, ref))
	}
	cred.Token = token
	var overTLS bool
	cred.PeerCertificate, overTLS = peerCertificate(ctx)
	if cred.Scheme == core.SchemeDPoP && cred.Proof != "" {
		cred.URL = g.htu(ctx, method, r, overTLS)
	}
	v := g.checker.Check(ctx, cred, r.reqs...)
	var md metadata.MD
	if v.RateLimit != nil {
		md = rateLimitMetadata(*v.RateLimit)
	}
	if v.Refusal == nil { // a refusal's nonce goes in the trailer, beside its challenges
		if n := g.nonce(cred, nil); n != "" {
			if md == nil {
				md = metadata.MD{}
			}
			md[nonceKey] = []string{n}
		}
	}
	if md != nil {
		if ss != nil {
			_ = ss.SetHeader(md)
		} else {
			_ = grpc.SetHeader(ctx, md)
		}
	}
	if v.Refusal != nil {
		return ctx, g.refuse(ctx, ss, cred, v.Refusal)
	}
	return core.WithPrincipal(ctx, v.Principal), nil
}

// ruleOf returns the rule of a full method name, its service's, or nil.
func (g *Guard) ruleOf(method string) *rule {
	if r, ok := g.methods[method]; ok {
		return r
	}
	if len(g.services) > 0 {
		if i := strings.LastIndexByte(method, '/'); i > 0 {
			if r, ok := g.services[method[:i+1]]; ok {
				return r
			}
		}
	}
	return nil
}

// refuse sends the refusal's challenges (and, for DPoP, the current
// nonce) in the trailer of the call (of ss, when not nil) and returns its
// status error. cred is the call's credential, whose scheme and policy
// choose the challenges.
func (g *Guard) refuse(ctx context.Context, ss grpc.ServerStream, cred core.Credential, r *aegis.Refusal) error {
	md := metadata.MD{}
	if c := g.challengesOf(cred, r); c != nil {
		md[challengeKey] = c
	}
	if n := g.nonce(cred, r); n != "" {
		md[nonceKey] = []string{n}
	}
	if len(md) > 0 {
		if ss != nil {
			ss.SetTrailer(md)
		} else {
			_ = grpc.SetTrailer(ctx, md)
		}
	}
	return errorOf(r)
}

// errUnlisted refuses a call to a method no rule covers.
var errUnlisted = func() *aegis.Refusal {
	r := aegis.Refuse(aegis.ReasonInsufficientScope, nil)
	r.Description = "No access token grants this method"
	return r
}()
