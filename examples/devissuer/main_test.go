package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/scopes"
)

// exports parses "export K=V K=V" lines.
func exports(t *testing.T, text string) map[string]string {
	t.Helper()
	vars := map[string]string{}
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "export ") {
			continue
		}
		for _, kv := range strings.Fields(strings.TrimPrefix(line, "export ")) {
			k, v, ok := strings.Cut(kv, "=")
			require.True(t, ok, kv)
			vars[k] = v
		}
	}
	return vars
}

// TestDevIssuerExportsWork: what the development issuer prints (and
// writes) lets a Guard configured from AEGIS_ISSUER and AEGIS_AUDIENCE
// accept its sample tokens, and the worker's client get a token
// (issue 14, point 2; .ci/run runs the README's three commands too).
func TestDevIssuerExportsWork(t *testing.T) {
	envFile := filepath.Join(t.TempDir(), "aegis-dev.env")
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr bytes.Buffer
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-env-file", envFile}, &stdout, &stderr, func(u string) { ready <- u })
	}()
	var url string
	select {
	case url = <-ready:
	case err := <-done:
		t.Fatalf("devissuer stopped: %v %s", err, stderr.String())
	}
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()

	vars := exports(t, stdout.String())
	written, err := os.ReadFile(envFile)
	require.NoError(t, err)
	assert.Equal(t, vars, exports(t, string(written)), "the file holds the same exports")
	for _, k := range []string{"AEGIS_ISSUER", "AEGIS_AUDIENCE", "AEGIS_TOKEN_URL", "AEGIS_CLIENT_ID", "AEGIS_CLIENT_SECRET",
		"AEGIS_SAMPLE_M2M_TOKEN", "AEGIS_SAMPLE_USER_TOKEN", "AEGIS_SAMPLE_EXPIRED_TOKEN"} {
		assert.NotEmpty(t, vars[k], k)
	}
	assert.Equal(t, url, vars["AEGIS_ISSUER"])

	guard, err := middleware.New(middleware.Config{Issuer: vars["AEGIS_ISSUER"], Audience: vars["AEGIS_AUDIENCE"]})
	require.NoError(t, err)
	checker := guard.Checker()
	tests := []struct {
		name   string
		token  string
		reason aegis.Reason
	}{
		{"M2M", vars["AEGIS_SAMPLE_M2M_TOKEN"], ""},
		{"user", vars["AEGIS_SAMPLE_USER_TOKEN"], ""},
		{"expired", vars["AEGIS_SAMPLE_EXPIRED_TOKEN"], aegis.ReasonTokenExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := guard.Validate(context.Background(), tt.token)
			if tt.reason == "" {
				assert.NoError(t, err)
				return
			}
			var r *aegis.Refusal
			require.ErrorAs(t, err, &r)
			assert.Equal(t, tt.reason, r.Reason)
		})
	}

	cc := clientcredentials.Config{ClientID: vars["AEGIS_CLIENT_ID"], ClientSecret: vars["AEGIS_CLIENT_SECRET"],
		TokenURL: vars["AEGIS_TOKEN_URL"], Scopes: []string{"data:read", "data:write"}}
	tok, err := cc.Token(context.Background())
	require.NoError(t, err)
	v := checker.Check(context.Background(), core.Credential{Token: tok.AccessToken}, scopes.All("data:write"))
	assert.Nil(t, v.Refusal, "the worker's token is accepted for data:write")
}

func TestDevIssuerFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"help", []string{"-h"}, ""},
		{"bad algorithm", []string{"-alg", "HS256"}, "-alg \"HS256\": want RS256, PS256, ES256, ES384 or EdDSA"},
		{"stray argument", []string{"extra"}, "unexpected arguments"},
		{"bad address", []string{"-addr", "nonsense"}, "-addr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(context.Background(), tt.args, &bytes.Buffer{}, &stderr, nil)
			require.Error(t, err)
			if tt.want == "" {
				assert.ErrorIs(t, err, flag.ErrHelp)
				assert.Contains(t, stderr.String(), "Example:")
				return
			}
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
