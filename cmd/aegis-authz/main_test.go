package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/olympus/aegis/internal/serverflags/flagenv"
	"github.com/olympus/aegis/internal/testutil"
	"github.com/olympus/aegis/jwks/jwkstest"
)

func writeRoutes(t *testing.T, content string) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "routes.json")
	require.NoError(t, os.WriteFile(name, []byte(content), 0o600))
	return name
}

// startAuthz runs the binary's run until the test ends and returns its
// HTTP and gRPC addresses.
func startAuthz(t *testing.T, args []string, env map[string]string) (string, string, *testutil.Buffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &testutil.Buffer{}
	type addrs struct{ http, grpc string }
	addrc := make(chan addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, func(k string) string { return env[k] }, logs, func(h, g string) { addrc <- addrs{h, g} })
	}()
	var a addrs
	select {
	case a = <-addrc:
	case err := <-done:
		t.Fatalf("aegis-authz stopped: %v\n%s", err, logs.String())
	}
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	return a.http, a.grpc, logs
}

// TestAuthzEndToEnd: the binary's flags and AEGIS_* variables wire the
// routes file, the HTTP service and the gRPC service together.
func TestAuthzEndToEnd(t *testing.T) {
	iss := newIssuer(t)
	routes := writeRoutes(t, issueRoutes)
	tests := []struct {
		name string
		args []string
		env  map[string]string
	}{
		{name: "flags", args: []string{"-addr", "127.0.0.1:0", "-grpc-addr", "127.0.0.1:0", "-issuer", iss.URL, "-audience", iss.Audience, "-routes", routes}},
		{name: "environment", env: map[string]string{"AEGIS_ADDR": "127.0.0.1:0", "AEGIS_GRPC_ADDR": "127.0.0.1:0", "AEGIS_ISSUER": iss.URL,
			"AEGIS_AUDIENCE": iss.Audience, "AEGIS_ROUTES": routes, "AEGIS_DEFAULT_POLICY": "deny"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			httpAddr, grpcAddr, logs := startAuthz(t, tc.args, tc.env)
			assert.Regexp(t, `msg=listening addr=127\.0\.0\.1:\d+ grpc_addr=127\.0\.0\.1:\d+ .*routes=5 default_policy=deny`, logs.String())
			assert.Contains(t, logs.String(), "let only the gateway reach it")

			resp, err := http.Get("http://" + httpAddr + HealthPath)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)

			token := iss.M2M("reader", "data:read")
			rec := forwarded("GET", "/data", token)
			req, err := http.NewRequest(http.MethodGet, "http://"+httpAddr+"/auth", nil)
			require.NoError(t, err)
			req.Header = rec.Header
			resp, err = http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "reader", resp.Header.Get(HeaderSubject))
			assert.Equal(t, []string{""}, resp.Header.Values(HeaderEmail), "present and empty on the wire")

			conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			require.NoError(t, err)
			defer conn.Close()
			a := askGRPC(t, authv3.NewAuthorizationClient(conn), "GET", "/data", bearer(token))
			assert.Equal(t, http.StatusOK, a.status)
			assert.Equal(t, "reader", a.header.Get(HeaderSubject))
			a = askGRPC(t, authv3.NewAuthorizationClient(conn), "POST", "/data", bearer(token))
			assert.Equal(t, http.StatusForbidden, a.status)

			// grpc.health.v1, for Envoy's and Kubernetes' checks.
			hc := healthpb.NewHealthClient(conn)
			for _, service := range []string{"", "envoy.service.auth.v3.Authorization"} {
				h, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: service})
				require.NoError(t, err, service)
				assert.Equal(t, healthpb.HealthCheckResponse_SERVING, h.GetStatus(), service)
			}
			_, err = hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "unknown.Service"})
			assert.Equal(t, codes.NotFound, status.Code(err))
		})
	}
}

func TestAuthzWithoutGRPC(t *testing.T) {
	iss := newIssuer(t)
	_, grpcAddr, logs := startAuthz(t, []string{"-addr", "127.0.0.1:0", "-issuer", iss.URL, "-audience", iss.Audience,
		"-default-policy", "authenticated"}, nil)
	assert.Empty(t, grpcAddr)
	assert.Contains(t, logs.String(), `grpc_addr="" `)
	assert.Contains(t, logs.String(), "routes=0 default_policy=authenticated")
}

func TestAuthzFlagErrors(t *testing.T) {
	routes := writeRoutes(t, issueRoutes)
	bad := writeRoutes(t, `{"routes": [{"path": "/a"}, {"path": "/b", "methods": []}]}`)
	base := []string{"-addr", "127.0.0.1:0", "-issuer", "https://i.example"}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{name: "no issuer", args: []string{"-routes", routes}, want: "-issuer (or AEGIS_ISSUER) is required"},
		{name: "unknown HTTP mode", args: append(base, "-routes", routes, "-http-mode", "gateway"), want: `-http-mode "gateway": want auto, forward-auth or envoy`},
		{name: "no routes under deny", args: base, want: "-routes FILE is required unless -default-policy authenticated"},
		{name: "unknown default policy", args: append(base, "-default-policy", "allow"), want: `-default-policy "allow": want deny or authenticated`},
		{name: "unknown default policy in the environment", args: base, env: map[string]string{"AEGIS_DEFAULT_POLICY": "open", "AEGIS_ROUTES": routes},
			want: `-default-policy "open"`},
		{name: "missing routes file", args: append(base, "-routes", filepath.Join(t.TempDir(), "none.json")), want: "no such file"},
		{name: "invalid routes file names the rule", args: append(base, "-routes", bad),
			want: `-routes ` + bad + `: routes[1] (path "/b"): "methods" is empty: omit it to match every method`},
		{name: "bad address", args: append(base, "-routes", routes, "-addr", "nonsense"), want: "nonsense"},
		{name: "bad gRPC address", args: append(base, "-routes", routes, "-grpc-addr", "nonsense"), want: "-grpc-addr"},
		{name: "bad metrics address", args: append(base, "-routes", routes, "-metrics-addr", "nonsense"), want: "-metrics-addr"},
		{name: "shared validation flags are checked", args: append(base, "-routes", routes, "-mode", "magic"), want: "-mode"},
		{name: "bad log level", args: append(base, "-routes", routes, "-log-level", "loud"), want: "-log-level"},
		{name: "unknown client certificate format", args: append(base, "-routes", routes, "-client-cert-header", "X-SSL-Client-Cert", "-client-cert-format", "pem"),
			want: `-client-cert-format "pem": want escaped-pem, base64-der or xfcc`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(context.Background(), tc.args, func(k string) string { return tc.env[k] }, &stderr, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Equal(t, 2, flagenv.ExitCode(err, 2))
		})
	}
}

// TestAuthzHelp: -h exits 0 and lists every flag with its AEGIS_*
// variable, the shared ones included.
func TestAuthzHelp(t *testing.T) {
	var help bytes.Buffer
	err := run(context.Background(), []string{"-h"}, func(string) string { return "" }, &help, nil)
	require.ErrorIs(t, err, flag.ErrHelp)
	assert.Equal(t, 0, flagenv.ExitCode(err, 2))
	flags := regexp.MustCompile(`(?m)^  -([a-z-]+)`).FindAllStringSubmatch(help.String(), -1)
	names := make([]string, 0, len(flags))
	for _, f := range flags {
		names = append(names, f[1])
		assert.Contains(t, help.String(), flagenv.Name("AEGIS_", f[1])+" ", "the variable of -%s", f[1])
	}
	for _, want := range []string{"addr", "grpc-addr", "routes", "default-policy", "http-mode", "issuer", "audience", "jwks-url", "mode",
		"introspection-url", "introspection-auth", "introspection-client-id", "introspection-client-secret", "introspection-cache-ttl",
		"introspection-cache", "clients-url", "clients-cache-ttl", "redis-url", "default-rate-limit", "rate-limit-failure",
		"metrics-addr", "log-level", "allow-insecure-http", "client-cert-header", "client-cert-format", "dpop", "dpop-nonce"} {
		assert.Contains(t, names, want)
	}
	assert.Contains(t, help.String(), "127.0.0.1:8081")
	assert.Contains(t, help.String(), "let only the gateway reach it")
}

// TestAuthzClientCertHeader: -client-cert-header (or
// AEGIS_CLIENT_CERT_HEADER) and -client-cert-format name where the
// gateway forwards the client certificate.
func TestAuthzClientCertHeader(t *testing.T) {
	iss := newIssuer(t)
	cert := jwkstest.NewClientCertificate("svc").Leaf
	bound := iss.MTLSBound("mtls-client", cert, "data:read")
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		value string
	}{
		{name: "flags, base64 DER", args: []string{"-client-cert-header", "X-Client-Cert", "-client-cert-format", "base64-der"},
			value: base64.StdEncoding.EncodeToString(cert.Raw)},
		{name: "environment, escaped PEM by default", env: map[string]string{"AEGIS_CLIENT_CERT_HEADER": "X-Client-Cert"}, value: jwkstest.EscapedPEM(cert)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-addr", "127.0.0.1:0", "-issuer", iss.URL, "-audience", iss.Audience, "-default-policy", "authenticated"}, tc.args...)
			httpAddr, _, logs := startAuthz(t, args, tc.env)
			assert.Contains(t, logs.String(), "client_cert_header=X-Client-Cert")
			for _, withCert := range []bool{true, false} {
				req, err := http.NewRequest(http.MethodGet, "http://"+httpAddr+"/auth", nil)
				require.NoError(t, err)
				req.Header = forwarded("GET", "/data", bound).Header
				req.Header.Set(HeaderForwardedProto, "https")
				if withCert {
					req.Header.Set("X-Client-Cert", tc.value)
				}
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				resp.Body.Close()
				assert.Equal(t, map[bool]int{true: 200, false: 401}[withCert], resp.StatusCode)
			}
		})
	}
}
