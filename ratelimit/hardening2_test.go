package ratelimit_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/ratelimit"
)

// TestHardening2_CredentialsInURLsRedacted (issue 13, point 6): HydraSource
// refuses an AdminURL with user info or a query; its error, like the URLs in
// its lookup errors, goes through the shared helper (issuerhttp.Redact), so
// the secret it refuses is not repeated.
func TestHardening2_CredentialsInURLsRedacted(t *testing.T) {
	tests := []struct{ name, adminURL, want string }{
		{"password in the user info", "https://svc:S3cret@hydra-admin.internal/", `"https://xxxxx@hydra-admin.internal/" must have no query, fragment or user info`},
		{"secret in the query", "https://hydra-admin.internal/?api_key=Q5ecret", `"https://hydra-admin.internal/?api_key=xxxxx" must have no query, fragment or user info`},
		{"both, on http elsewhere", "http://svc:S3cret@hydra-admin:4445/?api_key=Q5ecret", `"http://xxxxx@hydra-admin:4445/?api_key=xxxxx" uses http on a non-loopback host`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := ratelimit.NewHydraSource(ratelimit.HydraConfig{AdminURL: tt.adminURL})
			require.Error(t, err)
			assert.Nil(t, src)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), "S3cret")
			assert.NotContains(t, err.Error(), "Q5ecret")
		})
	}
}
