package prommetrics_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/prommetrics"
	"github.com/olympus/aegis/scopes"
)

// A Guard counting its decisions in a Prometheus registry served at
// /metrics.
func Example() {
	issuer := jwkstest.Start(jwkstest.Config{}) // stands in for Athena IAM
	defer issuer.Close()

	reg := prometheus.NewRegistry() // or prometheus.DefaultRegisterer
	metrics, err := prommetrics.New(prommetrics.Config{Registerer: reg})
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
	mux := http.NewServeMux()
	mux.Handle("GET /data", guard.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "data")
	}), scopes.All("data:read")))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	for _, token := range []string{issuer.M2M("nightly-data-sync", "data:read"), ""} {
		req := httptest.NewRequest("GET", "/data", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		mux.ServeHTTP(httptest.NewRecorder(), req)
	}

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	lines := bufio.NewScanner(rec.Body)
	for lines.Scan() {
		if strings.HasPrefix(lines.Text(), "aegis_decisions_total{") || strings.HasPrefix(lines.Text(), "aegis_jwks_keys{") {
			fmt.Println(strings.ReplaceAll(lines.Text(), issuer.URL, "https://athena.example.com"))
		}
	}
	// Output:
	// aegis_decisions_total{kind="m2m",outcome="accepted",reason="accepted"} 1
	// aegis_decisions_total{kind="none",outcome="refused",reason="token_missing"} 1
	// aegis_jwks_keys{issuer="https://athena.example.com"} 1
}
