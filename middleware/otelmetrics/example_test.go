package otelmetrics_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/otelmetrics"
	"github.com/olympus/aegis/scopes"
)

// A Guard counting its decisions with OpenTelemetry. A real service passes
// its MeterProvider (otel.GetMeterProvider(), or an SDK provider with an
// OTLP or Prometheus exporter); a ManualReader shows what is recorded.
func Example() {
	issuer := jwkstest.Start(jwkstest.Config{}) // stands in for Athena IAM
	defer issuer.Close()

	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer provider.Shutdown(context.Background())

	metrics, err := otelmetrics.New(otelmetrics.Config{MeterProvider: provider})
	if err != nil {
		panic(err)
	}
	guard, err := middleware.New(middleware.Config{
		Issuer:   issuer.URL,
		Audience: issuer.Audience,
		Observer: metrics,
	})
	if err != nil {
		panic(err)
	}
	h := guard.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), scopes.All("data:read"))
	for _, token := range []string{issuer.M2M("nightly-data-sync", "data:read"), ""} {
		req := httptest.NewRequest("GET", "/data", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		h.ServeHTTP(httptest.NewRecorder(), req)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		panic(err)
	}
	var lines []string
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if m.Name != "aegis.decisions" {
			continue
		}
		for _, p := range m.Data.(metricdata.Sum[int64]).DataPoints {
			lines = append(lines, fmt.Sprintf("%s{%s} %d", m.Name, p.Attributes.Encoded(attribute.DefaultEncoder()), p.Value))
		}
	}
	slices.Sort(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// aegis.decisions{aegis.kind=m2m,aegis.outcome=accepted,aegis.reason=accepted} 1
	// aegis.decisions{aegis.kind=none,aegis.outcome=refused,aegis.reason=token_missing} 1
}
