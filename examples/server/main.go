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
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/olympus/aegis/examples/server/api"
	"github.com/olympus/aegis/internal/serverflags"
	"github.com/olympus/aegis/internal/serverflags/flagenv"
	"github.com/olympus/aegis/middleware"
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
	serverflags.Options
}

// parseFlags reads flags, then AEGIS_* variables for the flags not given.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "address to listen on")
	o.Register(fs)
	flagenv.SetUsage(fs, serverflags.EnvPrefix, "an example API (GET /healthz, GET and POST /data, GET /whoami, GET /admin; with -resource, its RFC 9728 metadata) guarded by Aegis",
		"server -issuer http://127.0.0.1:4444 -audience https://api.test -mode hybrid -introspection-url http://127.0.0.1:4445/admin/oauth2/introspect -introspection-auth none -clients-url http://127.0.0.1:4445")
	err := o.Parse(fs, args, getenv)
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
			ScopesSupported: api.Scopes, BearerMethodsSupported: []string{"header"}}
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
