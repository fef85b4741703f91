package flagenv

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
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

func TestExitCode(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		failed int
		want   int
	}{
		{"success", nil, 2, 0},
		{"-h", flag.ErrHelp, 2, 0},
		{"-h, wrapped", fmt.Errorf("parsing: %w", flag.ErrHelp), 1, 0},
		{"failure", errors.New("bad"), 2, 2},
		{"failure, the worker's code", errors.New("bad"), 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, ExitCode(tt.err, tt.failed))
		})
	}
}

// TestSetUsage: -h lists every flag's variable and an example.
func TestSetUsage(t *testing.T) {
	fs := flag.NewFlagSet("tool", flag.ContinueOnError)
	var out strings.Builder
	fs.SetOutput(&out)
	fs.String("jwks-url", "", "the key set")
	fs.Bool("allow-insecure-http", false, "permit http")
	SetUsage(fs, "AEGIS_", "does things", "tool -jwks-url https://k")
	require.ErrorIs(t, fs.Parse([]string{"-h"}), flag.ErrHelp)
	for _, want := range []string{"Usage of tool:", "does things", "-jwks-url", "AEGIS_JWKS_URL", "AEGIS_ALLOW_INSECURE_HTTP", "Example:\n  tool -jwks-url https://k"} {
		assert.Contains(t, out.String(), want)
	}
}

// TestExplain: a value a flag cannot take is named with what it accepts,
// on the command line and in the environment.
func TestExplain(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"duration", []string{"-wait", "soon"}, nil, `-wait "soon": want a duration such as 30s, 5m or 1h`},
		{"integer", []string{"-calls", "many"}, nil, `-calls "many": want a whole number`},
		{"bool", []string{"-insecure=maybe"}, nil, `-insecure "maybe": want true or false`},
		{"from the environment", nil, map[string]string{"AEGIS_WAIT": "soon"}, `AEGIS_WAIT (for -wait) "soon": want a duration such as 30s, 5m or 1h`},
		{"an unknown flag passes unchanged", []string{"-bogus"}, nil, "flag provided but not defined: -bogus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("tool", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			fs.Duration("wait", time.Second, "")
			fs.Int("calls", 1, "")
			fs.Bool("insecure", false, "")
			err := Explain(fs, fs.Parse(tt.args))
			if err == nil {
				err = Apply(fs, "AEGIS_", func(k string) string { return tt.env[k] })
			}
			require.Error(t, err)
			assert.Equal(t, tt.want, err.Error())
		})
	}
}
