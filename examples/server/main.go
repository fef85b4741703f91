// Command server is an example API protected by Aegis: the contract other
// tools drive, so its flags and routes are stable.
//
// Usage:
//
//	go run ./examples/server -issuer http://127.0.0.1:4444 -audience https://api.test
//
// Every flag can also be given as an environment variable
// AEGIS_<FLAG_IN_UPPER_SNAKE> (AEGIS_ISSUER, AEGIS_JWKS_URL, ...); a flag on
// the command line wins.
//
// Validation: -mode jwt (the default) checks JWTs locally; introspect asks
// the issuer about every token (RFC 7662); hybrid checks JWTs locally and
// introspects opaque tokens. For Hydra, set -introspection-url to
// {admin}/admin/oauth2/introspect with -introspection-auth none.
//
// Rate limits: -clients-url points at Hydra's admin API, whose client
// metadata.rate_limit_per_minute sets each client's limit; -default-rate-limit
// applies to the others; -redis-url shares the counts across replicas.
//
// Introspection at fleet scale: with -redis-url, the replicas also share
// their introspection answers (stored under each token's SHA-256), so a
// token is introspected once for all of them; -introspection-cache local
// keeps each replica's answers to itself.
//
// Metrics: -metrics-addr serves Prometheus metrics at /metrics on a
// listener of its own (decisions by outcome, reason and kind; key-set
// fetches; introspection; rate limits; Go runtime and process metrics).
//
// Routes: GET /healthz (public), GET /data (data:read), POST /data
// (data:write), GET /whoami (any valid token), GET /admin (data:read, and a
// user who authenticated with acr mfa within the last 300 s: RFC 9470).
// Behind a reverse proxy: -trusted-proxies names the proxies whose
// headers are believed; -forwarded-proto-header and -forwarded-host-header
// the headers that give the URL the client addressed (DPoP proofs' htu);
// -client-cert-header and -client-cert-format the header that carries the
// client's TLS certificate when the proxy terminates TLS (RFC 8705).
//
// With -resource URL (RFC 8707), the audience defaults to it, every 401 and
// 403 challenge carries resource_metadata, and GET
// /.well-known/oauth-protected-resource (with the resource's path
// appended, RFC 9728 §3.1) answers its metadata.
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
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/olympus/aegis/examples/server/api"
	"github.com/olympus/aegis/internal/serverflags"
	"github.com/olympus/aegis/internal/serverflags/flagenv"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/dpop"
	"github.com/olympus/aegis/middleware/resource"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr, nil)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "server:", err)
	}
	os.Exit(flagenv.ExitCode(err, 2))
}

// options are the server's flags: its address and the validation flags it
// shares with cmd/aegis-authz.
type options struct {
	addr string
	proxy
	serverflags.Options
}

// proxy are the flags of the reverse proxy in front of the server, if any.
type proxy struct {
	trustedProxies, protoHeader, hostHeader, certHeader, certFormat string
}

func (p *proxy) register(fs *flag.FlagSet) {
	fs.StringVar(&p.trustedProxies, "trusted-proxies", "", "comma-separated addresses or CIDR prefixes of the reverse proxies whose headers (-forwarded-proto-header, -forwarded-host-header, -client-cert-header) are believed; from any other peer they are ignored")
	fs.StringVar(&p.protoHeader, "forwarded-proto-header", "", "header a trusted proxy sets to the scheme the client used (X-Forwarded-Proto): the scheme of DPoP proofs' htu")
	fs.StringVar(&p.hostHeader, "forwarded-host-header", "", "header a trusted proxy sets to the host the client addressed (X-Forwarded-Host): the host of DPoP proofs' htu")
	fs.StringVar(&p.certHeader, "client-cert-header", "", "header a trusted proxy that terminates TLS sets to the client's certificate, for certificate-bound tokens (RFC 8705): nginx's $ssl_client_escaped_cert, say, as X-SSL-Client-Cert")
	fs.StringVar(&p.certFormat, "client-cert-format", string(middleware.ClientCertEscapedPEM), "how -client-cert-header carries the certificate: escaped-pem (nginx $ssl_client_escaped_cert), base64-der (Caddy {http.request.tls.client.certificate_der_base64}) or xfcc (Envoy x-forwarded-client-cert)")
}

// config is the Guard's Proxy configuration.
func (p proxy) config() (middleware.ProxyConfig, error) {
	c := middleware.ProxyConfig{ProtoHeader: p.protoHeader, HostHeader: p.hostHeader,
		ClientCertHeader: p.certHeader, ClientCertFormat: middleware.ClientCertFormat(p.certFormat)}
	for _, s := range strings.Split(p.trustedProxies, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(s)
		if err != nil {
			addr, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return c, fmt.Errorf("-trusted-proxies: %q is neither an address nor a CIDR prefix", s)
			}
			prefix = netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen())
		}
		c.TrustedProxies = append(c.TrustedProxies, prefix.Masked())
	}
	headers := c.ProtoHeader != "" || c.HostHeader != "" || c.ClientCertHeader != ""
	switch {
	case headers && len(c.TrustedProxies) == 0:
		return c, errors.New("-forwarded-proto-header, -forwarded-host-header and -client-cert-header need -trusted-proxies")
	case !headers && len(c.TrustedProxies) > 0:
		return c, errors.New("-trusted-proxies needs -forwarded-proto-header, -forwarded-host-header or -client-cert-header")
	}
	switch c.ClientCertFormat {
	case "":
		c.ClientCertFormat = middleware.ClientCertEscapedPEM
	case middleware.ClientCertEscapedPEM, middleware.ClientCertBase64DER, middleware.ClientCertXFCC:
	default:
		return c, fmt.Errorf("-client-cert-format %q: want escaped-pem, base64-der or xfcc", p.certFormat)
	}
	return c, nil
}

// parseFlags reads flags, then AEGIS_* variables for the flags not given.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "address to listen on")
	o.proxy.register(fs)
	o.Register(fs)
	flagenv.SetUsage(fs, serverflags.EnvPrefix, "an example API (GET /healthz, GET and POST /data, GET /whoami, GET /admin; with -resource, its RFC 9728 metadata) guarded by Aegis",
		"server -issuer http://127.0.0.1:4444 -audience https://api.test -mode hybrid -introspection-url http://127.0.0.1:4445/admin/oauth2/introspect -introspection-auth none -clients-url http://127.0.0.1:4445")
	if err := o.Parse(fs, args, getenv); err != nil {
		return o, err
	}
	_, err := o.proxy.config()
	return o, err
}

// run serves until ctx ends. ready, when set, gets the listening address.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, ready func(addr string)) error {
	o, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	log, err := o.Logger(stderr)
	if err != nil {
		return err
	}
	stack, err := o.Build(log)
	if err != nil {
		return err
	}
	defer stack.Close()
	stack.Config.Proxy, _ = o.proxy.config() // checked by parseFlags
	guard, err := middleware.New(stack.Config)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	if err := stack.ServeMetrics(); err != nil {
		ln.Close()
		return err
	}
	var meta *resource.Metadata
	if o.Resource != "" {
		meta = &resource.Metadata{Resource: o.Resource, AuthorizationServers: []string{o.Issuer},
			ScopesSupported: api.Scopes, BearerMethodsSupported: []string{"header"},
			TLSClientCertificateBoundAccessTokens: o.certHeader != ""}
		if policy := guard.Checker().DPoPPolicy(""); policy != dpop.Off {
			meta.DPoPSigningAlgValuesSupported = guard.Checker().DPoPVerifier().Algorithms()
			meta.DPoPBoundAccessTokensRequired = policy == dpop.Require
		}
	}
	router, err := api.NewRouter(guard, meta)
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{
		Handler:           router,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	audience := o.Audience
	if audience == "" {
		audience = o.Resource
	}
	log.Info("listening", "addr", ln.Addr().String(), "issuer", o.Issuer, "audience", audience, "mode", o.Mode, "introspection_cache", o.IntrospectionCache)
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	log.Info("shutting down")
	return srv.Shutdown(shutdown)
}
