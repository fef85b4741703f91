package otelmetrics_test

import (
	"context"
	"testing"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/middleware/core"

	"go.opentelemetry.io/otel/metric/noop"

	"github.com/olympus/aegis/middleware/otelmetrics"
)

// BenchmarkDecision is the cost a Guard pays per request for its decision
// metric: with the OpenTelemetry SDK (a ManualReader), and with the no-op
// provider (this package's own share).
func BenchmarkDecision(b *testing.B) {
	sdk, _ := newMetrics(b, otelmetrics.Config{})
	nop, err := otelmetrics.New(otelmetrics.Config{MeterProvider: noop.NewMeterProvider()})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, m := range []struct {
		name string
		m    *otelmetrics.Metrics
	}{{"sdk", sdk}, {"noop", nop}} {
		for _, bm := range []struct {
			name string
			d    core.Decision
		}{
			{"accepted", core.Decision{Outcome: core.OutcomeAccepted, Reason: aegis.ReasonAccepted,
				Kind: core.KindM2M, Method: core.MethodJWT, ClientID: "nightly-data-sync", Cached: true}},
			{"refused", core.Decision{Outcome: core.OutcomeRefused, Reason: "token_missing", Class: aegis.ClassInvalid}},
		} {
			b.Run(m.name+"/"+bm.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					m.m.Decision(ctx, bm.d)
				}
			})
			b.Run(m.name+"/"+bm.name+"/parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						m.m.Decision(ctx, bm.d)
					}
				})
			})
		}
	}
}

// BenchmarkRateLimit is the cost per rate-limited request, SDK included.
func BenchmarkRateLimit(b *testing.B) {
	m, _ := newMetrics(b, otelmetrics.Config{})
	ctx := context.Background()
	d := core.RateLimitDecision{ClientID: "nightly-data-sync", Allowed: true}
	b.ReportAllocs()
	for b.Loop() {
		m.RateLimit(ctx, d)
	}
}
