// Command worker is the backend worker of Athena IAM's cookbook: it gets an
// access token with the client_credentials grant and calls the API with it.
// golang.org/x/oauth2/clientcredentials caches the token and fetches a new
// one shortly before it expires, so one token serves many calls.
//
// Usage:
//
//	go run ./examples/worker -token-url http://127.0.0.1:4444/oauth2/token \
//	    -client-id nightly-data-sync -client-secret … \
//	    -audience https://api.test -api http://127.0.0.1:8080
//
// Every flag can also be given as AEGIS_<FLAG_IN_UPPER_SNAKE>
// (AEGIS_CLIENT_SECRET keeps the secret off the command line).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/olympus/aegis/examples/internal/flagenv"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "worker:", err)
	}
	os.Exit(flagenv.ExitCode(err, 1))
}

type options struct {
	tokenURL, clientID, clientSecret, scopes, audience, api string
	calls                                                   int
	timeout                                                 time.Duration
}

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.tokenURL, "token-url", "", "the issuer's token endpoint (required)")
	fs.StringVar(&o.clientID, "client-id", "", "OAuth2 client ID (required)")
	fs.StringVar(&o.clientSecret, "client-secret", "", "OAuth2 client secret (required; prefer AEGIS_CLIENT_SECRET)")
	fs.StringVar(&o.scopes, "scopes", "data:read data:write", "scopes to ask for, space- or comma-separated")
	fs.StringVar(&o.audience, "audience", "", "audience to ask for (the API's identifier)")
	fs.StringVar(&o.api, "api", "http://127.0.0.1:8080", "base URL of the API")
	fs.IntVar(&o.calls, "calls", 3, "how many rounds of calls to make")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "timeout of each HTTP call")
	flagenv.SetUsage(fs, "AEGIS_", "a backend worker: gets a client_credentials token and calls the example API with it",
		"worker -token-url http://127.0.0.1:4444/oauth2/token -client-id nightly-data-sync -audience https://api.test -api http://127.0.0.1:8080 (secret in AEGIS_CLIENT_SECRET)")
	if err := fs.Parse(args); err != nil {
		return o, flagenv.Explain(fs, err)
	}
	if err := flagenv.Apply(fs, "AEGIS_", getenv); err != nil {
		return o, err
	}
	switch {
	case o.tokenURL == "" || o.clientID == "" || o.clientSecret == "":
		return o, errors.New("-token-url, -client-id and -client-secret are required")
	case o.calls < 1:
		return o, errors.New("-calls must be at least 1")
	}
	return o, nil
}

// run calls GET /data and GET /whoami -calls times and fails on any answer
// other than 200.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	cc := clientcredentials.Config{
		ClientID:     o.clientID,
		ClientSecret: o.clientSecret,
		TokenURL:     o.tokenURL,
		Scopes:       strings.FieldsFunc(o.scopes, func(r rune) bool { return r == ' ' || r == ',' }),
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
	if o.audience != "" {
		cc.EndpointParams = url.Values{"audience": {o.audience}}
	}
	// The token source behind this client caches the token until shortly
	// before it expires.
	ctx = context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Timeout: o.timeout})
	client := cc.Client(ctx)
	client.Timeout = o.timeout
	for i := 1; i <= o.calls; i++ {
		for _, path := range []string{"/data", "/whoami"} {
			body, err := getOK(ctx, client, strings.TrimSuffix(o.api, "/")+path)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "call %d: GET %s -> 200 %s\n", i, path, body)
		}
	}
	return nil
}

func getOK(ctx context.Context, client *http.Client, u string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s (WWW-Authenticate: %s)", u, resp.Status, resp.Header.Get("WWW-Authenticate"))
	}
	return strings.TrimSpace(string(body)), nil
}
