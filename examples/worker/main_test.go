package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/examples/internal/flagenv"
	"github.com/olympus/aegis/examples/server/api"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
)

func TestWorkerCallsTheAPIWithOneCachedToken(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	iss.AddClient(jwkstest.Client{ID: "nightly-data-sync", Secret: "s3cret", Scopes: []string{"data:read", "data:write"}})
	guard, err := middleware.New(middleware.Config{Issuer: iss.URL, Audience: iss.Audience})
	require.NoError(t, err)
	router, err := api.NewRouter(guard, nil)
	require.NoError(t, err)
	srv := httptest.NewServer(router)
	defer srv.Close()

	var out bytes.Buffer
	env := map[string]string{"AEGIS_CLIENT_SECRET": "s3cret"}
	err = run(context.Background(), []string{"-token-url", iss.TokenURL(), "-client-id", "nightly-data-sync",
		"-audience", iss.Audience, "-api", srv.URL, "-calls", "3"}, func(k string) string { return env[k] }, &out, &out)
	require.NoError(t, err, out.String())
	assert.Equal(t, 6, strings.Count(out.String(), "-> 200"))
	assert.Contains(t, out.String(), `"kind":"m2m"`)
	assert.Equal(t, int64(1), iss.TokenRequests(), "the token must be reused across calls")
}

func TestWorkerFailures(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	iss.AddClient(jwkstest.Client{ID: "reader", Secret: "s", Scopes: []string{"data:read"}})
	guard, err := middleware.New(middleware.Config{Issuer: iss.URL, Audience: iss.Audience})
	require.NoError(t, err)
	router, err := api.NewRouter(guard, nil)
	require.NoError(t, err)
	srv := httptest.NewServer(router)
	defer srv.Close()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "missing flags", args: []string{"-client-id", "x"}, want: "required"},
		{name: "zero calls", args: []string{"-token-url", iss.TokenURL(), "-client-id", "reader", "-client-secret", "s", "-calls", "0"}, want: "-calls"},
		{name: "wrong secret", args: []string{"-token-url", iss.TokenURL(), "-client-id", "reader", "-client-secret", "bad", "-api", srv.URL}, want: "invalid_client"},
		{name: "wrong audience", args: []string{"-token-url", iss.TokenURL(), "-client-id", "reader", "-client-secret", "s", "-scopes", "data:read",
			"-audience", "https://elsewhere.test", "-api", srv.URL}, want: "401"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), tc.args, func(string) string { return "" }, &out, &out)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestWorkerHelp: -h ends with flag.ErrHelp (exit status 0) and lists
// every flag's AEGIS_* variable with an example (issue 14, point 4).
func TestWorkerHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-h"}, func(string) string { return "" }, &stdout, &stderr)
	require.ErrorIs(t, err, flag.ErrHelp)
	assert.Equal(t, 0, flagenv.ExitCode(err, 1))
	for _, want := range []string{"AEGIS_TOKEN_URL", "AEGIS_CLIENT_ID", "AEGIS_CLIENT_SECRET", "AEGIS_SCOPES", "AEGIS_AUDIENCE", "AEGIS_API", "AEGIS_CALLS", "AEGIS_TIMEOUT", "Example:\n  worker -token-url"} {
		assert.Contains(t, stderr.String(), want)
	}
	assert.Equal(t, 1, flagenv.ExitCode(errors.New("token endpoint down"), 1), "a failure exits 1, as before")
}
