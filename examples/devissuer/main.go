// Command devissuer is a long-running local issuer for trying Aegis
// without Hydra: the test kit's issuer (jwks/jwkstest) on a fixed address,
// with discovery, a JWK Set, a client_credentials token endpoint and an
// introspection endpoint. It prints (and with -env-file writes) the
// variables examples/server and examples/worker read, and sample tokens:
//
//	go run ./examples/devissuer -env-file /tmp/aegis-dev.env
//
// Its signing key is made at start: tokens of an earlier run do not verify.
// It is for development only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/olympus/aegis/examples/internal/flagenv"
	"github.com/olympus/aegis/jwks/jwkstest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "devissuer:", err)
	}
	os.Exit(flagenv.ExitCode(err, 2))
}

type options struct {
	addr, audience, alg, clientID, clientSecret, envFile string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("devissuer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:4444", "address to serve on (loopback keeps it yours)")
	fs.StringVar(&o.audience, "audience", jwkstest.DefaultAudience, "audience of the tokens it mints")
	fs.StringVar(&o.alg, "alg", "RS256", "signing algorithm: RS256, PS256, ES256, ES384 or EdDSA")
	fs.StringVar(&o.clientID, "client-id", "nightly-data-sync", "client ID of the worker's client")
	fs.StringVar(&o.clientSecret, "client-secret", "dev-secret", "client secret of the worker's client")
	fs.StringVar(&o.envFile, "env-file", "", "also write the exports to this file, for '. FILE' in other shells")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage of devissuer:\n  a local issuer for trying Aegis without Hydra (development only)\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\nExample:\n  devissuer -env-file /tmp/aegis-dev.env\n")
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	switch o.alg {
	case "RS256", "PS256", "ES256", "ES384", "EdDSA":
	default:
		return o, fmt.Errorf("-alg %q: want RS256, PS256, ES256, ES384 or EdDSA", o.alg)
	}
	return o, nil
}

// run serves until ctx ends. ready, when set, gets the issuer's URL once
// the exports are out.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(url string)) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	iss := jwkstest.Start(jwkstest.Config{Algorithm: o.alg, Audience: o.audience, Listener: ln})
	defer iss.Close()
	iss.AddClient(jwkstest.Client{ID: o.clientID, Secret: o.clientSecret, Scopes: []string{"data:read", "data:write"}})

	exports := exportLines(iss, o)
	fmt.Fprintf(stdout, "# Aegis development issuer at %s (Ctrl-C stops it). Paste these, or '. %s':\n%s",
		iss.URL, orDefault(o.envFile, "FILE"), exports)
	if o.envFile != "" {
		if err := os.WriteFile(o.envFile, []byte(exports), 0o600); err != nil {
			return fmt.Errorf("-env-file: %w", err)
		}
	}
	if ready != nil {
		ready(iss.URL)
	}
	<-ctx.Done()
	return nil
}

// exportLines are the shell exports of the issuer, its worker client and
// fresh sample tokens.
func exportLines(iss *jwkstest.Issuer, o options) string {
	var b strings.Builder
	fmt.Fprintf(&b, "export AEGIS_ISSUER=%s AEGIS_AUDIENCE=%s\n", iss.URL, iss.Audience)
	fmt.Fprintf(&b, "export AEGIS_TOKEN_URL=%s AEGIS_CLIENT_ID=%s AEGIS_CLIENT_SECRET=%s\n", iss.TokenURL(), o.clientID, o.clientSecret)
	fmt.Fprintf(&b, "export AEGIS_SAMPLE_M2M_TOKEN=%s\n", iss.M2M(o.clientID, "data:read", "data:write"))
	fmt.Fprintf(&b, "export AEGIS_SAMPLE_USER_TOKEN=%s\n", iss.User("user-42", "web-app", "alice@example.com", "openid", "data:read"))
	fmt.Fprintf(&b, "export AEGIS_SAMPLE_EXPIRED_TOKEN=%s\n", iss.Expired(o.clientID, "data:read"))
	return b.String()
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
