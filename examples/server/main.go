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
// Routes: GET /healthz (public), GET /data (data:read), POST /data
// (data:write), GET /whoami (any valid token).
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

	"github.com/olympus/aegis/examples/internal/flagenv"
	"github.com/olympus/aegis/examples/server/api"
	"github.com/olympus/aegis/middleware"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr, nil); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "server:", err)
		}
		os.Exit(2)
	}
}

type options struct {
	addr, issuer, audience, jwksURL, logLevel string
}

// parseFlags reads flags, then AEGIS_* variables for the flags not given.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&o.issuer, "issuer", "", "issuer identifier: the exact iss of accepted tokens (required)")
	fs.StringVar(&o.audience, "audience", "", "audience every token must carry in aud (empty: no audience check)")
	fs.StringVar(&o.jwksURL, "jwks-url", "", "the issuer's JWK Set URL (default: discovered from the issuer)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if err := flagenv.Apply(fs, "AEGIS_", getenv); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.issuer == "" {
		return o, errors.New("-issuer (or AEGIS_ISSUER) is required")
	}
	return o, nil
}

// run serves until ctx ends. ready, when set, gets the listening address.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, ready func(addr string)) error {
	o, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg := middleware.Config{Issuer: o.issuer, Audience: o.audience, JWKSURL: o.jwksURL, Logger: log}
	if o.audience == "" {
		cfg.AnyAudience = true
		log.Warn("no -audience given: tokens for any audience are accepted")
	}
	guard, err := middleware.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           api.NewRouter(guard),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "issuer", o.issuer, "audience", o.audience)
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
