package middleware

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/olympus/aegis/internal/logthrottle"
	"github.com/olympus/aegis/introspect"
	"github.com/olympus/aegis/jwks"
)

// Metrics receives what a Guard measures. The subpackages prommetrics and
// otelmetrics adapt it to Prometheus and OpenTelemetry; a Guard without
// Metrics measures nothing. Implementations must be safe for concurrent
// use and quick: Decision and RateLimit are called on every request.
// No event carries a token or anything a token could be rebuilt from.
type Metrics interface {
	// Decision records a verdict on a request (see Decision).
	Decision(ctx context.Context, d Decision)
	// KeySetFetch records one fetch of an issuer's key set.
	KeySetFetch(ctx context.Context, f KeySetFetch)
	// IntrospectionCache records whether an introspection was answered
	// from the cache.
	IntrospectionCache(ctx context.Context, c IntrospectionCacheLookup)
	// IntrospectionCall records one call to an introspection endpoint.
	IntrospectionCall(ctx context.Context, c IntrospectionCall)
	// RateLimit records one rate-limit decision.
	RateLimit(ctx context.Context, d RateLimitDecision)
	// LimitLookup records one lookup of a client's limit.
	LimitLookup(ctx context.Context, l LimitLookup)
}

// Outcome is a decision's verdict.
type Outcome string

const (
	// OutcomeAccepted: the request passed.
	OutcomeAccepted Outcome = "accepted"
	// OutcomeRefused: the request was refused.
	OutcomeRefused Outcome = "refused"
)

// ReasonAccepted is the reason code of every acceptance.
const ReasonAccepted = "accepted"

// Decision is a Guard's verdict. A request gets one: refused with the
// refusal's reason, or accepted when it first passes the Guard's checks.
// When one middleware of the Guard admits a request and a later one refuses
// it (Require for scope, RequireIntrospection for a token the issuer calls
// inactive), both verdicts are recorded. Validate records one per call.
type Decision struct {
	// Outcome is accepted or refused.
	Outcome Outcome
	// Reason is a stable code: ReasonAccepted, or the refusal's
	// Error.Reason (token_missing, token_expired, audience_mismatch,
	// insufficient_scope, rate_limited, keys_unavailable…).
	Reason string
	// Status is the HTTP status of a refusal; 0 for an acceptance.
	Status int
	// Kind is the caller's kind; empty when no token was validated.
	Kind Kind
	// Method is how the token was validated; empty when it was not.
	Method Method
	// ClientID is the token's client_id when the token was validated.
	ClientID string
	// Cached reports an acceptance served by the verified-token cache.
	Cached bool
}

// KeySetFetch describes one fetch of an issuer's key set.
type KeySetFetch struct {
	// Issuer is the issuer whose keys were fetched.
	Issuer string
	// Keys is how many usable keys the answer held; 0 on failure.
	Keys int
	// Duration is how long the fetch took.
	Duration time.Duration
	// Err is why it failed; nil on success.
	Err error
}

// IntrospectionCacheLookup describes one look into the introspection
// cache.
type IntrospectionCacheLookup struct {
	// Issuer is the issuer whose client looked.
	Issuer string
	// Hit reports an answer served from the cache.
	Hit bool
}

// IntrospectionCall describes one call to an introspection endpoint.
type IntrospectionCall struct {
	// Issuer is the issuer called.
	Issuer string
	// Active is the server's answer, when it gave one.
	Active bool
	// Duration is how long the call took.
	Duration time.Duration
	// Err is why no answer could be had; nil for an answer, active or not.
	Err error
}

// RateLimitDecision describes one charge to a client's rate limit.
type RateLimitDecision struct {
	// ClientID is the client charged.
	ClientID string
	// Allowed reports whether the request could pass.
	Allowed bool
	// Err is why the store could not decide; nil when it did.
	Err error
}

// LimitLookup describes one lookup of a client's limit in
// RateLimitConfig.Limits.
type LimitLookup struct {
	// ClientID is the client looked up.
	ClientID string
	// Found reports that the source had a limit for the client.
	Found bool
	// Duration is how long the lookup took.
	Duration time.Duration
	// Err is why the lookup failed (the default limit then applies).
	Err error
}

// instrumentationName names Aegis's tracer.
const instrumentationName = "github.com/olympus/aegis/middleware"

// observer sends a Guard's events to its logger, metrics and tracer.
type observer struct {
	log     *slog.Logger
	metrics Metrics      // nil: none
	tracer  trace.Tracer // nil: no spans
	now     func() time.Time
	warns   *logthrottle.Limiter
}

// warnInterval is the least time between two warn-level records of one
// refusal reason: during an outage every request is refused with a 5xx,
// and the log would otherwise get a warning per request. The others go to
// debug, and the next warning says how many there were.
const warnInterval = time.Second

func newObserver(cfg Config, log *slog.Logger) *observer {
	o := &observer{log: log, metrics: cfg.Metrics, now: cfg.Now, warns: &logthrottle.Limiter{Interval: warnInterval}}
	if o.now == nil {
		o.now = time.Now
	}
	if cfg.TracerProvider != nil {
		o.tracer = cfg.TracerProvider.Tracer(instrumentationName)
	}
	return o
}

// start begins a span, or returns ctx and nil when tracing is off.
func (o *observer) start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if o.tracer == nil {
		return ctx, nil
	}
	return o.tracer.Start(ctx, name, trace.WithAttributes(attrs...))
}

// end ends span, marking it failed when err is not nil.
func end(span trace.Span, err error, attrs ...attribute.KeyValue) {
	if span == nil {
		return
	}
	span.SetAttributes(attrs...)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// decide records a decision in the metrics and the log. Refusals are
// logged at debug (client mistakes) or warn (5xx: a dependency is down, at
// most one warning per reason a second, the rest at debug); acceptances at
// debug, so a production log at info shows only trouble, and not a line
// per request during an outage.
func (o *observer) decide(ctx context.Context, r *http.Request, d Decision, cause error) {
	if o.metrics != nil {
		o.metrics.Decision(ctx, d)
	}
	level, held := slog.LevelDebug, 0
	if d.Status >= 500 && o.log.Enabled(ctx, slog.LevelWarn) {
		var ok bool
		if ok, held = o.warns.Allow(d.Reason, o.now()); ok {
			level = slog.LevelWarn
		}
	}
	if !o.log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 11)
	attrs = append(attrs, slog.String("outcome", string(d.Outcome)), slog.String("reason", d.Reason))
	if held > 0 {
		attrs = append(attrs, slog.Int("held_back", held))
	}
	if d.Status != 0 {
		attrs = append(attrs, slog.Int("status", d.Status))
	}
	if d.Kind != "" {
		attrs = append(attrs, slog.String("client_id", d.ClientID), slog.String("kind", string(d.Kind)),
			slog.String("auth_method", string(d.Method)))
	}
	if d.Cached {
		attrs = append(attrs, slog.Bool("cached", true))
	}
	if r != nil {
		attrs = append(attrs, slog.String("method", r.Method), slog.String("path", r.URL.Path))
	}
	if cause != nil {
		attrs = append(attrs, slog.String("cause", cause.Error()))
	}
	msg := "aegis: request accepted"
	if d.Outcome == OutcomeRefused {
		msg = "aegis: request refused"
	}
	o.log.LogAttrs(ctx, level, msg, attrs...)
}

// accepted is the decision for p.
func accepted(p *Principal) Decision {
	return Decision{Outcome: OutcomeAccepted, Reason: ReasonAccepted, Kind: p.Kind, Method: p.Method,
		ClientID: p.ClientID, Cached: p.cached}
}

// refused is the decision for e, on behalf of p when a token was validated.
func refused(e *Error, p *Principal) Decision {
	d := Decision{Outcome: OutcomeRefused, Reason: e.Reason, Status: e.Status}
	if p != nil {
		d.Kind, d.Method, d.ClientID = p.Kind, p.Method, p.ClientID
	}
	return d
}

// hookCall is what a composed Start hook leaves for its Done: the context
// the user's own Start returned and Aegis's span.
type hookCall struct {
	userCtx context.Context
	span    trace.Span
}

type hookCallKey struct{}

// startHooked runs the user's Start hook, then starts Aegis's span as its
// child, and remembers both for endHooked.
func (o *observer) startHooked(ctx context.Context, user func(context.Context) context.Context, name string, attrs ...attribute.KeyValue) context.Context {
	userCtx := ctx
	if user != nil {
		userCtx = user(ctx)
	}
	ctx, span := o.start(userCtx, name, attrs...)
	return context.WithValue(ctx, hookCallKey{}, hookCall{userCtx: userCtx, span: span})
}

// endHooked ends Aegis's span and returns the context the user's Done hook
// is owed: the one the user's Start returned.
func endHooked(ctx context.Context, err error, attrs ...attribute.KeyValue) context.Context {
	c, ok := ctx.Value(hookCallKey{}).(hookCall)
	if !ok {
		return ctx
	}
	end(c.span, err, attrs...)
	return c.userCtx
}

// jwksHooks reports issuer's key-set fetches, around the user's own hooks.
func (o *observer) jwksHooks(issuer string, user jwks.Hooks) jwks.Hooks {
	if o.metrics == nil && o.tracer == nil {
		return user
	}
	return jwks.Hooks{
		FetchStart: func(ctx context.Context) context.Context {
			return o.startHooked(ctx, user.FetchStart, "aegis.jwks.fetch", attribute.String("aegis.issuer", issuer))
		},
		FetchDone: func(ctx context.Context, f jwks.Fetch) {
			userCtx := endHooked(ctx, f.Err, attribute.String("url.full", f.URL), attribute.Int("aegis.keys", f.Keys))
			if o.metrics != nil {
				o.metrics.KeySetFetch(ctx, KeySetFetch{Issuer: issuer, Keys: f.Keys, Duration: f.Duration, Err: f.Err})
			}
			if user.FetchDone != nil {
				user.FetchDone(userCtx, f)
			}
		},
	}
}

// introspectionHooks reports issuer's introspection cache and calls,
// around the user's own hooks.
func (o *observer) introspectionHooks(issuer string, user introspect.Hooks) introspect.Hooks {
	if o.metrics == nil && o.tracer == nil {
		return user
	}
	return introspect.Hooks{
		CacheLookup: func(ctx context.Context, hit bool) {
			if user.CacheLookup != nil {
				user.CacheLookup(ctx, hit)
			}
			if o.metrics != nil {
				o.metrics.IntrospectionCache(ctx, IntrospectionCacheLookup{Issuer: issuer, Hit: hit})
			}
		},
		CallStart: func(ctx context.Context) context.Context {
			return o.startHooked(ctx, user.CallStart, "aegis.introspect", attribute.String("aegis.issuer", issuer))
		},
		CallDone: func(ctx context.Context, c introspect.Call) {
			userCtx := endHooked(ctx, c.Err, attribute.Bool("aegis.active", c.Active))
			if o.metrics != nil {
				o.metrics.IntrospectionCall(ctx, IntrospectionCall{Issuer: issuer, Active: c.Active, Duration: c.Duration, Err: c.Err})
			}
			if user.CallDone != nil {
				user.CallDone(userCtx, c)
			}
		},
	}
}
