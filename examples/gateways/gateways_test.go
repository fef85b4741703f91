package gateways

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks/jwkstest"
)

// need returns the path of a gateway binary, or ends the test: a failure
// under CI, a skip otherwise.
func need(t *testing.T, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		if ci := strings.ToLower(os.Getenv("CI")); ci != "" && ci != "false" && ci != "0" {
			t.Fatalf("%s is required under CI: %v", name, err)
		}
		t.Skipf("%s not on PATH (apt-get install nginx-core caddy): %v", name, err)
	}
	return bin
}

// freeAddr returns a loopback address nobody listened on a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// syncBuffer collects a process's output.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs a process until the end of the test and waits until addr
// accepts connections; its output is shown if the test fails.
func start(t *testing.T, name, addr string, env []string, bin string, args ...string) {
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so that the workers nginx starts go with it;
	// and Wait stops waiting for their output soon after the kill.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second
	require.NoError(t, cmd.Start(), name)
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
	require.Eventually(t, func() bool {
		select {
		case <-exited:
			return true
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	}, 20*time.Second, 20*time.Millisecond, "%s listening on %s", name, addr)
	select {
	case <-exited:
		t.Fatalf("%s exited:\n%s", name, out.String())
	default:
	}
}

// buildAuthz builds cmd/aegis-authz from this repository.
func buildAuthz(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "aegis-authz")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = filepath.Join("..", "..", "cmd", "aegis-authz")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build cmd/aegis-authz:\n%s", out)
	return bin
}

// echo is the upstream: it answers every request with the headers it
// received, as JSON.
func echo(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(r.Header)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// hydraAdmin serves the clients' rate limits as Hydra's admin API does.
func hydraAdmin(t *testing.T, limits map[string]int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimPrefix(r.URL.Path, "/admin/clients/")
		n, ok := limits[id]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"client_id":%q,"metadata":{"rate_limit_per_minute":%d}}`, id, n)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func startNginx(t *testing.T, authz, upstream string) string {
	t.Helper()
	bin := need(t, "nginx")
	dir := t.TempDir()
	listen := freeAddr(t)
	tmpl, err := os.ReadFile("nginx.conf")
	require.NoError(t, err)
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // workers must reach the test's temporary directory
	}
	conf := strings.NewReplacer("{{USER}}", user, "{{PREFIX}}", dir, "{{AUTHZ}}", authz, "{{UPSTREAM}}", upstream, "{{LISTEN}}", listen).Replace(string(tmpl))
	path := filepath.Join(dir, "nginx.conf")
	require.NoError(t, os.WriteFile(path, []byte(conf), 0o600))
	start(t, "nginx", listen, nil, bin, "-p", dir, "-c", path)
	return listen
}

func startCaddy(t *testing.T, authz, upstream string) string {
	t.Helper()
	bin := need(t, "caddy")
	listen := freeAddr(t)
	home := t.TempDir()
	start(t, "caddy", listen, []string{"AEGIS_AUTHZ=" + authz, "UPSTREAM=" + upstream, "LISTEN=" + listen,
		"HOME=" + home, "XDG_DATA_HOME=" + home, "XDG_CONFIG_HOME=" + home},
		bin, "run", "--config", "Caddyfile", "--adapter", "caddyfile")
	return listen
}

// scenario is one request through a gateway and what must come of it.
type scenario struct {
	name    string
	method  string
	path    string
	token   string
	headers map[string]string
	status  int
	// challenge, when set, must be contained in WWW-Authenticate.
	challenge string
	// retryAfter: the answer carries Retry-After.
	retryAfter bool
	// upstream is what the upstream must have received, for a 200.
	upstream map[string]string
}

// TestGateways runs each scenario through nginx and through Caddy, both
// asking one aegis-authz.
func TestGateways(t *testing.T) {
	need(t, "nginx")
	need(t, "caddy")
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	authzBin := buildAuthz(t)
	admin := hydraAdmin(t, map[string]int{"greedy-nginx": 1, "greedy-caddy": 1})
	deadIntrospection := "http://" + freeAddr(t) + "/admin/oauth2/introspect"
	authz := freeAddr(t)
	start(t, "aegis-authz", authz, nil, authzBin, "-addr", authz, "-issuer", iss.URL, "-audience", iss.Audience,
		"-routes", "routes.json", "-mode", "hybrid", "-introspection-url", deadIntrospection, "-introspection-auth", "none",
		"-clients-url", admin)
	upstream := echo(t)
	gateways := map[string]string{"nginx": startNginx(t, authz, upstream), "caddy": startCaddy(t, authz, upstream)}

	forged := jwkstest.NewKey("RS256")
	for name, addr := range gateways {
		t.Run(name, func(t *testing.T) {
			m2m := iss.M2M("worker", "data:read")
			greedy := iss.M2M("greedy-"+name, "data:read")
			scenarios := []scenario{
				{name: "M2M token: identity reaches the upstream", method: "GET", path: "/data", token: m2m, status: 200,
					upstream: map[string]string{"X-Auth-Subject": "worker", "X-Auth-Client-Id": "worker", "X-Auth-Kind": "m2m", "X-Auth-Scopes": "data:read", "X-Auth-Email": ""}},
				{name: "user token: with its email", method: "GET", path: "/data?page=2", token: iss.User("user-42", "web-app", "alice@example.com", "data:read"), status: 200,
					upstream: map[string]string{"X-Auth-Subject": "user-42", "X-Auth-Client-Id": "web-app", "X-Auth-Kind": "user", "X-Auth-Email": "alice@example.com"}},
				{name: "no token: 401 with the challenge", method: "GET", path: "/data", status: 401, challenge: `Bearer realm="api"`},
				{name: "missing scope: 403 with scope=", method: "POST", path: "/data", token: m2m, status: 403, challenge: `scope="data:write"`},
				{name: "forged token: 401", method: "GET", path: "/data", token: iss.SignWith(forged, nil, iss.Claims("worker", "worker", "data:read")), status: 401, challenge: `error="invalid_token"`},
				{name: "rate limit: first request passes", method: "GET", path: "/data", token: greedy, status: 200},
				{name: "rate limit: 429 with Retry-After", method: "GET", path: "/data", token: greedy, status: 429, retryAfter: true},
				{name: "introspection down: 503 with Retry-After", method: "GET", path: "/data", token: "opaque-token-" + name, status: 503, retryAfter: true},
				{name: "spoofed identity headers never reach the upstream", method: "GET", path: "/data", token: m2m, status: 200,
					headers: map[string]string{"X-Auth-Email": "ceo@example.com", "X-Auth-Subject": "admin", "X-Auth-Kind": "user", "X-Auth-Scopes": "admin", "X-Auth-Client-Id": "root",
						"X_Auth_Email": "ceo@example.com"},
					upstream: map[string]string{"X-Auth-Subject": "worker", "X-Auth-Client-Id": "worker", "X-Auth-Kind": "m2m", "X-Auth-Scopes": "data:read", "X-Auth-Email": "", "X_Auth_Email": ""}},
				{name: "unclean path: 400 as aegis-authz sent it", method: "GET", path: "/public/;x", token: m2m, status: 400, challenge: `error="invalid_request"`},
				{name: "public route: no token, no identity", method: "GET", path: "/public/logo.png", headers: map[string]string{"X-Auth-Email": "ceo@example.com"}, status: 200,
					upstream: map[string]string{"X-Auth-Subject": "", "X-Auth-Client-Id": "", "X-Auth-Kind": "", "X-Auth-Scopes": "", "X-Auth-Email": ""}},
				{name: "unmatched route: 403", method: "GET", path: "/admin", token: m2m, status: 403},
			}
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) { run(t, addr, sc) })
			}
		})
	}
}

func run(t *testing.T, addr string, sc scenario) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, sc.method, "http://"+addr+sc.path, nil)
	require.NoError(t, err)
	if sc.token != "" {
		req.Header.Set("Authorization", "Bearer "+sc.token)
	}
	for k, v := range sc.headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	require.Equal(t, sc.status, resp.StatusCode, "body: %s", body.String())
	if sc.challenge != "" {
		assert.Contains(t, resp.Header.Get("WWW-Authenticate"), sc.challenge)
	}
	if sc.retryAfter {
		n, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		assert.NoError(t, err, "Retry-After %q", resp.Header.Get("Retry-After"))
		assert.Positive(t, n)
	}
	if sc.token != "" && sc.status != http.StatusOK {
		assert.False(t, strings.Contains(body.String(), sc.token), "the refusal echoes the token")
	}
	if sc.upstream == nil {
		return
	}
	var got http.Header
	require.NoError(t, json.Unmarshal(body.Bytes(), &got), "the upstream's echo: %s", body.String())
	for k, want := range sc.upstream {
		if k == "X-Auth-Scopes" && want != "" {
			assert.Contains(t, strings.Fields(got.Get(k)), want, k)
			continue
		}
		assert.Equal(t, want, got.Get(k), k)
		assert.LessOrEqual(t, len(got.Values(k)), 1, "%s sent once", k)
	}
}

// TestREADMEShowsTheseFiles: the README's "In front of other services"
// shows the configurations CI runs, verbatim.
func TestREADMEShowsTheseFiles(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	for _, tc := range []struct{ file, fence string }{{"nginx.conf", "```nginx\n"}, {"Caddyfile", "```caddyfile\n"}} {
		body, err := os.ReadFile(tc.file)
		require.NoError(t, err)
		assert.Contains(t, string(readme), tc.fence+string(body)+"```", "README shows %s as it is", tc.file)
	}
}
