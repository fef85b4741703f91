package flagenv

import (
	"flag"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestApply(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		url     string
		wait    time.Duration
		wantErr string
	}{
		{name: "defaults", url: "d", wait: time.Second},
		{name: "environment", env: map[string]string{"AEGIS_JWKS_URL": "e", "AEGIS_WAIT": "2s"}, url: "e", wait: 2 * time.Second},
		{name: "flag wins", args: []string{"-jwks-url", "f"}, env: map[string]string{"AEGIS_JWKS_URL": "e"}, url: "f", wait: time.Second},
		{name: "bad value", env: map[string]string{"AEGIS_WAIT": "soon"}, wantErr: "AEGIS_WAIT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			url := fs.String("jwks-url", "d", "")
			wait := fs.Duration("wait", time.Second, "")
			require.NoError(t, fs.Parse(tc.args))
			err := Apply(fs, "AEGIS_", func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.url, *url)
			assert.Equal(t, tc.wait, *wait)
		})
	}
	assert.Equal(t, "AEGIS_CLIENT_SECRET", Name("AEGIS_", "client-secret"))
}
