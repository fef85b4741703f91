package prommetrics_test

import (
	"context"
	"testing"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/middleware/core"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/olympus/aegis/middleware/prommetrics"
)

// BenchmarkDecision is the cost a Guard pays per request for its decision
// metric.
func BenchmarkDecision(b *testing.B) {
	m, err := prommetrics.New(prommetrics.Config{Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, bm := range []struct {
		name string
		d    core.Decision
	}{
		{"accepted", core.Decision{Outcome: core.OutcomeAccepted, Reason: aegis.ReasonAccepted,
			Kind: core.KindM2M, Method: core.MethodJWT, ClientID: "nightly-data-sync", Cached: true}},
		{"refused", core.Decision{Outcome: core.OutcomeRefused, Reason: "token_missing", Class: aegis.ClassInvalid}},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m.Decision(ctx, bm.d)
			}
		})
		b.Run(bm.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					m.Decision(ctx, bm.d)
				}
			})
		})
	}
}

// BenchmarkRateLimit is the cost per rate-limited request.
func BenchmarkRateLimit(b *testing.B) {
	m, err := prommetrics.New(prommetrics.Config{Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	d := core.RateLimitDecision{ClientID: "nightly-data-sync", Allowed: true}
	b.ReportAllocs()
	for b.Loop() {
		m.RateLimit(ctx, d)
	}
}
