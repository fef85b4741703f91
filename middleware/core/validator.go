package core

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/internal/b64token"
	"github.com/olympus/aegis/internal/issuerhttp"
	"github.com/olympus/aegis/internal/logthrottle"
	"github.com/olympus/aegis/internal/refusal"
	"github.com/olympus/aegis/internal/strictjson"
	"github.com/olympus/aegis/introspect"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/scopes"
)

// Validator turns an access token into a Principal, or refuses it. Its
// errors decide the verdict: an *aegis.Refusal is used as is (a custom
// validator may return one to choose its reason and class); any other error
// is a refusal with aegis.ReasonTokenInvalid, or ReasonValidationAborted
// when the context ended.
//
// A Checker gives every validator the same treatment: tokens longer than
// its MaxTokenLength are refused before any validator runs, and a validator
// not built by this package only sees tokens of RFC 6750's b64token syntax
// (the built-in ones check stricter syntax themselves).
type Validator interface {
	Validate(ctx context.Context, token string) (*Principal, error)
}

// ValidatorFunc adapts a function to Validator.
type ValidatorFunc func(ctx context.Context, token string) (*Principal, error)

// Validate calls f.
func (f ValidatorFunc) Validate(ctx context.Context, token string) (*Principal, error) {
	return f(ctx, token)
}

// builtIn is implemented by this package's validators: they check the
// token's syntax themselves, strictly, and can be handed a token parsed
// once by a combinator.
type builtIn interface {
	Validator
	// validateParsed validates a JWT already parsed by a combinator.
	validateParsed(ctx context.Context, t *jwks.Token, token string) (*Principal, error)
	// attach gives the validator the Checker's observer.
	attach(o *observers)
	// introspection returns an introspection validator for a JWT of iss
	// (or any opaque token when iss is empty), or nil.
	introspection(iss string) *Introspection
	// problems lists what is wrong with the composition, naming each
	// part by its path from the Config field.
	problems(path string) []error
}

// problemsOf lists what is wrong with v, found at path.
func problemsOf(v Validator, path string) []error {
	if v == nil {
		return []error{fmt.Errorf("%s is nil", path)}
	}
	if b, ok := v.(builtIn); ok {
		return b.problems(path)
	}
	return nil
}

// observers forwards a validator's dependency events to the Checker that
// uses it; until one does, events go nowhere.
type observers struct {
	o atomic.Pointer[observerHolder]
}

type observerHolder struct{ Observer }

func (f *observers) get() Observer {
	if h := f.o.Load(); h != nil {
		return h.Observer
	}
	return nil
}

// JWTConfig configures a JWT validator for one issuer.
type JWTConfig struct {
	// Issuer is the exact iss of accepted tokens, and where keys are
	// discovered unless JWKS.URL is set. Required.
	Issuer string
	// Audience must be among each token's aud values (RFC 9068 §4).
	// Required unless AnyAudience.
	Audience string
	// AnyAudience accepts tokens whatever their audience. Avoid it: a token
	// meant for another API would be accepted here.
	AnyAudience bool
	// CanonicalAudience compares URL audiences in canonical form: letter
	// case in scheme and host, and one trailing slash, do not matter (see
	// jwks.ValidatorConfig.CanonicalAudience). Off by default.
	CanonicalAudience bool
	// Keys supplies the verification keys, for example a fixed *jwks.Set;
	// default a *jwks.Remote configured by JWKS. Cached keeps this
	// validator's tokens only when Keys can tell whether it still holds the
	// very key that verified one: a method Holds(jwks.Key, time.Time) bool,
	// as *jwks.Set and *jwks.Remote have.
	Keys jwks.KeySource
	// JWKS configures the remote key set when Keys is nil. Its Issuer and
	// Now default to the fields of the same name here.
	JWKS jwks.Config
	// Algorithms is the allowlist of signature algorithms; default
	// jwks.DefaultAlgorithms() (asymmetric only).
	Algorithms []string
	// Leeway is the clock skew tolerated on exp, nbf and iat; zero means
	// aegis.DefaultLeeway (30 s), negative means none.
	Leeway time.Duration
	// RequireJWTAccessTokenType demands typ "at+jwt" (RFC 9068). Off by
	// default: Ory Hydra sends "JWT".
	RequireJWTAccessTokenType bool
	// MaxLifetime, when positive, refuses tokens that live longer: exp
	// more than MaxLifetime after iat (after now, plus the leeway, without
	// iat); see jwks.ValidatorConfig.MaxLifetime. Zero (the default) is off.
	MaxLifetime time.Duration
	// MaxTokenLength bounds the token before any decoding; zero means
	// aegis.DefaultMaxTokenLength.
	MaxTokenLength int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// JWT validates JWT access tokens of one issuer locally (package jwks).
type JWT struct {
	leeway    time.Duration
	v         *jwks.Validator
	keys      keyPresence // nil when the key source cannot tell
	maxLength int
	obs       observers
}

// keyPresence is implemented by key sets that can tell whether the very
// key that verified a token is still published (*jwks.Remote, *jwks.Set).
type keyPresence interface {
	Holds(k jwks.Key, now time.Time) bool
}

// NewJWT checks cfg and returns a JWT validator. It makes no network
// request: keys are fetched on first use.
func NewJWT(cfg JWTConfig) (*JWT, error) {
	var errs []error
	if cfg.Issuer == "" {
		errs = append(errs, errors.New("JWTConfig.Issuer is required"))
	}
	if cfg.Audience == "" && !cfg.AnyAudience {
		errs = append(errs, errors.New("JWTConfig.Audience is required (or set AnyAudience)"))
	}
	if cfg.Audience != "" && cfg.AnyAudience {
		errs = append(errs, errors.New("JWTConfig.Audience and AnyAudience contradict each other: set one"))
	}
	if cfg.MaxTokenLength < 0 {
		errs = append(errs, fmt.Errorf("JWTConfig.MaxTokenLength %d is negative", cfg.MaxTokenLength))
	}
	if cfg.Keys == nil && !cfg.JWKS.AllowInsecureHTTP {
		for _, f := range []struct{ name, url string }{{"JWTConfig.Issuer", cfg.Issuer}, {"JWTConfig.JWKS.URL", cfg.JWKS.URL}} {
			if f.url != "" && errors.Is(issuerhttp.CheckURL(f.url, false), issuerhttp.ErrInsecureHTTP) {
				errs = append(errs, fmt.Errorf("%s %q uses http on a host other than loopback: set JWTConfig.JWKS.AllowInsecureHTTP to permit it", f.name, issuerhttp.Redact(f.url)))
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.MaxTokenLength == 0 {
		cfg.MaxTokenLength = aegis.DefaultMaxTokenLength
	}
	j := &JWT{maxLength: cfg.MaxTokenLength}
	switch {
	case cfg.Leeway == 0:
		j.leeway = aegis.DefaultLeeway
	case cfg.Leeway > 0:
		j.leeway = cfg.Leeway
	}
	keys := cfg.Keys
	if keys == nil {
		kc := cfg.JWKS
		if kc.Issuer == "" {
			kc.Issuer = cfg.Issuer
		}
		if kc.Now == nil {
			kc.Now = cfg.Now
		}
		ko := &keySetObserver{user: kc.Observer, checker: &j.obs, algorithms: cfg.Algorithms, log: kc.Logger,
			now: kc.Now, warned: logthrottle.Limiter{Interval: time.Minute}}
		if ko.now == nil {
			ko.now = time.Now
		}
		if ko.algorithms == nil {
			ko.algorithms = jwks.DefaultAlgorithms()
		}
		if ko.log == nil {
			ko.log = slog.Default()
		}
		kc.Observer = ko
		remote, err := jwks.NewRemote(kc)
		if err != nil {
			return nil, fmt.Errorf("JWTConfig.JWKS: %w", err)
		}
		ko.remote = remote
		keys = remote
	}
	j.keys, _ = keys.(keyPresence)
	v, err := jwks.NewValidator(jwks.ValidatorConfig{
		Issuer:                    cfg.Issuer,
		Audience:                  cfg.Audience,
		AnyAudience:               cfg.AnyAudience,
		CanonicalAudience:         cfg.CanonicalAudience,
		Keys:                      keys,
		Algorithms:                cfg.Algorithms,
		Leeway:                    cfg.Leeway,
		RequireJWTAccessTokenType: cfg.RequireJWTAccessTokenType,
		MaxLifetime:               cfg.MaxLifetime,
		MaxTokenLength:            cfg.MaxTokenLength,
		Now:                       cfg.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("JWTConfig: %w", err)
	}
	j.v = v
	return j, nil
}

// Validate implements Validator.
func (j *JWT) Validate(ctx context.Context, token string) (*Principal, error) {
	t, err := jwks.ParseToken(token, j.maxLength)
	if err != nil {
		return nil, err
	}
	return j.validateParsed(ctx, t, token)
}

func (j *JWT) validateParsed(ctx context.Context, t *jwks.Token, _ string) (*Principal, error) {
	c, err := j.v.Verify(ctx, t)
	if err != nil {
		return nil, err
	}
	p, err := newPrincipal(c, MethodJWT)
	if err != nil {
		return nil, err
	}
	p.Subject, p.ClientID = c.Subject, c.ClientID
	p.Issuer, p.Audience, p.Expiry, p.TokenID = c.Issuer, c.Audience, c.Expiry, c.TokenID
	own(p)
	p.jwt = j
	return p, nil
}

func (j *JWT) attach(o *observers) {
	if h := o.o.Load(); h != nil {
		j.obs.o.Store(h)
	}
}

func (j *JWT) introspection(string) *Introspection { return nil }

func (j *JWT) problems(path string) []error {
	if j == nil || j.v == nil {
		return []error{fmt.Errorf("%s is a nil *JWT (was NewJWT's error ignored?)", path)}
	}
	return nil
}

// Introspection validates tokens by asking their issuer (RFC 7662,
// package introspect).
type Introspection struct {
	issuer string
	client *introspect.Client
	obs    observers
}

// NewIntrospection checks cfg and returns an introspection validator.
// cfg.Issuer is required: it is the issuer of the Principals it returns
// when the answer names none.
func NewIntrospection(cfg introspect.Config) (*Introspection, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("introspect.Config.Issuer is required")
	}
	if !cfg.AllowInsecureHTTP && cfg.Endpoint != "" && errors.Is(issuerhttp.CheckURL(cfg.Endpoint, false), issuerhttp.ErrInsecureHTTP) {
		return nil, fmt.Errorf("introspect.Config.Endpoint %q uses http on a host other than loopback: set introspect.Config.AllowInsecureHTTP to permit it", issuerhttp.Redact(cfg.Endpoint))
	}
	i := &Introspection{issuer: cfg.Issuer}
	cfg.Observer = &introspectionObserver{user: cfg.Observer, checker: &i.obs}
	c, err := introspect.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("introspect.Config: %w", err)
	}
	i.client = c
	return i, nil
}

// Validate implements Validator.
func (i *Introspection) Validate(ctx context.Context, token string) (*Principal, error) {
	res, err := i.client.Introspect(ctx, token)
	if err != nil {
		return nil, err
	}
	p, err := newPrincipal(res, MethodIntrospection)
	if err != nil {
		return nil, err
	}
	p.Subject, p.ClientID, p.Audience, p.Expiry, p.TokenID = res.Subject, res.ClientID, res.Audience, res.Expiry, res.TokenID
	p.Issuer = res.Issuer
	if p.Issuer == "" {
		p.Issuer = i.issuer
	}
	own(p)
	return p, nil
}

// Drop forgets the cached answers d names, here and, with a shared cache
// (introspect.Config.Shared), in every replica: see introspect.Client.Drop.
func (i *Introspection) Drop(ctx context.Context, d introspect.Drop) error {
	return i.client.Drop(ctx, d)
}

func (i *Introspection) validateParsed(ctx context.Context, _ *jwks.Token, token string) (*Principal, error) {
	return i.Validate(ctx, token)
}

func (i *Introspection) attach(o *observers) {
	if h := o.o.Load(); h != nil {
		i.obs.o.Store(h)
	}
}

func (i *Introspection) introspection(string) *Introspection { return i }

func (i *Introspection) problems(path string) []error {
	if i == nil || i.client == nil {
		return []error{fmt.Errorf("%s is a nil *Introspection (was NewIntrospection's error ignored?)", path)}
	}
	return nil
}

// userContextKey holds, in the context of a dependency call, the context
// the user's own Start returned: the user's event is owed that one, not
// the Checker's Observer's (whose span would otherwise be the current one).
type userContextKey struct{}

// startBoth runs the user's Start, then the Checker's on its result, and
// remembers the user's context for userContext.
func startBoth(ctx context.Context, user, checker func(context.Context) context.Context) context.Context {
	if user != nil {
		ctx = user(ctx)
	}
	inner := ctx
	if checker != nil {
		inner = checker(ctx)
	}
	return context.WithValue(inner, userContextKey{}, ctx)
}

// userContext returns the context the user's Start returned.
func userContext(ctx context.Context) context.Context {
	if u, ok := ctx.Value(userContextKey{}).(context.Context); ok {
		return u
	}
	return ctx
}

// keySetObserver reports a JWT validator's key-set fetches to the user's
// own jwks.Observer (JWTConfig.JWKS.Observer) and to the Checker's, and
// warns when a fetched set holds no key for the allowed algorithms.
type keySetObserver struct {
	user    jwks.Observer
	checker *observers

	algorithms []string
	log        *slog.Logger
	remote     *jwks.Remote
	now        func() time.Time
	// warned lets one warning through a minute: a refetch for an unknown
	// kid may follow the first fetch at once.
	warned logthrottle.Limiter
}

// warnUnusable logs at warn a key set that no allowed algorithm can use:
// every token would be refused.
func (k *keySetObserver) warnUnusable(ctx context.Context, issuer string) {
	if k.remote == nil {
		return
	}
	keys := k.remote.Keys()
	for _, key := range keys {
		for _, alg := range k.algorithms {
			if key.Verifies(alg) {
				return
			}
		}
	}
	if ok, _ := k.warned.Allow(issuer, k.now()); !ok {
		return
	}
	k.log.LogAttrs(ctx, slog.LevelWarn, "aegis: the issuer's key set has no key for the allowed algorithms; every token will be refused",
		slog.String("issuer", issuer), slog.Int("keys", len(keys)), slog.Any("algorithms", k.algorithms))
}

func (k *keySetObserver) KeySetFetchStart(ctx context.Context, issuer string) context.Context {
	var user, checker func(context.Context) context.Context
	if k.user != nil {
		user = func(ctx context.Context) context.Context { return k.user.KeySetFetchStart(ctx, issuer) }
	}
	if o := k.checker.get(); o != nil {
		checker = func(ctx context.Context) context.Context { return o.KeySetFetchStart(ctx, issuer) }
	}
	return startBoth(ctx, user, checker)
}

func (k *keySetObserver) KeySetFetch(ctx context.Context, f aegis.KeySetFetch) {
	if f.Err == nil {
		k.warnUnusable(ctx, f.Issuer)
	}
	if o := k.checker.get(); o != nil {
		o.KeySetFetch(ctx, f)
	}
	if k.user != nil {
		k.user.KeySetFetch(userContext(ctx), f)
	}
}

// introspectionObserver reports an introspection validator's lookups and
// calls to the user's own introspect.Observer (introspect.Config.Observer)
// and to the Checker's.
type introspectionObserver struct {
	user    introspect.Observer
	checker *observers
}

func (i *introspectionObserver) IntrospectionCache(ctx context.Context, l aegis.IntrospectionCacheLookup) {
	if i.user != nil {
		i.user.IntrospectionCache(ctx, l)
	}
	if o := i.checker.get(); o != nil {
		o.IntrospectionCache(ctx, l)
	}
}

func (i *introspectionObserver) IntrospectionSharedCache(ctx context.Context, s aegis.IntrospectionSharedCache) {
	if i.user != nil {
		i.user.IntrospectionSharedCache(ctx, s)
	}
	if o := i.checker.get(); o != nil {
		o.IntrospectionSharedCache(ctx, s)
	}
}

func (i *introspectionObserver) IntrospectionCallStart(ctx context.Context, issuer string) context.Context {
	var user, checker func(context.Context) context.Context
	if i.user != nil {
		user = func(ctx context.Context) context.Context { return i.user.IntrospectionCallStart(ctx, issuer) }
	}
	if o := i.checker.get(); o != nil {
		checker = func(ctx context.Context) context.Context { return o.IntrospectionCallStart(ctx, issuer) }
	}
	return startBoth(ctx, user, checker)
}

func (i *introspectionObserver) IntrospectionCall(ctx context.Context, c aegis.IntrospectionCall) {
	if o := i.checker.get(); o != nil {
		o.IntrospectionCall(ctx, c)
	}
	if i.user != nil {
		i.user.IntrospectionCall(userContext(ctx), c)
	}
}

// Hybrid validates JWT-shaped tokens with jwt and every other token
// (Ory Hydra's opaque "ory_at_…" tokens) with opaque. A token is parsed
// once: a built-in jwt validator gets the parsed token. A token that is
// JWT-shaped but malformed is refused without reaching opaque: three
// base64url parts whose header is a JSON object make a token JWT-shaped,
// even when that header is not strict (a duplicate or missing alg), and
// such a token is introspected only when its iss names an issuer that this
// composition introspects; a foreign iss never causes a call.
func Hybrid(jwt, opaque Validator) Validator {
	return &hybrid{jwt: jwt, opaque: opaque}
}

type hybrid struct{ jwt, opaque Validator }

func (h *hybrid) Validate(ctx context.Context, token string) (*Principal, error) {
	if p := cachedOf(h.jwt, token); p != nil {
		return p, nil // a verified token is not parsed again
	}
	t, err := jwks.ParseToken(token, math.MaxInt) // the Checker bounds the length
	switch {
	case errors.Is(err, jwks.ErrNotJWT):
		iss, shaped := jwtShaped(token)
		if !shaped {
			return validateRaw(ctx, h.opaque, token)
		}
		if i := h.introspects(iss); i != nil {
			return i.Validate(ctx, token)
		}
		return nil, err
	case err != nil:
		return nil, err
	}
	return h.validateParsed(ctx, t, token)
}

// introspects returns the introspection validator a JWT of iss is the
// issuer's to judge with: the one its iss routes it to on the jwt side,
// or opaque's when opaque introspects at that very issuer; nil otherwise.
func (h *hybrid) introspects(iss string) *Introspection {
	if iss == "" {
		return nil
	}
	if i := introspectionOf(h.jwt, iss); i != nil {
		return i
	}
	if i := introspectionOf(h.opaque, iss); i != nil && i.issuer == iss {
		return i
	}
	return nil
}

// jwtShaped reports whether token, which jwks.ParseToken found not to be a
// JWT, is still shaped like one: three parts, the first a base64url JSON
// object (strict or not). It also returns the payload's iss, when the
// payload is a strict JSON object with a string iss.
func jwtShaped(token string) (iss string, shaped bool) {
	header, rest, ok := strings.Cut(token, ".")
	if !ok {
		return "", false
	}
	payload, sig, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(sig, ".") {
		return "", false
	}
	h, err := base64.RawURLEncoding.Strict().DecodeString(header)
	if err != nil {
		return "", false
	}
	if trimmed := bytes.TrimLeft(h, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(h) {
		return "", false
	}
	p, err := base64.RawURLEncoding.Strict().DecodeString(payload)
	if err != nil {
		return "", true
	}
	raw, found, err := strictjson.Find(p, "iss", strictjson.MaxClaimsDepth)
	if err != nil || !found {
		return "", true
	}
	iss, err = strictjson.String(raw)
	if err != nil {
		return "", true
	}
	return iss, true
}

func (h *hybrid) validateParsed(ctx context.Context, t *jwks.Token, token string) (*Principal, error) {
	if b, ok := h.jwt.(builtIn); ok {
		return b.validateParsed(ctx, t, token)
	}
	return validateRaw(ctx, h.jwt, token)
}

func (h *hybrid) attach(o *observers) { attachAll(o, h.jwt, h.opaque) }

func (h *hybrid) problems(path string) []error {
	return append(problemsOf(h.jwt, path+": Hybrid's jwt"), problemsOf(h.opaque, path+": Hybrid's opaque")...)
}

func (h *hybrid) introspection(iss string) *Introspection {
	if iss == "" {
		return introspectionOf(h.opaque, "")
	}
	if i := introspectionOf(h.jwt, iss); i != nil {
		return i
	}
	return introspectionOf(h.opaque, iss)
}

// ByIssuer routes each JWT by its iss, strictly parsed once, to the
// validator of that issuer; a JWT of any other issuer is refused with
// aegis.ReasonIssuerMismatch before any network call. Tokens that are not
// JWTs are refused as malformed: combine with Hybrid to introspect them.
func ByIssuer(validators map[string]Validator) Validator {
	m := make(map[string]Validator, len(validators))
	for iss, v := range validators {
		m[iss] = v
	}
	return &byIssuer{m: m, trusted: strings.Join(slices.Sorted(maps.Keys(m)), " ")}
}

type byIssuer struct {
	m map[string]Validator
	// trusted lists the issuers, for refusals' details.
	trusted string
}

func (b *byIssuer) Validate(ctx context.Context, token string) (*Principal, error) {
	if p := b.cached(token); p != nil {
		return p, nil // a verified token is not parsed again
	}
	t, err := jwks.ParseToken(token, math.MaxInt) // the Checker bounds the length
	if err != nil {
		return nil, err
	}
	return b.validateParsed(ctx, t, token)
}

// cached serves token from the verified-token cache of any issuer's
// validator; a token is cached only by the validator that verified it.
func (b *byIssuer) cached(token string) *Principal {
	for _, v := range b.m {
		if p := cachedOf(v, token); p != nil {
			return p
		}
	}
	return nil
}

func (b *byIssuer) validateParsed(ctx context.Context, t *jwks.Token, token string) (*Principal, error) {
	v, ok := b.m[t.Issuer()]
	if !ok {
		return nil, untrustedIssuer(t.Issuer(), b.trusted)
	}
	if bv, ok := v.(builtIn); ok {
		return bv.validateParsed(ctx, t, token)
	}
	return validateRaw(ctx, v, token)
}

func (b *byIssuer) problems(path string) []error {
	if len(b.m) == 0 {
		return []error{fmt.Errorf("%s: ByIssuer has no issuer", path)}
	}
	var errs []error
	for _, iss := range slices.Sorted(maps.Keys(b.m)) {
		if iss == "" {
			errs = append(errs, fmt.Errorf("%s: ByIssuer has an empty issuer", path))
			continue
		}
		errs = append(errs, problemsOf(b.m[iss], fmt.Sprintf("%s: ByIssuer[%q]", path, iss))...)
	}
	return errs
}

func (b *byIssuer) attach(o *observers) {
	for _, v := range b.m {
		attachAll(o, v)
	}
}

func (b *byIssuer) introspection(iss string) *Introspection {
	if iss == "" {
		return nil
	}
	return introspectionOf(b.m[iss], iss)
}

// untrustedIssuer is the refusal of a JWT whose iss is not among the
// trusted issuers, naming both.
func untrustedIssuer(iss, trusted string) *aegis.Refusal {
	return aegis.Refuse(aegis.ReasonIssuerMismatch, errors.New(refusal.Mismatch("iss", []string{iss}, trusted)))
}

// validateRaw runs v, checking the b64token syntax first for validators
// that are not built in.
func validateRaw(ctx context.Context, v Validator, token string) (*Principal, error) {
	if _, ok := v.(builtIn); !ok && !b64token.Valid(token) {
		return nil, aegis.Refuse(aegis.ReasonTokenMalformed, nil)
	}
	return v.Validate(ctx, token)
}

func attachAll(o *observers, vs ...Validator) {
	for _, v := range vs {
		if b, ok := v.(builtIn); ok {
			b.attach(o)
		}
	}
}

func introspectionOf(v Validator, iss string) *Introspection {
	if b, ok := v.(builtIn); ok {
		return b.introspection(iss)
	}
	return nil
}

// newPrincipal reads what both paths carry the same way: scopes and email.
func newPrincipal(claims claimLookup, m Method) (*Principal, error) {
	granted, err := grantedScopes(claims)
	if err != nil {
		return nil, err
	}
	email, err := emailOf(claims)
	if err != nil {
		return nil, err
	}
	return allocPrincipal(Principal{Scopes: granted, Email: email, Method: m, claims: claims, cnf: cnfOf(claims)}), nil
}

// grantedScopes unites the scope (string) and scp (array or string) claims.
func grantedScopes(claims claimLookup) (scopes.Set, error) {
	var granted scopes.Set
	for _, name := range []string{"scope", "scp"} {
		raw, ok := claims.Raw(name)
		if !ok {
			continue
		}
		s, err := scopes.FromClaim(raw)
		if err != nil {
			return scopes.Set{}, claimRefusal("scope", err)
		}
		if granted.Len() == 0 {
			granted = s
		} else {
			granted = granted.Union(s)
		}
	}
	return granted, nil
}

// emailOf reads the top-level email claim, or else Ory Hydra's ext.email:
// a claim that is null or empty counts as absent, wherever it is, so an
// empty top-level email never hides ext.email. ext is read within the
// claims' own nesting bound (it sits one level below the top).
func emailOf(claims claimLookup) (string, error) {
	if raw, ok := claims.Raw("email"); ok {
		email, err := optionalString(raw)
		if err != nil {
			return "", claimRefusal("email", err)
		}
		if email != "" {
			return email, nil
		}
	}
	raw, ok := claims.Raw("ext")
	if !ok || len(raw) == 0 || raw[0] != '{' {
		return "", nil
	}
	value, found, err := strictjson.Find(raw, "email", strictjson.MaxClaimsDepth-1)
	if err != nil {
		return "", claimRefusal("email", err)
	}
	if !found {
		return "", nil
	}
	email, err := optionalString(value)
	if err != nil {
		return "", claimRefusal("email", err)
	}
	return email, nil
}

// optionalString reads a JSON string, null meaning the empty string.
func optionalString(raw []byte) (string, error) {
	if string(raw) == "null" {
		return "", nil
	}
	return strictjson.String(raw)
}

func claimRefusal(claim string, err error) *aegis.Refusal {
	r := aegis.Refuse(aegis.ReasonClaimsInvalid, fmt.Errorf("%s claim: %w", claim, err))
	r.Description = "The access token's " + claim + " claim is invalid"
	return r
}

// own copies every string of p that may point into a token's decoded
// bytes into one buffer of p's own.
func own(p *Principal) {
	n := len(p.Subject) + len(p.ClientID) + len(p.Email) + len(p.Issuer) + len(p.TokenID)
	for _, a := range p.Audience {
		n += len(a)
	}
	var b strings.Builder
	b.Grow(n)
	for _, s := range []string{p.Subject, p.ClientID, p.Email, p.Issuer, p.TokenID} {
		b.WriteString(s)
	}
	for _, a := range p.Audience {
		b.WriteString(a)
	}
	buf := b.String()
	take := func(s string) string {
		out := buf[:len(s)]
		buf = buf[len(s):]
		return out
	}
	p.Subject, p.ClientID, p.Email, p.Issuer, p.TokenID = take(p.Subject), take(p.ClientID), take(p.Email), take(p.Issuer), take(p.TokenID)
	if len(p.Audience) > 0 {
		aud := make([]string, len(p.Audience))
		for i, a := range p.Audience {
			aud[i] = take(a)
		}
		p.Audience = aud
	}
}
