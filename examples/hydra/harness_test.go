package hydra

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Environment variables read by the suite.
const (
	envHydraBin = "AEGIS_HYDRA_BIN"  // a Hydra v2.3.0 binary; built from go.mod when unset
	envTTL      = "TTL_ACCESS_TOKEN" // Hydra's default access-token lifespan (default 1h)
	envKeepLogs = "AEGIS_E2E_KEEP"   // keep the temp dir with process logs
)

const (
	apiAudience   = "https://api.test"
	otherAudience = "https://other.test"
	httpTimeout   = 10 * time.Second
	startTimeout  = 60 * time.Second
)

// suite is what TestMain set up. An empty xxxErr means the service is up.
var suite struct {
	tmp       string
	hydra     *hydraProc
	hydraErr  error
	hydraBin  string // the binary suite.hydra runs, for tests that start another
	serverBin string
	serverErr error
	workerBin string
	workerErr error
	repoRoot  string
}

// inCI reports whether env CI asks for strictness: a missing service then
// fails the suite instead of skipping it.
func inCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v != "" && v != "false" && v != "0"
}

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "aegis-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	suite.tmp = tmp
	suite.repoRoot, _ = filepath.Abs(filepath.Join("..", ".."))

	code := 1
	suite.serverBin, suite.serverErr = buildExample(tmp, "server")
	if suite.serverErr != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", suite.serverErr)
	}
	suite.workerBin, suite.workerErr = buildExample(tmp, "worker")
	if suite.workerErr != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", suite.workerErr)
	}
	if !inCI() || suite.serverErr == nil {
		suite.hydra, suite.hydraErr = setupHydra(tmp)
		if suite.hydraErr != nil {
			fmt.Fprintln(os.Stderr, "e2e setup:", suite.hydraErr)
		}
	}
	if inCI() && (suite.hydraErr != nil || suite.serverErr != nil) {
		fmt.Fprintln(os.Stderr, "e2e: CI is set, so a missing service is a failure")
	} else {
		code = m.Run()
	}

	if suite.hydra != nil && suite.hydra.proc != nil {
		suite.hydra.proc.stop()
		if code != 0 {
			suite.hydra.proc.dumpTail(os.Stderr, 40)
		}
	}
	if code != 0 || os.Getenv(envKeepLogs) != "" {
		fmt.Fprintln(os.Stderr, "e2e: logs kept in", tmp)
	} else {
		os.RemoveAll(tmp)
	}
	return code
}

// needHydra skips (outside CI) a test that needs Hydra when it is missing.
func needHydra(t *testing.T) *hydraProc {
	t.Helper()
	if suite.hydraErr != nil {
		t.Skipf("Hydra unavailable (set CI to make this fail): %v", suite.hydraErr)
	}
	return suite.hydra
}

// needServer is needHydra plus the examples/server binary.
func needServer(t *testing.T) (*hydraProc, string) {
	t.Helper()
	h := needHydra(t)
	if suite.serverErr != nil {
		t.Skipf("examples/server unavailable (set CI to make this fail): %v", suite.serverErr)
	}
	return h, suite.serverBin
}

// needWorker returns the examples/worker binary. Unlike Hydra and the
// server it is not checked before the run, so a missing worker fails here
// when CI is set and skips otherwise.
func needWorker(t *testing.T) string {
	t.Helper()
	if suite.workerErr != nil {
		if inCI() {
			t.Fatalf("examples/worker unavailable: %v", suite.workerErr)
		}
		t.Skipf("examples/worker unavailable (set CI to make this fail): %v", suite.workerErr)
	}
	return suite.workerBin
}

// ---------------------------------------------------------------- processes

// freePort asks the kernel for a free loopback port. The port is released
// before use, so another process could take it first; that race is accepted.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lockedBuffer collects a process's output for assertions on its logs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is a child process whose stdout and stderr go to a log file and to
// memory.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	out     *lockedBuffer
	done    chan struct{} // closed when the process has exited
	waitErr error
	once    sync.Once
}

func startProc(name, logPath string, env []string, bin string, args ...string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	p := &proc{name: name, logPath: logPath, out: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	w := io.MultiWriter(f, p.out)
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, then SIGKILL if the process is still there after 5s.
func (p *proc) stop() {
	p.once.Do(func() {
		if p.exited() {
			return
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

func (p *proc) dumpTail(w io.Writer, lines int) {
	all := strings.Split(strings.TrimRight(p.out.String(), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	fmt.Fprintf(w, "---- last %d lines of %s (%s)\n%s\n----\n", len(all), p.name, p.logPath, strings.Join(all, "\n"))
}

// waitReady polls url until ok accepts the response, the process exits, or
// the timeout passes.
func (p *proc) waitReady(url string, timeout time.Duration, ok func(status int, body []byte) bool) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := "no answer yet"
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("%s exited before it was ready (%v); log:\n%s", p.name, p.waitErr, p.out.String())
		}
		if resp, err := hc.Get(url); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if ok(resp.StatusCode, body) {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		<-tick.C
	}
	return fmt.Errorf("%s not ready at %s after %s (last: %s)", p.name, url, timeout, last)
}

// childEnv is the current environment minus variables that would change a
// child's configuration behind the test's back, plus extra (which wins).
func childEnv(dropPrefixes []string, extra ...string) []string {
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, p := range dropPrefixes {
			if strings.HasPrefix(kv, p) {
				continue next
			}
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

func goBuild(dir string, env []string, args ...string) error {
	cmd := exec.Command("go", append([]string{"build"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build %s (in %s): %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return nil
}

// ---------------------------------------------------------------- hydra

type hydraProc struct {
	proc     *proc
	public   string // http://127.0.0.1:port, also the issuer
	admin    string // http://127.0.0.1:port, never exposed beyond loopback
	uiBase   string // login/consent/callback live here; nothing listens on it
	hc       *http.Client
	building time.Duration
}

func setupHydra(tmp string) (*hydraProc, error) {
	bin := os.Getenv(envHydraBin)
	var built time.Duration
	if bin == "" {
		bin = filepath.Join(tmp, "hydra")
		t0 := time.Now()
		// The version and the pop replace are pinned in this module's go.mod.
		if err := goBuild(".", []string{"CGO_ENABLED=1", "GOWORK=off"},
			"-tags", "sqlite,sqlite_omit_load_extension", "-o", bin, "github.com/ory/hydra/v2"); err != nil {
			return nil, fmt.Errorf("building Hydra (set %s to use a prebuilt one): %w", envHydraBin, err)
		}
		built = time.Since(t0)
		fmt.Fprintf(os.Stderr, "e2e: built Hydra in %s\n", built.Round(time.Millisecond))
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s: %w", envHydraBin, err)
	}
	suite.hydraBin = bin
	h, err := startHydra(tmp, bin, "hydra")
	if h != nil {
		h.building = built
	}
	return h, err
}

// startHydra starts a Hydra of its own (in-memory, on free loopback
// ports), logging to tmp/name.log, with extra environment variables (which
// win), and waits until both of its ports are ready. The caller stops its
// proc.
func startHydra(tmp, bin, name string, extraEnv ...string) (*hydraProc, error) {
	var ports [3]int
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	h := &hydraProc{
		public: fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		admin:  fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
		uiBase: fmt.Sprintf("http://127.0.0.1:%d", ports[2]),
		hc:     &http.Client{Timeout: httpTimeout},
	}
	ttl := os.Getenv(envTTL)
	if ttl == "" {
		ttl = "1h"
	}
	// Hydra reads all of its configuration from the environment: drop any
	// inherited Hydra settings so only these apply.
	env := childEnv([]string{"DSN=", "SERVE_", "URLS_", "SECRETS_", "STRATEGIES_", "TTL_", "OAUTH2_", "LOG_"},
		"DSN=memory",
		"SERVE_PUBLIC_HOST=127.0.0.1", fmt.Sprintf("SERVE_PUBLIC_PORT=%d", ports[0]),
		"SERVE_ADMIN_HOST=127.0.0.1", fmt.Sprintf("SERVE_ADMIN_PORT=%d", ports[1]),
		"URLS_SELF_ISSUER="+h.public,
		"URLS_LOGIN="+h.uiBase+"/login",
		"URLS_CONSENT="+h.uiBase+"/consent",
		"SECRETS_SYSTEM=aegis-e2e-system-secret-0123456789abcdef",
		"STRATEGIES_ACCESS_TOKEN=jwt",
		"TTL_ACCESS_TOKEN="+ttl,
	)
	env = append(env, extraEnv...)
	p, err := startProc(name, filepath.Join(tmp, name+".log"), env, bin, "serve", "all", "--dev", "--sqa-opt-out")
	if err != nil {
		return nil, err
	}
	h.proc = p
	ready := func(status int, body []byte) bool {
		return status == http.StatusOK && bytes.Contains(body, []byte(`"ok"`))
	}
	for _, base := range []string{h.admin, h.public} {
		if err := p.waitReady(base+"/health/ready", startTimeout, ready); err != nil {
			p.stop()
			return h, err
		}
	}
	return h, nil
}

// adminJSON sends a JSON request to Hydra's admin API and decodes the answer
// into out (if not nil), requiring the status want.
func (h *hydraProc) adminJSON(t *testing.T, method, path string, in any, want int, out any) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		require.NoError(t, err)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.admin+path, body)
	require.NoError(t, err)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equalf(t, want, resp.StatusCode, "%s %s: %s", method, path, raw)
	if out != nil {
		require.NoErrorf(t, json.Unmarshal(raw, out), "%s %s: %s", method, path, raw)
	}
}

type oauthClient struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret"`
}

// createClient registers an OAuth2 client through POST /admin/clients; the
// secret is only in this answer.
func (h *hydraProc) createClient(t *testing.T, spec map[string]any) oauthClient {
	t.Helper()
	var c oauthClient
	h.adminJSON(t, http.MethodPost, "/admin/clients", spec, http.StatusCreated, &c)
	require.NotEmpty(t, c.ID)
	require.NotEmpty(t, c.Secret)
	return c
}

// hydraClient is the part of GET /admin/clients/{id} the suite reads
// (never the secret, which Hydra does not return there).
type hydraClient struct {
	ID         string         `json:"client_id"`
	GrantTypes []string       `json:"grant_types"`
	Scope      string         `json:"scope"`
	Audience   []string       `json:"audience"`
	Metadata   map[string]any `json:"metadata"`
}

// getClient reads a client through GET /admin/clients/{id}.
func (h *hydraProc) getClient(t *testing.T, id string) hydraClient {
	t.Helper()
	var c hydraClient
	h.adminJSON(t, http.MethodGet, "/admin/clients/"+url.PathEscape(id), nil, http.StatusOK, &c)
	return c
}

// patchMetadata replaces only the client's metadata with a JSON Patch
// (RFC 6902) on PATCH /admin/clients/{id}: PUT (and hydra update client)
// would replace the whole client and reset its grant types.
func (h *hydraProc) patchMetadata(t *testing.T, id string, metadata map[string]any) {
	t.Helper()
	patch := []map[string]any{{"op": "replace", "path": "/metadata", "value": metadata}}
	h.adminJSON(t, http.MethodPatch, "/admin/clients/"+url.PathEscape(id), patch, http.StatusOK, nil)
}

func m2mClientSpec(name string, scopes []string, audience ...string) map[string]any {
	return map[string]any{
		"client_name":           name,
		"grant_types":           []string{"client_credentials"},
		"scope":                 strings.Join(scopes, " "),
		"audience":              audience,
		"access_token_strategy": "jwt",
	}
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
}

// token posts form to Hydra's token endpoint with client_secret_basic.
func (h *hydraProc) token(t *testing.T, c oauthClient, form url.Values) tokenResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.public+"/oauth2/token", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// RFC 6749 2.3.1: id and secret are form-encoded before basic auth.
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	resp, err := h.hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equalf(t, http.StatusOK, resp.StatusCode, "token endpoint: %s", raw)
	var tr tokenResponse
	require.NoError(t, json.Unmarshal(raw, &tr))
	require.NotEmpty(t, tr.AccessToken)
	require.Equal(t, "bearer", strings.ToLower(tr.TokenType))
	return tr
}

func (h *hydraProc) clientCredentials(t *testing.T, c oauthClient, scopes []string, audience string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {strings.Join(scopes, " ")}}
	if audience != "" {
		form.Set("audience", audience)
	}
	return h.token(t, c, form).AccessToken
}

// revoke revokes token at Hydra's public POST /oauth2/revoke (RFC 7009)
// with the client's basic authentication.
func (h *hydraProc) revoke(t *testing.T, c oauthClient, token string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.public+"/oauth2/revoke",
		strings.NewReader(url.Values{"token": {token}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	resp, err := h.hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	require.Equalf(t, http.StatusOK, resp.StatusCode, "POST /oauth2/revoke: %s", raw)
}

// introspectActive asks Hydra's admin POST /admin/oauth2/introspect
// directly whether token is active.
func (h *hydraProc) introspectActive(t *testing.T, token string) bool {
	t.Helper()
	resp, err := h.hc.PostForm(h.admin+"/admin/oauth2/introspect", url.Values{"token": {token}})
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equalf(t, http.StatusOK, resp.StatusCode, "introspect: %s", raw)
	var ans struct {
		Active *bool `json:"active"`
	}
	require.NoErrorf(t, json.Unmarshal(raw, &ans), "introspect: %s", raw)
	require.NotNilf(t, ans.Active, "introspection answer without active: %s", raw)
	return *ans.Active
}

// userToken runs the authorization-code flow without a browser: Hydra's
// redirects are followed by hand with a cookie jar, and the login and
// consent apps (which do not exist) are replaced by the admin accept calls.
func (h *hydraProc) userToken(t *testing.T, c oauthClient, redirectURI, subject string, scopes []string, audience string, accessTokenSession map[string]any) string {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	browser := &http.Client{
		Jar:     jar,
		Timeout: httpTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // every hop is taken by follow below
		},
	}
	state := randomHex(t, 16)

	q := url.Values{
		"client_id":     {c.ID},
		"response_type": {"code"},
		"scope":         {strings.Join(scopes, " ")},
		"redirect_uri":  {redirectURI},
		"state":         {state},
	}
	if audience != "" {
		q.Set("audience", audience)
	}
	// 1. The authorization request ends at the login app with a challenge.
	loc := h.follow(t, browser, h.public+"/oauth2/auth?"+q.Encode())
	require.Equal(t, "/login", loc.Path, "expected a redirect to the login app, got %s", loc)
	loginChallenge := loc.Query().Get("login_challenge")
	require.NotEmpty(t, loginChallenge)

	// 2. Accept the login; Hydra's redirect_to leads to the consent app.
	var accepted struct {
		RedirectTo string `json:"redirect_to"`
	}
	h.adminJSON(t, http.MethodPut, "/admin/oauth2/auth/requests/login/accept?login_challenge="+url.QueryEscape(loginChallenge),
		map[string]any{"subject": subject}, http.StatusOK, &accepted)
	loc = h.follow(t, browser, accepted.RedirectTo)
	require.Equal(t, "/consent", loc.Path, "expected a redirect to the consent app, got %s", loc)
	consentChallenge := loc.Query().Get("consent_challenge")
	require.NotEmpty(t, consentChallenge)

	// 3. Accept the consent with the session claims; redirect_to leads to
	// the client's callback with the code.
	consent := map[string]any{
		"grant_scope": scopes,
		"session":     map[string]any{"access_token": accessTokenSession},
	}
	if audience != "" {
		consent["grant_access_token_audience"] = []string{audience}
	}
	accepted.RedirectTo = ""
	h.adminJSON(t, http.MethodPut, "/admin/oauth2/auth/requests/consent/accept?consent_challenge="+url.QueryEscape(consentChallenge),
		consent, http.StatusOK, &accepted)
	loc = h.follow(t, browser, accepted.RedirectTo)
	cb, err := url.Parse(redirectURI)
	require.NoError(t, err)
	require.Equal(t, cb.Host+cb.Path, loc.Host+loc.Path, "expected the client's callback, got %s", loc)
	require.Equal(t, state, loc.Query().Get("state"))
	code := loc.Query().Get("code")
	require.NotEmpty(t, code, "callback without code: %s", loc)

	// 4. Exchange the code.
	return h.token(t, c, url.Values{
		"grant_type":   {"authorization_code"},
		"code":         {code},
		"redirect_uri": {redirectURI},
	}).AccessToken
}

// follow GETs target and the redirects that stay on Hydra, and returns the
// first Location that leaves Hydra (login, consent or callback URL).
func (h *hydraProc) follow(t *testing.T, browser *http.Client, target string) *url.URL {
	t.Helper()
	pub, err := url.Parse(h.public)
	require.NoError(t, err)
	for hop := 0; hop < 10; hop++ {
		resp, err := browser.Get(target)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Truef(t, resp.StatusCode >= 300 && resp.StatusCode < 400, "GET %s: want a redirect, got %d %s", target, resp.StatusCode, body)
		loc, err := resp.Location()
		require.NoError(t, err)
		if loc.Host != pub.Host {
			return loc
		}
		target = loc.String()
	}
	t.Fatalf("too many redirects from %s", target)
	return nil
}

// rotateKey creates a new key in the access-token key set; Hydra signs new
// tokens with it at once. It returns the new kid.
func (h *hydraProc) rotateKey(t *testing.T) string {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
			Alg string `json:"alg"`
		} `json:"keys"`
	}
	h.adminJSON(t, http.MethodPost, "/admin/keys/hydra.jwt.access-token",
		map[string]string{"alg": "RS256", "use": "sig"}, http.StatusCreated, &set)
	require.Len(t, set.Keys, 1)
	require.NotEmpty(t, set.Keys[0].Kid)
	return set.Keys[0].Kid
}

// publishedKids lists the kids in Hydra's public JWKS.
func (h *hydraProc) publishedKids(t *testing.T) []string {
	t.Helper()
	resp, err := h.hc.Get(h.public + "/.well-known/jwks.json")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&set))
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

// ---------------------------------------------------------------- JWTs

// jwtParts decodes a compact JWS's header and claims without verifying it.
func jwtParts(t *testing.T, token string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	require.Len(t, parts, 3, "not a compact JWS: %q", token)
	for i, dst := range []*map[string]any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(raw, dst))
	}
	return header, claims
}

func kidOf(t *testing.T, token string) string {
	t.Helper()
	h, _ := jwtParts(t, token)
	kid, _ := h["kid"].(string)
	require.NotEmpty(t, kid)
	return kid
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// ---------------------------------------------------------------- server

// buildExample builds examples/<name> in its module, examples (nested in
// the repository, requiring the root module through a replace), with that
// module's own dependencies.
func buildExample(tmp, name string) (string, error) {
	dir := filepath.Join(suite.repoRoot, "examples")
	if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
		return "", fmt.Errorf("examples/%s: %w", name, err)
	}
	bin := filepath.Join(tmp, name)
	t0 := time.Now()
	if err := goBuild(dir, []string{"GOWORK=off"}, "-o", bin, "./"+name); err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "e2e: built examples/%s in %s\n", name, time.Since(t0).Round(time.Millisecond))
	return bin, nil
}

type server struct {
	proc *proc
	addr string // host:port
	base string // http://addr
}

// startServer starts examples/server with the given flags on a free port
// and waits until /healthz answers 200. It is stopped when t ends.
func startServer(t *testing.T, name string, flags ...string) *server {
	t.Helper()
	_, bin := needServer(t)
	port, err := freePort()
	require.NoError(t, err)
	s := &server{addr: fmt.Sprintf("127.0.0.1:%d", port)}
	s.base = "http://" + s.addr
	// The server also reads AEGIS_<FLAG> from the environment: drop all
	// AEGIS_ variables so that only the flags given here apply.
	env := childEnv([]string{"AEGIS_"})
	args := append([]string{"-addr", s.addr}, flags...)
	s.proc, err = startProc(name, filepath.Join(suite.tmp, name+".log"), env, bin, args...)
	require.NoError(t, err)
	t.Cleanup(func() {
		s.proc.stop()
		if t.Failed() {
			s.proc.dumpTail(os.Stderr, 40)
		}
	})
	require.NoError(t, s.proc.waitReady(s.base+"/healthz", startTimeout, func(status int, _ []byte) bool {
		return status == http.StatusOK
	}))
	return s
}

// pollStatus calls method path with token every interval until the
// status is want or the deadline passes, and returns the last answer.
func (s *server) pollStatus(t *testing.T, method, path, token string, want int, deadline time.Time, interval time.Duration) response {
	t.Helper()
	for {
		r := s.call(t, method, path, token)
		if r.status == want || time.Now().After(deadline) {
			return r
		}
		time.Sleep(interval) // polling interval, not synchronisation
	}
}

// workerRun is the outcome of one examples/worker run.
type workerRun struct {
	err            error // nil: exit status 0
	stdout, stderr string
}

func (w workerRun) String() string {
	return fmt.Sprintf("err=%v\nstdout:\n%s\nstderr:\n%s", w.err, w.stdout, w.stderr)
}

// runWorker runs examples/worker with args and the extra environment
// (inherited AEGIS_ variables are dropped) and waits at most a minute.
func runWorker(t *testing.T, extraEnv []string, args ...string) workerRun {
	t.Helper()
	bin := needWorker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = childEnv([]string{"AEGIS_"}, extraEnv...)
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "worker did not finish within a minute")
	return workerRun{err: err, stdout: stdout.String(), stderr: stderr.String()}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// call sends a request to the server with token as bearer (none if "").
func (s *server) call(t *testing.T, method, path, token string) response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), httpTimeout)
	defer cancel()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(`{"value":"e2e"}`)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, body)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: raw}
}

func (r response) String() string {
	return fmt.Sprintf("%d WWW-Authenticate=%q body=%s", r.status, r.header.Values("WWW-Authenticate"), r.body)
}

// parseChallenge parses a WWW-Authenticate value of the form
// `Scheme k="v", k2=v2` into its scheme and parameters.
func parseChallenge(v string) (scheme string, params map[string]string, err error) {
	v = strings.TrimSpace(v)
	scheme, rest, _ := strings.Cut(v, " ")
	params = map[string]string{}
	for rest = strings.TrimSpace(rest); rest != ""; rest = strings.TrimLeft(rest, ", ") {
		k, after, ok := strings.Cut(rest, "=")
		if !ok {
			return scheme, params, fmt.Errorf("parameter without '=' in %q", v)
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if strings.HasPrefix(after, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(after) && after[i] != '"'; i++ {
				if after[i] == '\\' && i+1 < len(after) {
					i++
				}
				b.WriteByte(after[i])
			}
			if i >= len(after) {
				return scheme, params, errors.New("unterminated quoted string in " + v)
			}
			params[k], rest = b.String(), after[i+1:]
		} else {
			val, r, _ := strings.Cut(after, ",")
			params[k], rest = strings.TrimSpace(val), r
		}
	}
	return scheme, params, nil
}
