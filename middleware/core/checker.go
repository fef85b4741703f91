package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/internal/logthrottle"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/ratelimit"
	"github.com/olympus/aegis/scopes"
)

// Config configures a Checker.
type Config struct {
	// Validator validates tokens. Required: compose it from NewJWT,
	// NewIntrospection, Hybrid, ByIssuer and Cached, or bring your own.
	Validator Validator
	// Introspection confirms JWTs for Confirm when Validator has no
	// introspection for their issuer: set it for a JWT-only Validator whose
	// revocation-sensitive operations need the issuer's word. Tokens that
	// are not JWTs are confirmed only where Validator introspects them.
	Introspection *Introspection
	// MaxTokenLength bounds a token before any validator sees it; default
	// aegis.DefaultMaxTokenLength (8 KiB).
	MaxTokenLength int
	// Classifier decides each Principal's Kind; default DefaultClassifier.
	Classifier Classifier
	// RateLimit charges every admitted request to its client; nil means
	// no limits.
	RateLimit *RateLimitConfig
	// DPoP configures DPoP-bound tokens (RFC 9449); the zero value is
	// dpop.Allow with an in-memory replay store. Certificate-bound tokens
	// (RFC 8705) are always checked against Credential.PeerCertificate.
	DPoP DPoPConfig
	// Observer receives verdicts and dependency events (metrics, traces);
	// nil observes nothing. Combine several with Observers.
	Observer Observer
	// Logger receives every decision (acceptances and refusals at debug,
	// refusals of class unavailable at warn, at most one per reason a
	// second, issuer and audience mismatches at warn, the first of each a
	// minute, naming the configured and the token's values) and dependency
	// failures (warn); default slog.Default().
	// Tokens are never logged.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Checker decides on credentials: it validates the token, classifies the
// caller, enforces scope requirements and charges the client's rate limit.
// It is safe for concurrent use.
type Checker struct {
	validator Validator
	builtIn   bool
	intro     *Introspection
	// canConfirm: some introspection validator is configured.
	canConfirm bool
	maxLength  int
	classify   Classifier
	limiter    *limiter
	obs        Observer // never nil
	// unobserved: obs is NopObserver, so no event need be made.
	unobserved bool
	log        *slog.Logger
	now        func() time.Time
	warns      *logthrottle.Limiter
	mismatches *logthrottle.Limiter
	binding    binding
}

// Verdict is the outcome of a check: a Principal or a Refusal, and the
// rate-limit decision when the client was charged (transports render it as
// headers, on refusals too).
type Verdict struct {
	// Principal is the admitted caller; nil when refused.
	Principal *Principal
	// Refusal is why the credential was refused; nil when admitted.
	Refusal *aegis.Refusal
	// RateLimit is the charge's decision; nil when no charge was made.
	RateLimit *ratelimit.Decision
}

// New checks cfg and returns a Checker. It makes no network request. Every
// problem with cfg is reported at once, naming its field.
func New(cfg Config) (*Checker, error) {
	var errs []error
	if cfg.Validator == nil {
		errs = append(errs, errors.New("Config.Validator is required"))
	} else {
		errs = append(errs, problemsOf(cfg.Validator, "Config.Validator")...)
	}
	if cfg.MaxTokenLength < 0 {
		errs = append(errs, fmt.Errorf("Config.MaxTokenLength %d is negative", cfg.MaxTokenLength))
	}
	lim, err := newLimiter(cfg.RateLimit)
	if err != nil {
		errs = append(errs, err)
	}
	bind, err := newBinding(cfg.DPoP, cfg.Now)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	c := &Checker{
		validator:  cfg.Validator,
		intro:      cfg.Introspection,
		maxLength:  cfg.MaxTokenLength,
		classify:   cfg.Classifier,
		limiter:    lim,
		obs:        cfg.Observer,
		log:        cfg.Logger,
		now:        cfg.Now,
		warns:      &logthrottle.Limiter{Interval: warnInterval},
		mismatches: &logthrottle.Limiter{Interval: mismatchInterval},
		binding:    bind,
	}
	_, c.builtIn = cfg.Validator.(builtIn)
	if c.maxLength == 0 {
		c.maxLength = aegis.DefaultMaxTokenLength
	}
	if c.classify == nil {
		c.classify = DefaultClassifier
	}
	if c.obs == nil {
		c.obs = NopObserver{}
	}
	_, c.unobserved = c.obs.(NopObserver)
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.canConfirm = c.intro != nil || findIntrospection(cfg.Validator) != nil
	var fwd observers
	fwd.o.Store(&observerHolder{c.obs})
	attachAll(&fwd, cfg.Validator)
	if c.intro != nil {
		c.intro.attach(&fwd)
	}
	return c, nil
}

// mismatchHints tell an operator what to check when tokens are refused for
// their issuer or audience.
var mismatchHints = map[aegis.Reason]string{
	aegis.ReasonIssuerMismatch:   "if every token is refused so, check the configured issuer: it must equal the tokens' iss exactly (scheme, host, port, path, trailing slash)",
	aegis.ReasonAudienceMismatch: "if every token is refused so, check the configured audience, and the audience the clients request their tokens for",
}

// mismatchInterval is the least time between two warn-level records of an
// issuer or audience mismatch.
const mismatchInterval = time.Minute

// warnInterval is the least time between two warn-level records of one
// refusal reason: during an outage every request is refused, and the log
// would otherwise get a warning per request. The others go to debug, and
// the next warning says how many there were.
const warnInterval = time.Second

// Check decides on cred: the token must be valid and grant every
// requirement (none: any valid token). An admitted client is charged
// before its scopes are checked, so the verdict carries its rate-limit
// decision either way. The verdict is recorded.
func (c *Checker) Check(ctx context.Context, cred Credential, reqs ...scopes.Requirement) Verdict {
	p, r := c.validate(ctx, cred.Token)
	if r != nil {
		c.record(ctx, cred, refusedDecision(r, nil), r)
		return Verdict{Refusal: r}
	}
	if r := c.bind(ctx, cred, p); r != nil {
		c.record(ctx, cred, refusedDecision(r, p), r)
		return Verdict{Refusal: r}
	}
	v := c.charge(ctx, cred, p)
	if v.Refusal == nil {
		v.Refusal = c.scopesRefusal(p, reqs)
	}
	if v.Refusal != nil {
		c.record(ctx, cred, refusedDecision(v.Refusal, p), v.Refusal)
		return Verdict{Refusal: v.Refusal, RateLimit: v.RateLimit}
	}
	c.record(ctx, cred, acceptedDecision(p), nil)
	return v
}

// Authorize checks the requirements against p, a Principal this Checker
// already admitted (and charged) for the same request. A refusal is
// recorded; an admission is not recorded again.
func (c *Checker) Authorize(ctx context.Context, cred Credential, p *Principal, reqs ...scopes.Requirement) *aegis.Refusal {
	r := c.scopesRefusal(p, reqs)
	if r != nil {
		c.record(ctx, cred, refusedDecision(r, p), r)
	}
	return r
}

// Refuse records a refusal a transport made itself before any token was
// validated (no token, a malformed request) and returns it.
func (c *Checker) Refuse(ctx context.Context, cred Credential, r *aegis.Refusal) *aegis.Refusal {
	c.record(ctx, cred, refusedDecision(r, nil), r)
	return r
}

// Validate validates a token and classifies its Principal, without scopes
// or rate limits: for transports that check those themselves. The verdict
// is recorded. A sender-constrained token (cnf) is refused: nothing here
// proves possession of its key or certificate.
func (c *Checker) Validate(ctx context.Context, token string) (*Principal, error) {
	p, r := c.validate(ctx, token)
	if r != nil {
		c.record(ctx, Credential{}, refusedDecision(r, nil), r)
		return nil, r
	}
	if r := c.bind(ctx, Credential{Token: token}, p); r != nil {
		c.record(ctx, Credential{}, refusedDecision(r, p), r)
		return nil, r
	}
	c.record(ctx, Credential{}, acceptedDecision(p), nil)
	return p, nil
}

// CanConfirm reports whether Confirm can introspect.
func (c *Checker) CanConfirm() bool { return c.canConfirm }

// Confirm decides on cred by introspection even when its token is a valid
// JWT, for revocation-sensitive operations. prev is the Principal this
// Checker admitted for the same request, if any: then the client is not
// charged again and the admission is not recorded again.
func (c *Checker) Confirm(ctx context.Context, cred Credential, prev *Principal) Verdict {
	if !c.canConfirm {
		r := aegis.Unavailable(aegis.ReasonIntrospectionUnconfigured, time.Minute, nil)
		c.record(ctx, cred, refusedDecision(r, nil), r)
		return Verdict{Refusal: r}
	}
	if len(cred.Token) > c.maxLength {
		r := aegis.Refuse(aegis.ReasonTokenTooLong, nil)
		c.record(ctx, cred, refusedDecision(r, nil), r)
		return Verdict{Refusal: r}
	}
	intro, r := c.confirmer(cred.Token)
	if r != nil {
		c.record(ctx, cred, refusedDecision(r, nil), r)
		return Verdict{Refusal: r}
	}
	p, err := intro.Validate(ctx, cred.Token)
	if err != nil {
		r := refusalOf(err)
		c.record(ctx, cred, refusedDecision(r, nil), r)
		return Verdict{Refusal: r}
	}
	p.Kind = c.classify(p)
	p.checker = c
	if prev.AdmittedBy(c) {
		if r := c.rebind(cred, prev, p); r != nil {
			c.record(ctx, cred, refusedDecision(r, p), r)
			return Verdict{Refusal: r}
		}
		return Verdict{Principal: p}
	}
	if r := c.bind(ctx, cred, p); r != nil {
		c.record(ctx, cred, refusedDecision(r, p), r)
		return Verdict{Refusal: r}
	}
	v := c.charge(ctx, cred, p)
	if v.Refusal != nil {
		c.record(ctx, cred, refusedDecision(v.Refusal, p), v.Refusal)
		return Verdict{Refusal: v.Refusal, RateLimit: v.RateLimit}
	}
	c.record(ctx, cred, acceptedDecision(p), nil)
	return v
}

// validate runs the validator and classifies the Principal, observed.
func (c *Checker) validate(ctx context.Context, token string) (*Principal, *aegis.Refusal) {
	if c.unobserved {
		return c.validateToken(ctx, token)
	}
	ctx = c.obs.ValidationStart(ctx)
	p, r := c.validateToken(ctx, token)
	if r != nil {
		c.obs.ValidationDone(ctx, refusedDecision(r, nil))
		return nil, r
	}
	c.obs.ValidationDone(ctx, acceptedDecision(p))
	return p, nil
}

func (c *Checker) validateToken(ctx context.Context, token string) (*Principal, *aegis.Refusal) {
	if token == "" {
		return nil, aegis.Refuse(aegis.ReasonTokenMissing, nil)
	}
	if len(token) > c.maxLength {
		return nil, aegis.Refuse(aegis.ReasonTokenTooLong, nil)
	}
	var p *Principal
	var err error
	if c.builtIn {
		p, err = c.validator.Validate(ctx, token)
	} else {
		p, err = validateRaw(ctx, c.validator, token)
	}
	if err != nil {
		return nil, refusalOf(err)
	}
	if p == nil {
		return nil, aegis.Refuse(aegis.ReasonTokenInvalid, errors.New("validator returned no principal"))
	}
	p.Kind = c.classify(p)
	p.checker = c
	return p, nil
}

func (c *Checker) scopesRefusal(p *Principal, reqs []scopes.Requirement) *aegis.Refusal {
	for _, req := range reqs {
		if !req.SatisfiedBy(p.Scopes) {
			r := aegis.Refuse(aegis.ReasonInsufficientScope, nil)
			r.Scope = requiredScope(reqs)
			return r
		}
	}
	return nil
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

// refusalOf maps a validator's error to its refusal: the one place where
// errors become verdicts.
func refusalOf(err error) *aegis.Refusal {
	var r *aegis.Refusal
	if errors.As(err, &r) && r != nil {
		return normalized(r)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return aegis.Unavailable(aegis.ReasonValidationAborted, time.Second, err)
	}
	if errors.Is(err, jwks.ErrKeysUnavailable) {
		return aegis.Unavailable(aegis.ReasonKeysUnavailable, 10*time.Second, err)
	}
	return aegis.Refuse(aegis.ReasonTokenInvalid, err)
}

// normalized is a copy of r with a class and, for classes that retry, a
// retry hint of at least a second.
func normalized(r *aegis.Refusal) *aegis.Refusal {
	c := *r
	if c.Reason == "" {
		c.Reason = aegis.ReasonTokenInvalid
	}
	switch c.Class {
	case aegis.ClassInvalid, aegis.ClassForbidden, aegis.ClassUnavailable, aegis.ClassLimited:
	default:
		c.Class = c.Reason.Class()
	}
	if c.Class == aegis.ClassUnavailable || c.Class == aegis.ClassLimited {
		if c.RetryAfter <= 0 {
			c.RetryAfter = 5 * time.Second
		}
		c.RetryAfter = max(c.RetryAfter, time.Second)
	}
	if c.Description == "" {
		c.Description = c.Reason.Description()
	}
	return &c
}

// acceptedDecision is the decision for p.
func acceptedDecision(p *Principal) Decision {
	return Decision{Outcome: OutcomeAccepted, Reason: aegis.ReasonAccepted, Kind: p.Kind, Method: p.Method,
		ClientID: p.ClientID, Cached: p.cached}
}

// refusedDecision is the decision for r, on behalf of p when a token was
// validated.
func refusedDecision(r *aegis.Refusal, p *Principal) Decision {
	d := Decision{Outcome: OutcomeRefused, Reason: r.Reason, Class: r.Class}
	if p != nil {
		d.Kind, d.Method, d.ClientID = p.Kind, p.Method, p.ClientID
	}
	return d
}

// record sends a decision to the observer and the log. Refusals are
// logged at debug (client mistakes) or warn (class unavailable: a
// dependency is down, at most one warning per reason a second, the rest at
// debug); acceptances at debug, so a production log at info shows only
// trouble, and not a line per request during an outage.
func (c *Checker) record(ctx context.Context, cred Credential, d Decision, r *aegis.Refusal) {
	if !c.unobserved {
		c.obs.Decision(ctx, d)
	}
	level, held := slog.LevelDebug, 0
	var hint string
	switch {
	case d.Class == aegis.ClassUnavailable && c.log.Enabled(ctx, slog.LevelWarn):
		var ok bool
		if ok, held = c.warns.Allow(string(d.Reason), c.now()); ok {
			level = slog.LevelWarn
		}
	case d.Reason == aegis.ReasonIssuerMismatch || d.Reason == aegis.ReasonAudienceMismatch:
		// A wrong Issuer or Audience refuses every token: the first of
		// each a minute is a warning, naming both values (in cause).
		hint = mismatchHints[d.Reason]
		if c.log.Enabled(ctx, slog.LevelWarn) {
			var ok bool
			if ok, held = c.mismatches.Allow(string(d.Reason), c.now()); ok {
				level = slog.LevelWarn
			}
		}
	}
	if !c.log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 11)
	attrs = append(attrs, slog.String("outcome", string(d.Outcome)), slog.String("reason", string(d.Reason)))
	if held > 0 {
		attrs = append(attrs, slog.Int("held_back", held))
	}
	if d.Class != "" {
		attrs = append(attrs, slog.String("class", string(d.Class)))
	}
	if d.Kind != "" {
		attrs = append(attrs, slog.String("client_id", d.ClientID), slog.String("kind", string(d.Kind)),
			slog.String("auth_method", string(d.Method)))
	}
	if d.Cached {
		attrs = append(attrs, slog.Bool("cached", true))
	}
	if cred.Method != "" {
		attrs = append(attrs, slog.String("method", cred.Method))
	}
	if cred.URL != nil {
		attrs = append(attrs, slog.String("path", cred.URL.Path))
	}
	if r != nil && r.Err != nil {
		attrs = append(attrs, slog.String("cause", r.Err.Error()))
	}
	if hint != "" {
		attrs = append(attrs, slog.String("hint", hint))
	}
	msg := "aegis: request accepted"
	if d.Outcome == OutcomeRefused {
		msg = "aegis: request refused"
	}
	c.log.LogAttrs(ctx, level, msg, attrs...)
}

// confirmer is the introspection validator for token: for a JWT, the one
// the Validator has for its issuer, else Config.Introspection; for any other
// token, the one the Validator sends such tokens to. Nil means the token
// cannot be confirmed; its refusal is then the one the Validator would give.
func (c *Checker) confirmer(token string) (*Introspection, *aegis.Refusal) {
	t, err := jwks.ParseToken(token, c.maxLength)
	switch {
	case errors.Is(err, jwks.ErrNotJWT):
		if i := introspectionOf(c.validator, ""); i != nil {
			return i, nil
		}
		return nil, refusalOf(err)
	case err != nil:
		return nil, refusalOf(err)
	}
	if i := introspectionOf(c.validator, t.Issuer()); i != nil {
		return i, nil
	}
	if c.intro != nil {
		return c.intro, nil
	}
	return nil, untrustedIssuer(t.Issuer(), "(no introspection for it)")
}

// findIntrospection returns the introspection validator inside v that
// handles opaque tokens, or failing that any issuer's.
func findIntrospection(v Validator) *Introspection {
	if i := introspectionOf(v, ""); i != nil {
		return i
	}
	switch v := v.(type) {
	case *byIssuer:
		for iss := range v.m {
			if i := introspectionOf(v.m[iss], iss); i != nil {
				return i
			}
		}
	case *hybrid:
		return findIntrospection(v.jwt)
	case *cached:
		return findIntrospection(v.next)
	}
	return nil
}
