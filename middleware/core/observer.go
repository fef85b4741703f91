package core

import (
	"context"
	"time"

	"github.com/olympus/aegis"
)

// Observer receives everything a Checker does: its verdicts, and each call
// to a dependency (key sets, introspection, rate limits). It is the one
// seam for metrics and tracing; the nested modules prommetrics and
// otelmetrics adapt it to Prometheus and OpenTelemetry.
//
// Implementations embed NopObserver and override what they need, so an
// event added later breaks none of them. Every method must be safe for
// concurrent use and quick: Decision is called on every request. Each
// XStart returns the context its X event will be given (a tracer starts a
// span there). No event carries a token or anything a token could be
// rebuilt from.
type Observer interface {
	// ValidationStart is called before a token is validated.
	ValidationStart(ctx context.Context) context.Context
	// ValidationDone reports the validation's verdict (before scopes and
	// rate limits), with the context ValidationStart returned.
	ValidationDone(ctx context.Context, d Decision)
	// Decision records a verdict on a request (see Decision).
	Decision(ctx context.Context, d Decision)
	// KeySetFetchStart is called before an issuer's key set is fetched.
	KeySetFetchStart(ctx context.Context, issuer string) context.Context
	// KeySetFetch records one fetch of an issuer's key set.
	KeySetFetch(ctx context.Context, f KeySetFetch)
	// IntrospectionCache records whether an introspection was answered
	// from the cache.
	IntrospectionCache(ctx context.Context, c IntrospectionCacheLookup)
	// IntrospectionCallStart is called before a call to an introspection
	// endpoint.
	IntrospectionCallStart(ctx context.Context, issuer string) context.Context
	// IntrospectionCall records one call to an introspection endpoint.
	IntrospectionCall(ctx context.Context, c IntrospectionCall)
	// IntrospectionSharedCache records one use of the introspection cache
	// shared among replicas (introspect.Config.Shared).
	IntrospectionSharedCache(ctx context.Context, s IntrospectionSharedCache)
	// RateLimit records one charge to a client's rate limit.
	RateLimit(ctx context.Context, d RateLimitDecision)
	// LimitLookupStart is called before a client's limit is looked up.
	LimitLookupStart(ctx context.Context, clientID string) context.Context
	// LimitLookup records one lookup of a client's limit.
	LimitLookup(ctx context.Context, l LimitLookup)

	nop() // only NopObserver has it: implementations embed it
}

// NopObserver observes nothing. Embed it in an Observer and override the
// methods you need.
type NopObserver struct{}

// ValidationStart returns ctx.
func (NopObserver) ValidationStart(ctx context.Context) context.Context { return ctx }

// ValidationDone does nothing.
func (NopObserver) ValidationDone(context.Context, Decision) {}

// Decision does nothing.
func (NopObserver) Decision(context.Context, Decision) {}

// KeySetFetchStart returns ctx.
func (NopObserver) KeySetFetchStart(ctx context.Context, _ string) context.Context { return ctx }

// KeySetFetch does nothing.
func (NopObserver) KeySetFetch(context.Context, KeySetFetch) {}

// IntrospectionCache does nothing.
func (NopObserver) IntrospectionCache(context.Context, IntrospectionCacheLookup) {}

// IntrospectionCallStart returns ctx.
func (NopObserver) IntrospectionCallStart(ctx context.Context, _ string) context.Context { return ctx }

// IntrospectionCall does nothing.
func (NopObserver) IntrospectionCall(context.Context, IntrospectionCall) {}

// IntrospectionSharedCache does nothing.
func (NopObserver) IntrospectionSharedCache(context.Context, IntrospectionSharedCache) {}

// RateLimit does nothing.
func (NopObserver) RateLimit(context.Context, RateLimitDecision) {}

// LimitLookupStart returns ctx.
func (NopObserver) LimitLookupStart(ctx context.Context, _ string) context.Context { return ctx }

// LimitLookup does nothing.
func (NopObserver) LimitLookup(context.Context, LimitLookup) {}

func (NopObserver) nop() {}

// Observers returns an Observer that hands every event to each of obs in
// turn (nil ones are skipped). Start events are chained: each gets the
// context the one before returned.
func Observers(obs ...Observer) Observer {
	var list multi
	for _, o := range obs {
		switch o := o.(type) {
		case nil:
		case multi:
			list = append(list, o...)
		default:
			list = append(list, o)
		}
	}
	if len(list) == 1 {
		return list[0]
	}
	return list
}

type multi []Observer

func (m multi) ValidationStart(ctx context.Context) context.Context {
	for _, o := range m {
		ctx = o.ValidationStart(ctx)
	}
	return ctx
}

func (m multi) ValidationDone(ctx context.Context, d Decision) {
	for _, o := range m {
		o.ValidationDone(ctx, d)
	}
}

func (m multi) Decision(ctx context.Context, d Decision) {
	for _, o := range m {
		o.Decision(ctx, d)
	}
}

func (m multi) KeySetFetchStart(ctx context.Context, issuer string) context.Context {
	for _, o := range m {
		ctx = o.KeySetFetchStart(ctx, issuer)
	}
	return ctx
}

func (m multi) KeySetFetch(ctx context.Context, f KeySetFetch) {
	for _, o := range m {
		o.KeySetFetch(ctx, f)
	}
}

func (m multi) IntrospectionCache(ctx context.Context, c IntrospectionCacheLookup) {
	for _, o := range m {
		o.IntrospectionCache(ctx, c)
	}
}

func (m multi) IntrospectionCallStart(ctx context.Context, issuer string) context.Context {
	for _, o := range m {
		ctx = o.IntrospectionCallStart(ctx, issuer)
	}
	return ctx
}

func (m multi) IntrospectionCall(ctx context.Context, c IntrospectionCall) {
	for _, o := range m {
		o.IntrospectionCall(ctx, c)
	}
}

func (m multi) IntrospectionSharedCache(ctx context.Context, c IntrospectionSharedCache) {
	for _, o := range m {
		o.IntrospectionSharedCache(ctx, c)
	}
}

func (m multi) RateLimit(ctx context.Context, d RateLimitDecision) {
	for _, o := range m {
		o.RateLimit(ctx, d)
	}
}

func (m multi) LimitLookupStart(ctx context.Context, clientID string) context.Context {
	for _, o := range m {
		ctx = o.LimitLookupStart(ctx, clientID)
	}
	return ctx
}

func (m multi) LimitLookup(ctx context.Context, l LimitLookup) {
	for _, o := range m {
		o.LimitLookup(ctx, l)
	}
}

func (multi) nop() {}

// Outcome is a decision's verdict.
type Outcome string

const (
	// OutcomeAccepted: the request passed.
	OutcomeAccepted Outcome = "accepted"
	// OutcomeRefused: the request was refused.
	OutcomeRefused Outcome = "refused"
)

// Decision is a verdict. A request gets one: refused with the refusal's
// reason, or accepted when it first passes the Checker. When a transport
// admits a request and a later check of the same Checker refuses it
// (Authorize for scope, Confirm for a token the issuer calls inactive),
// both verdicts are recorded.
type Decision struct {
	// Outcome is accepted or refused.
	Outcome Outcome
	// Reason is aegis.ReasonAccepted or the refusal's reason.
	Reason aegis.Reason
	// Class is the refusal's class; empty for an acceptance.
	Class aegis.Class
	// Kind is the caller's kind; empty when no token was validated.
	Kind Kind
	// Method is how the token was validated; empty when it was not.
	Method Method
	// ClientID is the token's client_id when the token was validated.
	ClientID string
	// Cached reports an acceptance served by the verified-token cache.
	Cached bool
}

// KeySetFetch is a dependency event a leaf package reports; see
// aegis.KeySetFetch.
type KeySetFetch = aegis.KeySetFetch

// IntrospectionCacheLookup is a dependency event a leaf package reports; see
// aegis.IntrospectionCacheLookup.
type IntrospectionCacheLookup = aegis.IntrospectionCacheLookup

// IntrospectionCall is a dependency event a leaf package reports; see
// aegis.IntrospectionCall.
type IntrospectionCall = aegis.IntrospectionCall

// IntrospectionSharedCache is a dependency event a leaf package reports;
// see aegis.IntrospectionSharedCache.
type IntrospectionSharedCache = aegis.IntrospectionSharedCache

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
