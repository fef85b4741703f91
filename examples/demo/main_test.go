package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDemoTranscript(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out))
	transcript := out.String()
	for _, want := range []string{
		"GET  /data   -> 200 OK [ok]",
		`"kind":"m2m"`,
		`"kind":"user"`,
		`"email":"alice@example.com"`,
		"POST /data   -> 403 Forbidden [ok]",
		`error="insufficient_scope"`,
		`scope="data:write"`,
		`error_description="The access token's signature is invalid"`,
		`error_description="The access token expired"`,
		"with 1 token request(s)",
		`error_description="The access token is not active"`,
		"2 introspection calls so far",
		"GET  /data   -> 429 Too Many Requests [ok]",
		`RateLimit-Policy: "client";q=3;w=60  RateLimit: "client";r=0;t=60  Retry-After: 20`,
		"All 9 steps went as expected.",
		"Aegis demo: starting an issuer, the example API and a backend worker…\n",
		`aegis_decisions_total{kind="m2m",outcome="accepted",reason="accepted"} 8`,
		`aegis_decisions_total{kind="m2m",outcome="refused",reason="insufficient_scope"} 1`,
		`aegis_decisions_total{kind="m2m",outcome="refused",reason="rate_limited"} 1`,
		`aegis_decisions_total{kind="none",outcome="refused",reason="signature_invalid"} 1`,
		`aegis_decisions_total{kind="none",outcome="refused",reason="token_expired"} 1`,
		`aegis_decisions_total{kind="none",outcome="refused",reason="token_inactive"} 1`,
		`aegis_decisions_total{kind="none",outcome="refused",reason="token_missing"} 1`,
		`aegis_decisions_total{kind="user",outcome="accepted",reason="accepted"} 1`,
		`result="active"} 1`,
		`result="inactive"} 1`,
		`aegis_jwks_fetches_total{issuer="http://127.0.0.1:`,
		`aegis_ratelimit_decisions_total{client_id="chatty-reporter",result="denied"} 1`,
	} {
		assert.Contains(t, transcript, want)
	}
	assert.NotContains(t, transcript, "UNEXPECTED")
	assert.Equal(t, 4, strings.Count(transcript, "-> 401"))
}
