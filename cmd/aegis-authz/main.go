package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/olympus/aegis/internal/clientcert"
	"github.com/olympus/aegis/internal/serverflags"
	"github.com/olympus/aegis/internal/serverflags/flagenv"
	"github.com/olympus/aegis/middleware"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr, nil)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "aegis-authz:", err)
	}
	os.Exit(flagenv.ExitCode(err, 2))
}

// options are aegis-authz's flags: its own and the validation flags it
// shares with examples/server.
type options struct {
	addr, grpcAddr, routes, defaultPolicy string
	clientCertHeader, clientCertFormat    string
	httpMode                              string
	serverflags.Options
}

// parseFlags reads flags, then AEGIS_* variables for the flags not given.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("aegis-authz", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8081", "address of the HTTP decision service (forward auth: nginx auth_request, Caddy forward_auth, Traefik ForwardAuth; Envoy's HTTP ext_authz)")
	fs.StringVar(&o.grpcAddr, "grpc-addr", "", "address of Envoy's gRPC ext_authz service, envoy.service.auth.v3.Authorization/Check (default: none)")
	fs.StringVar(&o.routes, "routes", "", `JSON file of route rules, the first match winning: {"routes": [{"methods": ["GET"], "path": "/data", "scopes": {"all": ["data:read"]}}, {"path": "/public/*", "public": true}, ...]}`)
	fs.StringVar(&o.defaultPolicy, "default-policy", PolicyDeny, "requests no rule matches: deny (403) or authenticated (any valid token)")
	fs.StringVar(&o.httpMode, "http-mode", HTTPModeAuto, "how HTTP requests are read: auto (X-Forwarded-Method and X-Forwarded-Uri when X-Forwarded-Uri is present, else the request itself), forward-auth (only those headers: nginx, Caddy, Traefik) or envoy (only the request itself: Envoy's HTTP ext_authz, whatever X-Forwarded-* a client sends); set it to your gateway's")
	fs.StringVar(&o.clientCertHeader, "client-cert-header", "", "request header in which the gateway forwards the client's TLS certificate, for certificate-bound tokens (RFC 8705), such as X-SSL-Client-Cert (nginx: proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert); the gateway must overwrite it (default: none)")
	fs.StringVar(&o.clientCertFormat, "client-cert-format", string(clientcert.EscapedPEM), "how -client-cert-header carries the certificate: escaped-pem (nginx $ssl_client_escaped_cert), base64-der (Caddy {http.request.tls.client.certificate_der_base64}) or xfcc (Envoy x-forwarded-client-cert)")
	o.Register(fs)
	flagenv.SetUsage(fs, serverflags.EnvPrefix, "the Aegis decision service: gateways ask it whether a request may pass.\n  It trusts X-Forwarded-Method, X-Forwarded-Uri, X-Forwarded-Proto, X-Forwarded-Host and the\n  -client-cert-header header: let only the gateway reach it, and have it overwrite them.",
		"aegis-authz -issuer http://127.0.0.1:4444 -audience https://api.test -routes routes.json -grpc-addr 127.0.0.1:9191")
	if err := o.Parse(fs, args, getenv); err != nil {
		return o, err
	}
	if _, err := clientcert.ParseFormat(o.clientCertFormat); err != nil {
		return o, fmt.Errorf("-client-cert-format %q: want escaped-pem, base64-der or xfcc", o.clientCertFormat)
	}
	switch o.httpMode {
	case HTTPModeAuto, HTTPModeForwardAuth, HTTPModeEnvoy:
	default:
		return o, fmt.Errorf("-http-mode %q: want auto, forward-auth or envoy", o.httpMode)
	}
	switch o.defaultPolicy {
	case PolicyDeny:
		if o.routes == "" {
			return o, errors.New("-routes FILE is required unless -default-policy authenticated: without rules every request would be refused")
		}
	case PolicyAuthenticated:
	default:
		return o, fmt.Errorf("-default-policy %q: want deny or authenticated", o.defaultPolicy)
	}
	return o, nil
}

// run serves until ctx ends. ready, when set, gets the listening
// addresses (grpcAddr empty without -grpc-addr).
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, ready func(httpAddr, grpcAddr string)) error {
	o, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	log, err := o.Logger(stderr)
	if err != nil {
		return err
	}
	var rules []Rule
	if o.routes != "" {
		if rules, err = LoadRoutes(o.routes); err != nil {
			return fmt.Errorf("-routes %s: %w", o.routes, err)
		}
	}
	stack, err := o.Build(log)
	if err != nil {
		return err
	}
	defer stack.Close()
	guard, err := middleware.New(stack.Config)
	if err != nil {
		return err
	}
	svc, err := NewService(ServiceConfig{Guard: guard, Rules: rules, DefaultPolicy: o.defaultPolicy, Logger: log,
		ClientCertHeader: o.clientCertHeader, ClientCertFormat: clientcert.Format(o.clientCertFormat), HTTPMode: o.httpMode})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	var gln net.Listener
	if o.grpcAddr != "" {
		if gln, err = net.Listen("tcp", o.grpcAddr); err != nil {
			return fmt.Errorf("-grpc-addr: %w", err)
		}
		defer gln.Close()
	}
	if err := stack.ServeMetrics(); err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           svc,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	var gs *grpc.Server
	var hs *health.Server
	grpcAddr := ""
	if gln != nil {
		gs = grpc.NewServer()
		authv3.RegisterAuthorizationServer(gs, svc.Authorization())
		// grpc.health.v1, for Envoy's and Kubernetes' health checks:
		// SERVING for the server ("") and the authorization service.
		hs = health.NewServer()
		hs.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
		healthpb.RegisterHealthServer(gs, hs)
		grpcAddr = gln.Addr().String()
		go func() { errc <- gs.Serve(gln) }()
	}
	log.Info("listening", "addr", ln.Addr().String(), "grpc_addr", grpcAddr, "issuer", o.Issuer, "audience", o.Audience,
		"mode", o.Mode, "introspection_cache", o.IntrospectionCache, "routes", len(rules), "default_policy", o.defaultPolicy,
		"dpop", o.DPoP, "client_cert_header", o.clientCertHeader, "http_mode", o.httpMode)
	log.Info("the decision service trusts X-Forwarded-Method, X-Forwarded-Uri, X-Forwarded-Proto, X-Forwarded-Host and the client certificate header: let only the gateway reach it, and have it overwrite them")
	if ready != nil {
		ready(ln.Addr().String(), grpcAddr)
	}
	select {
	case err := <-errc:
		if gs != nil {
			gs.Stop()
		}
		_ = srv.Close()
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	log.Info("shutting down")
	if gs != nil {
		hs.Shutdown() // NOT_SERVING while the calls in flight finish
		stopped := make(chan struct{})
		go func() { gs.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-shutdown.Done():
			gs.Stop()
		}
	}
	return srv.Shutdown(shutdown)
}
