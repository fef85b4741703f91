package otelmetrics

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/middleware/core"
)

// instrumentationName names Aegis's tracer.
const instrumentationName = "github.com/olympus/aegis/middleware"

// Tracing is a core.Observer that traces validation, key-set fetches,
// introspection calls and limit lookups with OpenTelemetry spans, children
// of the span in the request's context: aegis.validate, aegis.jwks.fetch,
// aegis.introspect and aegis.ratelimit.lookup. Combine it with metrics by
// core.Observers:
//
//	Observer: core.Observers(metrics, otelmetrics.NewTracing(otel.GetTracerProvider()))
//
// Spans carry no token: only reason codes, kinds, client IDs, issuers and
// key-set URLs.
type Tracing struct {
	core.NopObserver
	tracer trace.Tracer
}

// NewTracing returns a Tracing observer using tp.
func NewTracing(tp trace.TracerProvider) *Tracing {
	return &Tracing{tracer: tp.Tracer(instrumentationName)}
}

type spanKey int

const (
	validateSpan spanKey = iota
	fetchSpan
	introspectSpan
	lookupSpan
)

func (t *Tracing) start(ctx context.Context, key spanKey, name string, attrs ...attribute.KeyValue) context.Context {
	ctx, span := t.tracer.Start(ctx, name, trace.WithAttributes(attrs...))
	return context.WithValue(ctx, key, span)
}

// end ends the span started under key, failed when err is not nil.
func end(ctx context.Context, key spanKey, err error, attrs ...attribute.KeyValue) {
	span, ok := ctx.Value(key).(trace.Span)
	if !ok {
		return
	}
	span.SetAttributes(attrs...)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// ValidationStart starts aegis.validate.
func (t *Tracing) ValidationStart(ctx context.Context) context.Context {
	return t.start(ctx, validateSpan, "aegis.validate")
}

// ValidationDone ends aegis.validate with the verdict; a refusal of class
// unavailable marks the span failed.
func (t *Tracing) ValidationDone(ctx context.Context, d core.Decision) {
	var failed error
	if d.Class == aegis.ClassUnavailable {
		failed = aegis.Refuse(d.Reason, nil)
	}
	attrs := []attribute.KeyValue{attribute.String("aegis.outcome", string(d.Outcome)), attribute.String("aegis.reason", string(d.Reason))}
	if d.Outcome == core.OutcomeAccepted {
		attrs = append(attrs, attribute.String("aegis.kind", string(d.Kind)),
			attribute.String("aegis.auth_method", string(d.Method)), attribute.Bool("aegis.cached", d.Cached))
	}
	end(ctx, validateSpan, failed, attrs...)
}

// KeySetFetchStart starts aegis.jwks.fetch.
func (t *Tracing) KeySetFetchStart(ctx context.Context, issuer string) context.Context {
	return t.start(ctx, fetchSpan, "aegis.jwks.fetch", attribute.String("aegis.issuer", issuer))
}

// KeySetFetch ends aegis.jwks.fetch.
func (t *Tracing) KeySetFetch(ctx context.Context, f core.KeySetFetch) {
	end(ctx, fetchSpan, f.Err, attribute.String("url.full", f.URL), attribute.Int("aegis.keys", f.Keys))
}

// IntrospectionCallStart starts aegis.introspect.
func (t *Tracing) IntrospectionCallStart(ctx context.Context, issuer string) context.Context {
	return t.start(ctx, introspectSpan, "aegis.introspect", attribute.String("aegis.issuer", issuer))
}

// IntrospectionCall ends aegis.introspect.
func (t *Tracing) IntrospectionCall(ctx context.Context, c core.IntrospectionCall) {
	end(ctx, introspectSpan, c.Err, attribute.Bool("aegis.active", c.Active))
}

// LimitLookupStart starts aegis.ratelimit.lookup.
func (t *Tracing) LimitLookupStart(ctx context.Context, _ string) context.Context {
	return t.start(ctx, lookupSpan, "aegis.ratelimit.lookup")
}

// LimitLookup ends aegis.ratelimit.lookup.
func (t *Tracing) LimitLookup(ctx context.Context, l core.LimitLookup) {
	end(ctx, lookupSpan, l.Err, attribute.Bool("aegis.limit_found", l.Found))
}
