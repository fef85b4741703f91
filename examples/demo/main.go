// Command demo runs the whole job in one process, with no setup: an embedded
// issuer (Aegis's test kit), the example API behind an Aegis Guard, and a
// backend worker using the client_credentials grant. It prints what each
// call gets, then the metrics an operator would scrape, and exits non-zero
// if anything is not as expected.
//
//	go run ./examples/demo
package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/olympus/aegis/examples/server/api"
	"github.com/olympus/aegis/introspect"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/middleware/prommetrics"
	"github.com/olympus/aegis/ratelimit"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

type demo struct {
	out    io.Writer
	api    string
	failed int
	steps  int
}

func run(ctx context.Context, out io.Writer) error {
	fmt.Fprintln(out, "Aegis demo: starting an issuer, the example API and a backend worker…")
	issuer := jwkstest.Start(jwkstest.Config{})
	defer issuer.Close()
	issuer.AddClient(jwkstest.Client{ID: "nightly-data-sync", Secret: "demo-secret", Scopes: []string{"data:read", "data:write"}})
	// What Hydra's admin API would say of metadata.rate_limit_per_minute.
	limits, err := ratelimit.NewStatic(map[string]int{"nightly-data-sync": 600, "chatty-reporter": 3})
	if err != nil {
		return err
	}

	// What an operator scrapes: Aegis's metrics in a Prometheus registry.
	registry := prometheus.NewRegistry()
	metrics, err := prommetrics.New(prommetrics.Config{Registerer: registry})
	if err != nil {
		return err
	}

	// JWTs are checked locally (and cached once verified); opaque tokens
	// are introspected (RFC 7662).
	jwt, err := core.NewJWT(core.JWTConfig{Issuer: issuer.URL, Audience: issuer.Audience})
	if err != nil {
		return err
	}
	opaque, err := core.NewIntrospection(introspect.Config{
		Issuer: issuer.URL, Audience: issuer.Audience, Endpoint: issuer.IntrospectionURL(),
	})
	if err != nil {
		return err
	}
	guard, err := middleware.New(middleware.Config{
		Validator: core.Hybrid(core.Cached(jwt, core.CacheConfig{}), opaque),
		Logger:    slog.New(slog.DiscardHandler),
		Observer:  metrics,
		// Per-client limits; Athena keeps them in each client's metadata.
		RateLimit: &middleware.RateLimitConfig{Limits: limits},
	})
	if err != nil {
		return err
	}
	router, err := api.NewRouter(guard, nil)
	if err != nil {
		return err
	}
	srv := httptest.NewServer(router)
	defer srv.Close()
	metricsSrv := httptest.NewServer(promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	defer metricsSrv.Close()

	d := &demo{out: out, api: srv.URL}
	fmt.Fprintf(out, "Aegis demo: an issuer, an API guarded by Aegis and a backend worker, in one process.\n\n")
	fmt.Fprintf(out, "  issuer    %s (signing key %s, %s)\n", issuer.URL, issuer.CurrentKey().ID, issuer.CurrentKey().Algorithm)
	fmt.Fprintf(out, "  API       %s (accepts tokens from the issuer for audience %s;\n", srv.URL, issuer.Audience)
	fmt.Fprintf(out, "            JWTs checked locally, opaque tokens by introspection)\n\n")

	// 1. The worker of Athena's cookbook: client_credentials, token cached.
	d.step("A backend worker (client_credentials) reads and writes data")
	cc := clientcredentials.Config{
		ClientID: "nightly-data-sync", ClientSecret: "demo-secret", TokenURL: issuer.TokenURL(),
		Scopes: []string{"data:read", "data:write"}, AuthStyle: oauth2.AuthStyleInHeader,
		EndpointParams: url.Values{"audience": {issuer.Audience}},
	}
	worker := cc.Client(ctx)
	d.expect(worker, http.MethodGet, "/data", "", http.StatusOK)
	d.expect(worker, http.MethodPost, "/data", "", http.StatusOK)
	d.expect(worker, http.MethodGet, "/whoami", "", http.StatusOK)
	d.note("the worker made 3 calls with %d token request(s): its token is cached", issuer.TokenRequests())

	plain := srv.Client()
	d.step("An app calls for a person (authorization_code token with an email)")
	d.expect(plain, http.MethodGet, "/whoami", issuer.User("user-42", "web-app", "alice@example.com", "openid", "data:read"), http.StatusOK)

	d.step("A read-only token tries to write: missing scope")
	d.expect(plain, http.MethodPost, "/data", issuer.M2M("report-reader", "data:read"), http.StatusForbidden)

	d.step("A tampered token: a claim changed after signing")
	d.expect(plain, http.MethodGet, "/data", tamper(issuer.M2M("report-reader", "data:read")), http.StatusUnauthorized)

	d.step("An expired token")
	d.expect(plain, http.MethodGet, "/whoami", issuer.Expired("nightly-data-sync", "data:read"), http.StatusUnauthorized)

	d.step("An opaque token (ory_at_…), confirmed by introspection")
	d.expect(plain, http.MethodGet, "/whoami", issuer.OpaqueM2M("report-reader", "data:read"), http.StatusOK)

	d.step("A revoked opaque token")
	revoked := issuer.OpaqueM2M("report-reader", "data:read")
	issuer.Revoke(revoked)
	d.expect(plain, http.MethodGet, "/data", revoked, http.StatusUnauthorized)
	d.note("%d introspection calls so far; a JWT never needs one", issuer.IntrospectionCalls())

	d.step("A client limited to 3 requests a minute makes 4")
	chatty := issuer.M2M("chatty-reporter", "data:read")
	for range 3 {
		d.expect(plain, http.MethodGet, "/data", chatty, http.StatusOK)
	}
	d.expect(plain, http.MethodGet, "/data", chatty, http.StatusTooManyRequests)

	d.step("No token at all")
	d.expect(plain, http.MethodGet, "/data", "", http.StatusUnauthorized)

	fmt.Fprintln(out)
	if d.failed > 0 {
		return fmt.Errorf("%d of %d steps did not go as expected", d.failed, d.steps)
	}
	fmt.Fprintf(out, "All %d steps went as expected.\n\n", d.steps)
	return printMetrics(out, metricsSrv.URL+"/metrics")
}

// printMetrics scrapes url and prints Aegis's series, histogram buckets
// left out.
func printMetrics(out io.Writer, url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	fmt.Fprintln(out, "What an operator scrapes from /metrics now (aegis_* series; histogram buckets left out):")
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "aegis_") && !strings.Contains(line, "_bucket{") {
			fmt.Fprintf(out, "  %s\n", line)
		}
	}
	return sc.Err()
}

// tamper swaps the token's claims for those of another token signed by the
// same key, keeping the first signature: a classic forgery attempt.
func tamper(token string) string {
	parts := strings.Split(token, ".")
	claims := strings.NewReplacer("report-reader", "admin-console").Replace(decode(parts[1]))
	return parts[0] + "." + encode(claims) + "." + parts[2]
}

func (d *demo) step(title string) {
	d.steps++
	fmt.Fprintf(d.out, "%d. %s\n", d.steps, title)
}

func (d *demo) note(format string, args ...any) {
	fmt.Fprintf(d.out, "     (%s)\n", fmt.Sprintf(format, args...))
}

func (d *demo) expect(client *http.Client, method, path, token string, want int) {
	req, err := http.NewRequest(method, d.api+path, nil)
	if err != nil {
		d.fail(err)
		return
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		d.fail(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	mark := "ok"
	if resp.StatusCode != want {
		mark = fmt.Sprintf("UNEXPECTED, wanted %d", want)
		d.failed++
	}
	fmt.Fprintf(d.out, "   %-4s %-7s -> %d %s [%s]\n", method, path, resp.StatusCode, http.StatusText(resp.StatusCode), mark)
	if resp.StatusCode == http.StatusOK {
		fmt.Fprintf(d.out, "        %s\n", strings.TrimSpace(string(body)))
	}
	if c := resp.Header.Get("WWW-Authenticate"); c != "" {
		fmt.Fprintf(d.out, "        WWW-Authenticate: %s\n", c)
	}
	if rl := resp.Header.Get("RateLimit"); rl != "" && resp.Header.Get("X-RateLimit-Limit") != "600" {
		fmt.Fprintf(d.out, "        RateLimit-Policy: %s  RateLimit: %s", resp.Header.Get("RateLimit-Policy"), rl)
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			fmt.Fprintf(d.out, "  Retry-After: %s", ra)
		}
		fmt.Fprintln(d.out)
	}
}

func (d *demo) fail(err error) {
	d.failed++
	fmt.Fprintf(d.out, "   error: %v\n", err)
}
