package dpop_test

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/middleware/dpop"
)

// underCI reports whether the environment variable CI asks for every test.
func underCI() bool {
	ci := strings.ToLower(os.Getenv("CI"))
	return ci != "" && ci != "false" && ci != "0"
}

// needNode returns the paths of node and npm, or ends the test: a failure
// under CI, a skip otherwise.
func needNode(t *testing.T) (node, npm string) {
	t.Helper()
	node, errNode := exec.LookPath("node")
	npm, errNPM := exec.LookPath("npm")
	if errNode != nil || errNPM != nil {
		if underCI() {
			t.Fatalf("node and npm are required under CI: %v %v", errNode, errNPM)
		}
		t.Skip("node or npm not on PATH")
	}
	return node, npm
}

// TestInteropPanvaDPoP verifies proofs made by panva's dpop package
// (npm dpop 2.1.2, testdata/node, installed from its lock file into a
// temporary directory) for ES256, RS256, PS256 and Ed25519 (the
// fully-specified EdDSA name of RFC 9864, which is what the package
// signs with): each passes for its own request, with the RFC 7638
// thumbprint Aegis computes, and is refused for another method, another
// URI and another access token.
func TestInteropPanvaDPoP(t *testing.T) {
	node, npm := needNode(t)
	dir := t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json", "proof.mjs"} {
		b, err := os.ReadFile(filepath.Join("testdata", "node", f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o600))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund")
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		if underCI() {
			t.Fatalf("npm ci: %v\n%s", err, out)
		}
		t.Skipf("npm ci failed (offline?): %v", err)
	}

	const htu, token, nonce = "https://api.test/data", "the-access-token", "n-1"
	u, err := url.Parse(htu)
	require.NoError(t, err)
	other, err := url.Parse("https://api.test/other")
	require.NoError(t, err)
	for _, alg := range []string{"ES256", "RS256", "PS256", "Ed25519"} {
		t.Run(alg, func(t *testing.T) {
			cmd := exec.CommandContext(ctx, node, "proof.mjs", alg, htu, "GET", token, nonce)
			cmd.Dir = dir
			out, err := cmd.Output()
			require.NoError(t, err)
			var got struct{ Proof, JKT, Alg string }
			require.NoError(t, json.Unmarshal(out, &got))
			assert.Equal(t, alg, got.Alg)

			tests := []struct {
				name        string
				method      string
				url         *url.URL
				accessToken string
				want        error // nil: accepted
			}{
				{"its own request", "GET", u, token, nil},
				{"another htm", "POST", u, token, dpop.ErrMethod},
				{"another htu", "GET", other, token, dpop.ErrURI},
				{"another ath", "GET", u, "another-token", dpop.ErrTokenHash},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					v, err := dpop.New(dpop.Config{Now: time.Now}) // the proof carries the real time
					require.NoError(t, err)
					p, err := v.Verify(ctx, dpop.Request{Proofs: []string{got.Proof}, Method: tt.method, URL: tt.url,
						AccessToken: tt.accessToken, Thumbprint: got.JKT})
					if tt.want != nil {
						assert.ErrorIs(t, err, tt.want)
						assert.Nil(t, p)
						return
					}
					require.NoError(t, err)
					assert.Equal(t, got.JKT, p.Thumbprint, "panva's RFC 7638 thumbprint is Aegis's")
					assert.Equal(t, nonce, p.Nonce)
				})
			}
		})
	}
}
