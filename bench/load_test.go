package bench_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/olympus/aegis/bench"
	"github.com/olympus/aegis/jwks/jwkstest"
)

// TestRunLoadNoAuth drives the no-auth stack for about a second over
// loopback and checks what the generator reports.
func TestRunLoadNoAuth(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	hot := bench.Mint(iss, 2, func(int) string { return "worker" })
	fresh := bench.Mint(iss, 8, func(int) string { return "batch" })
	srv := httptest.NewServer(bench.NoAuth())
	defer srv.Close()

	res, err := bench.RunLoad(context.Background(), bench.LoadConfig{
		URL:         srv.URL + "/data",
		Concurrency: 4,
		Duration:    time.Second,
		Reuse:       0.5,
		Hot:         hot,
		Fresh:       fresh,
		Seed:        1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.Requests < 100 || res.Errors != 0 || res.FirstError != "" {
		t.Fatalf("requests %d, errors %d (%s)", res.Requests, res.Errors, res.FirstError)
	}
	if res.Elapsed < time.Second || res.Elapsed > 5*time.Second {
		t.Errorf("elapsed %v, want about 1s", res.Elapsed)
	}
	if res.P50 <= 0 || res.P99 < res.P50 || res.RPS <= 0 {
		t.Errorf("p50 %v, p99 %v, rps %v", res.P50, res.P99, res.RPS)
	}
	// Half the requests want a fresh token; 8 were minted, the rest reuse.
	if res.Fresh != 8 || res.FreshReused < 1 {
		t.Errorf("fresh %d, reused %d", res.Fresh, res.FreshReused)
	}
	table := bench.Markdown([]bench.Row{{Stack: "no-auth", Result: res}})
	if !strings.Contains(table, "| no-auth |") || !strings.Contains(table, "1.00×") {
		t.Errorf("table:\n%s", table)
	}
}

// TestRunLoadCountsRefusals: any status but 200 is an error, and the
// request bound holds.
func TestRunLoadCountsRefusals(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	res, err := bench.RunLoad(context.Background(), bench.LoadConfig{
		URL: srv.URL, Concurrency: 2, Duration: 5 * time.Second, MaxRequests: 50,
		Reuse: 1, Hot: []string{"a.b.c"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 50 || res.Errors != 50 || res.FirstError != "status 401" {
		t.Errorf("%+v", res)
	}
}

// TestRunLoadLoopbackOnly: no request leaves the machine.
func TestRunLoadLoopbackOnly(t *testing.T) {
	for _, u := range []string{"http://192.0.2.1/data", "http://localhost:1/data", "https://127.0.0.1/data", "http://example.com/"} {
		if _, err := bench.RunLoad(context.Background(), bench.LoadConfig{URL: u, Reuse: 1, Hot: []string{"x"}}); err == nil {
			t.Errorf("%s: accepted", u)
		}
	}
}
