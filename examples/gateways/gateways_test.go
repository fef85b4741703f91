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
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/jwks"
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

// nginxPassesEveryChallenge says whether nginx's auth_request passes
// every WWW-Authenticate field of a 401 on (1.23.0 and later), not only
// the first.
func nginxPassesEveryChallenge(t *testing.T) bool {
	t.Helper()
	out, err := exec.Command(need(t, "nginx"), "-v").CombinedOutput()
	require.NoError(t, err, "%s", out)
	m := regexp.MustCompile(`nginx/(\d+)\.(\d+)\.`).FindSubmatch(out)
	require.NotNil(t, m, "nginx -v: %s", out)
	major, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	return major > 1 || major == 1 && minor >= 23
}

// nginxAddrs are nginx's addresses: plain HTTP and TLS.
type nginxAddrs struct{ http, tls string }

func startNginx(t *testing.T, authz, upstream string, pki *testPKI) nginxAddrs {
	t.Helper()
	bin := need(t, "nginx")
	dir := t.TempDir()
	listen, tlsListen := freeAddr(t), freeAddr(t)
	tmpl, err := os.ReadFile("nginx.conf")
	require.NoError(t, err)
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // workers must reach the test's temporary directory
	}
	certFile, keyFile := pki.writeServer(t, dir)
	conf := strings.NewReplacer("{{USER}}", user, "{{PREFIX}}", dir, "{{AUTHZ}}", authz, "{{UPSTREAM}}", upstream, "{{LISTEN}}", listen,
		"{{TLS_LISTEN}}", tlsListen, "{{TLS_CERT}}", certFile, "{{TLS_KEY}}", keyFile).Replace(string(tmpl))
	require.NotRegexp(t, `\{\{[A-Z_]+\}\}`, conf, "every placeholder replaced")
	path := filepath.Join(dir, "nginx.conf")
	require.NoError(t, os.WriteFile(path, []byte(conf), 0o600))
	start(t, "nginx", listen, nil, bin, "-p", dir, "-c", path)
	return nginxAddrs{http: listen, tls: tlsListen}
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
	// auth, when set, is the Authorization header (token is then only
	// what the refusal must not echo).
	auth string
	// prepare, when set, completes the request (a DPoP proof for its
	// URL).
	prepare func(req *http.Request)
	// base is the URL the client addresses, default http://ADDR; client
	// the client, default http.DefaultClient.
	base   string
	client *http.Client
	// challenges, when set, must be the WWW-Authenticate fields, each
	// a prefix of the one the client gets.
	challenges []string
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
		"-clients-url", admin, "-client-cert-header", "X-SSL-Client-Cert")
	upstream := echo(t)
	pki := newPKI(t)
	nginx := startNginx(t, authz, upstream, pki)
	gateways := map[string]string{"nginx": nginx.http, "caddy": startCaddy(t, authz, upstream)}

	forged := jwkstest.NewKey("RS256")
	key := jwkstest.NewKey(jwks.ES256)
	dpopBound := iss.DPoPBound("dpop-client", key, "data:read")
	certBound := iss.MTLSBound("mtls-client", pki.mine.Leaf, "data:read")
	// proof sets a DPoP proof for the URL the client addresses, or for
	// htu when set.
	proof := func(htu string) func(req *http.Request) {
		return func(req *http.Request) {
			u := htu
			if u == "" {
				u = req.URL.Scheme + "://" + req.URL.Host + req.URL.Path
			}
			req.Header.Set("DPoP", key.DPoPProof(jwkstest.DPoPProof{Method: req.Method, URL: u, AccessToken: dpopBound}))
		}
	}
	proofError := `DPoP realm="api", error="invalid_dpop_proof"`
	for name, addr := range gateways {
		t.Run(name, func(t *testing.T) {
			m2m := iss.M2M("worker", "data:read")
			greedy := iss.M2M("greedy-"+name, "data:read")
			once := key.DPoPProof(jwkstest.DPoPProof{Method: "GET", URL: "http://" + addr + "/data", AccessToken: dpopBound})
			replay := func(req *http.Request) { req.Header.Set("DPoP", once) }
			// aegis-authz sends the WWW-Authenticate field with the error
			// first; Caddy passes both on, nginx before 1.23 only the first.
			dpopChallenges := []string{proofError, `Bearer realm="api"`}
			bearerChallenges := []string{`Bearer realm="api", error="invalid_token"`, `DPoP realm="api", algs=`}
			if name == "nginx" && !nginxPassesEveryChallenge(t) {
				dpopChallenges, bearerChallenges = dpopChallenges[:1], bearerChallenges[:1]
			}
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
				{name: "DPoP: a proof for the URL the client addresses", method: "GET", path: "/data?page=2", token: dpopBound, auth: "DPoP " + dpopBound,
					prepare: proof(""), status: 200, upstream: map[string]string{"X-Auth-Client-Id": "dpop-client", "X-Auth-Scopes": "data:read"}},
				{name: "DPoP: a proof, first use", method: "GET", path: "/data", token: dpopBound, auth: "DPoP " + dpopBound, prepare: replay, status: 200},
				{name: "DPoP: the same proof again", method: "GET", path: "/data", token: dpopBound, auth: "DPoP " + dpopBound, prepare: replay,
					status: 401, challenges: dpopChallenges},
				{name: "DPoP: a proof for https, the client on http", method: "GET", path: "/data", token: dpopBound, auth: "DPoP " + dpopBound,
					prepare: proof("https://" + addr + "/data"), status: 401, challenges: dpopChallenges},
				{name: "DPoP: a proof for https, the client on http claiming https", method: "GET", path: "/data", token: dpopBound, auth: "DPoP " + dpopBound,
					headers: map[string]string{"X-Forwarded-Proto": "https"}, prepare: proof("https://" + addr + "/data"), status: 401, challenges: dpopChallenges},
				{name: "DPoP: a proof for another host, the client claiming it", method: "GET", path: "/data", token: dpopBound, auth: "DPoP " + dpopBound,
					headers: map[string]string{"X-Forwarded-Host": "api.example.com"}, prepare: proof("http://api.example.com/data"), status: 401, challenges: dpopChallenges},
				{name: "DPoP: no proof", method: "GET", path: "/data", token: dpopBound, auth: "DPoP " + dpopBound, status: 401, challenges: dpopChallenges},
				{name: "DPoP: the bound token as Bearer", method: "GET", path: "/data", token: dpopBound, status: 401, challenges: bearerChallenges},
				{name: "certificate: a client's own certificate header", method: "GET", path: "/data", token: certBound,
					headers: map[string]string{"X-SSL-Client-Cert": jwkstest.EscapedPEM(pki.mine.Leaf), "X-Forwarded-Proto": "https"}, status: 401, challenge: `error="invalid_token"`},
			}
			if name == "nginx" {
				base := "https://" + nginx.tls
				scenarios = append(scenarios,
					scenario{name: "TLS: certificate-bound token with its certificate", method: "GET", path: "/data", token: certBound, base: base,
						client: pki.client(t, pki.mine), status: 200, upstream: map[string]string{"X-Auth-Client-Id": "mtls-client", "X-Auth-Scopes": "data:read"}},
					scenario{name: "TLS: certificate-bound token with another certificate", method: "GET", path: "/data", token: certBound, base: base,
						client: pki.client(t, pki.their), status: 401, challenge: `error="invalid_token"`},
					scenario{name: "TLS: certificate-bound token without a certificate", method: "GET", path: "/data", token: certBound, base: base,
						client: pki.client(t), status: 401, challenge: `error="invalid_token"`},
					scenario{name: "TLS: a client's own certificate header", method: "GET", path: "/data", token: certBound, base: base, client: pki.client(t),
						headers: map[string]string{"X-SSL-Client-Cert": jwkstest.EscapedPEM(pki.mine.Leaf)}, status: 401, challenge: `error="invalid_token"`},
					scenario{name: "TLS: unbound token with a certificate", method: "GET", path: "/data", token: m2m, base: base,
						client: pki.client(t, pki.mine), status: 200, upstream: map[string]string{"X-Auth-Client-Id": "worker"}},
					scenario{name: "TLS: DPoP with a proof for the https URL", method: "GET", path: "/data", token: dpopBound, auth: "DPoP " + dpopBound, base: base,
						client: pki.client(t), prepare: proof(""), status: 200, upstream: map[string]string{"X-Auth-Client-Id": "dpop-client"}},
					scenario{name: "TLS: DPoP with a proof for the http URL", method: "GET", path: "/data", token: dpopBound, auth: "DPoP " + dpopBound, base: base,
						client: pki.client(t), prepare: proof("http://" + nginx.tls + "/data"), status: 401, challenges: dpopChallenges},
				)
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
	base, client := sc.base, sc.client
	if base == "" {
		base = "http://" + addr
	}
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, sc.method, base+sc.path, nil)
	require.NoError(t, err)
	if sc.token != "" {
		req.Header.Set("Authorization", "Bearer "+sc.token)
	}
	if sc.auth != "" {
		req.Header.Set("Authorization", sc.auth)
	}
	for k, v := range sc.headers {
		req.Header.Set(k, v)
	}
	if sc.prepare != nil {
		sc.prepare(req)
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	require.Equal(t, sc.status, resp.StatusCode, "body: %s", body.String())
	if sc.challenge != "" {
		assert.Contains(t, resp.Header.Get("WWW-Authenticate"), sc.challenge)
	}
	if sc.challenges != nil {
		got := resp.Header.Values("WWW-Authenticate")
		if assert.Len(t, got, len(sc.challenges), "WWW-Authenticate: %q", got) {
			for i, want := range sc.challenges {
				assert.True(t, strings.HasPrefix(got[i], want), "WWW-Authenticate %d: %q, want %q…", i, got[i], want)
			}
		}
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

// TestGatewaysDPoPNonce: with aegis-authz -dpop-nonce, a client without
// the nonce gets 401 use_dpop_nonce and DPoP-Nonce through nginx and
// Caddy, and passes with it. nginx also passes the nonce of a 200 on;
// Caddy's forward_auth gives a 2xx answer's headers only to the upstream.
func TestGatewaysDPoPNonce(t *testing.T) {
	need(t, "nginx")
	need(t, "caddy")
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	authz := freeAddr(t)
	start(t, "aegis-authz", authz, nil, buildAuthz(t), "-addr", authz, "-issuer", iss.URL, "-audience", iss.Audience,
		"-routes", "routes.json", "-dpop-nonce")
	upstream := echo(t)
	gateways := map[string]string{"nginx": startNginx(t, authz, upstream, newPKI(t)).http, "caddy": startCaddy(t, authz, upstream)}
	key := jwkstest.NewKey(jwks.ES256)
	bound := iss.DPoPBound("dpop-client", key, "data:read")
	for name, addr := range gateways {
		t.Run(name, func(t *testing.T) {
			ask := func(nonce string) *http.Response {
				req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/data", nil)
				require.NoError(t, err)
				req.Header.Set("Authorization", "DPoP "+bound)
				req.Header.Set("DPoP", key.DPoPProof(jwkstest.DPoPProof{Method: "GET", URL: "http://" + addr + "/data", AccessToken: bound, Nonce: nonce}))
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				_ = resp.Body.Close()
				return resp
			}
			resp := ask("")
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			assert.True(t, strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `DPoP realm="api", error="use_dpop_nonce"`), resp.Header.Get("WWW-Authenticate"))
			nonce := resp.Header.Get("DPoP-Nonce")
			require.NotEmpty(t, nonce, "DPoP-Nonce reaches the client")
			assert.Len(t, resp.Header.Values("DPoP-Nonce"), 1)

			resp = ask(nonce)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			if name == "nginx" {
				assert.Equal(t, nonce, resp.Header.Get("DPoP-Nonce"), "the nonce of a 200")
			}
		})
	}
}
