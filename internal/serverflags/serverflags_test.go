package serverflags

import (
	"bytes"
	"flag"
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func parse(t *testing.T, args []string, env map[string]string) (Options, error) {
	t.Helper()
	var o Options
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.Register(fs)
	err := o.Parse(fs, args, func(k string) string { return env[k] })
	return o, err
}

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		err   string
		cache string
	}{
		{name: "issuer alone", args: []string{"-issuer", "https://i.example"}, cache: CacheLocal},
		{name: "issuer from the environment", env: map[string]string{"AEGIS_ISSUER": "https://i.example"}, cache: CacheLocal},
		{name: "shared cache by default with Redis", args: []string{"-issuer", "https://i.example", "-redis-url", "redis://127.0.0.1:1/0"}, cache: CacheShared},
		{name: "local cache on request", args: []string{"-issuer", "https://i.example", "-redis-url", "redis://127.0.0.1:1/0", "-introspection-cache", "local"}, cache: CacheLocal},
		{name: "no issuer", err: "-issuer (or AEGIS_ISSUER) is required"},
		{name: "stray argument", args: []string{"-issuer", "https://i.example", "x"}, err: "unexpected arguments"},
		{name: "unknown mode", args: []string{"-issuer", "https://i.example", "-mode", "magic"}, err: `-mode "magic": want jwt, introspect or hybrid`},
		{name: "bad duration in the environment", args: []string{"-issuer", "https://i.example"}, env: map[string]string{"AEGIS_CLIENTS_CACHE_TTL": "soon"},
			err: `AEGIS_CLIENTS_CACHE_TTL (for -clients-cache-ttl) "soon": want a duration`},
		{name: "insecure issuer", args: []string{"-issuer", "http://hydra:4444"}, err: "-allow-insecure-http"},
		{name: "shared cache without Redis", args: []string{"-issuer", "https://i.example", "-introspection-cache", "shared"}, err: "needs -redis-url"},
		{name: "unknown failure policy", args: []string{"-issuer", "https://i.example", "-rate-limit-failure", "maybe"}, err: "want open or closed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parse(t, tc.args, tc.env)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.cache, o.IntrospectionCache)
			assert.Equal(t, "https://i.example", o.Issuer)
		})
	}
}

func TestLogger(t *testing.T) {
	tests := []struct {
		level string
		err   bool
	}{{"debug", false}, {"info", false}, {"warn", false}, {"error", false}, {"loud", true}}
	for _, tc := range tests {
		t.Run(tc.level, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := Options{LogLevel: tc.level}.Logger(&buf)
			if tc.err {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "-log-level")
				return
			}
			require.NoError(t, err)
			log.Error("hello")
			assert.Contains(t, buf.String(), "msg=hello")
		})
	}
}

func TestDPoPFlags(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		policy string
		nonce  bool
		err    string
	}{
		{name: "allow by default", policy: "allow"},
		{name: "require", args: []string{"-dpop", "require"}, policy: "require"},
		{name: "off from the environment", env: map[string]string{"AEGIS_DPOP": "off"}, policy: "off"},
		{name: "nonces", args: []string{"-dpop-nonce"}, policy: "allow", nonce: true},
		{name: "unknown policy", args: []string{"-dpop", "sometimes"}, err: `-dpop "sometimes": want allow, require or off`},
		{name: "nonces with DPoP off", args: []string{"-dpop", "off", "-dpop-nonce"}, err: "-dpop-nonce needs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parse(t, append([]string{"-issuer", "https://i.example", "-audience", "https://api.example"}, tc.args...), tc.env)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.policy, o.DPoP)
			assert.Equal(t, tc.nonce, o.DPoPNonce)
			cfg, err := o.Config(slog.New(slog.DiscardHandler), nil)
			require.NoError(t, err)
			assert.Equal(t, tc.policy, string(cfg.DPoP.Policy))
			if tc.nonce {
				require.NotNil(t, cfg.DPoP.Verifier)
				assert.NotEmpty(t, cfg.DPoP.Verifier.Nonce())
			} else {
				assert.Nil(t, cfg.DPoP.Verifier)
			}
		})
	}
}
