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

	"github.com/olympus/aegis/jwks"
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
// temporary directory): its ES256, RS256 and PS256 proofs pass, and the
// RFC 7638 thumbprint it computes is the one Aegis computes. Its Ed25519
// proofs name the fully-specified alg "Ed25519" (RFC 9864), which Aegis's
// allowlist (EdDSA) does not hold: they are refused as invalid proofs.
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
	tests := []struct {
		alg     string
		header  string // the alg the proof names
		ok      bool
		refusal error
	}{
		{alg: "ES256", header: "ES256", ok: true},
		{alg: "RS256", header: "RS256", ok: true},
		{alg: "PS256", header: "PS256", ok: true},
		{alg: "Ed25519", header: "Ed25519", refusal: jwks.ErrProof},
	}
	u, err := url.Parse(htu)
	require.NoError(t, err)
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			cmd := exec.CommandContext(ctx, node, "proof.mjs", tt.alg, htu, "GET", token, nonce)
			cmd.Dir = dir
			out, err := cmd.Output()
			require.NoError(t, err)
			var got struct{ Proof, JKT, Alg string }
			require.NoError(t, json.Unmarshal(out, &got))
			assert.Equal(t, tt.header, got.Alg)

			v, err := dpop.New(dpop.Config{Now: time.Now}) // the proof carries the real time
			require.NoError(t, err)
			p, err := v.Verify(ctx, dpop.Request{Proofs: []string{got.Proof}, Method: "GET", URL: u, AccessToken: token, Thumbprint: got.JKT})
			if !tt.ok {
				assert.ErrorIs(t, err, tt.refusal)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, got.JKT, p.Thumbprint, "panva's RFC 7638 thumbprint is Aegis's")
			assert.Equal(t, nonce, p.Nonce)
		})
	}
}
