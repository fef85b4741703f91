package middleware_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"hash"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/introspect"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/scopes"
)

// The attack suite (issue #7): every row is a known attack on JWT or
// bearer-token validation, named after its source (a tool, an RFC section
// or a CVE of another library), sent through a real Guard built with
// middleware.New against a jwkstest issuer. Each row must be refused with
// the status, RFC 6750 error code and Aegis reason it names: never a 2xx,
// never a 500, never a panic. 503 appears only where the introspection
// endpoint itself gave an answer that cannot be trusted, which Aegis's
// failure policy treats as the dependency being unavailable.
//
// Across the whole suite no URL a token names is fetched (the attacker's
// server counts zero requests), every outgoing request goes to a trusted
// issuer, and no token appears in a response or in the Guard's logs.

var atkNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func atkClock() time.Time { return atkNow }

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func b64s(s string) string { return b64u([]byte(s)) }

// atkOutbound records the host of every request a Guard makes.
type atkOutbound struct {
	base    http.RoundTripper
	mu      sync.Mutex
	hosts   map[string]int
	allowed map[string]bool
}

func (o *atkOutbound) RoundTrip(r *http.Request) (*http.Response, error) {
	o.mu.Lock()
	o.hosts[r.URL.Host]++
	o.mu.Unlock()
	return o.base.RoundTrip(r)
}

func (o *atkOutbound) allow(rawURL string) {
	u, err := url.Parse(rawURL)
	if err != nil {
		panic(err)
	}
	o.mu.Lock()
	o.allowed[u.Host] = true
	o.mu.Unlock()
}

// atkLog is a concurrency-safe buffer for the Guards' debug logs.
type atkLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *atkLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *atkLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// atkSuite is shared by every row: the attacker's server and what the
// Guards sent and logged.
type atkSuite struct {
	attacker     *httptest.Server
	attackerHits atomic.Int64
	attackerKey  *jwkstest.Key // RS256, never published by any issuer
	// caseJWKs are ES256 keys every issuer publishes with a member name
	// in another case (see atkCaseVariants): none may verify anything.
	caseJWKs map[string]*jwkstest.Key
	outbound *atkOutbound
	client   *http.Client
	log      *atkLog
}

func newAtkSuite(t *testing.T) *atkSuite {
	t.Helper()
	s := &atkSuite{attackerKey: jwkstest.NewKey("RS256"), log: &atkLog{}}
	s.attackerKey.ID = "attacker"
	s.caseJWKs = map[string]*jwkstest.Key{}
	for name := range atkCaseVariants {
		s.caseJWKs[name] = jwkstest.NewKey("ES256")
	}
	attackerJWKS, err := json.Marshal(map[string]any{"keys": []json.RawMessage{s.attackerKey.JWK()}})
	require.NoError(t, err)
	s.attacker = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.attackerHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(attackerJWKS)
	}))
	t.Cleanup(s.attacker.Close)
	transport := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(transport.CloseIdleConnections)
	s.outbound = &atkOutbound{base: transport, hosts: map[string]int{}, allowed: map[string]bool{}}
	s.client = &http.Client{Transport: s.outbound}
	return s
}

// atkCaseVariants are JWKs whose members differ from a registered name only
// in case (RFC 7517 §4: member names are case-sensitive; encoding/json
// matches them case-insensitively): the member dropped from the genuine
// JWK and the members written in its place, in this order.
var atkCaseVariants = map[string]struct{ drop, members string }{
	"use enc, then USE sig":                {"use", `"use":"enc","USE":"sig"`},
	"key_ops encrypt, then KEY_OPS verify": {"use", `"key_ops":["encrypt"],"KEY_OPS":["verify"]`},
	"Use sig in place of use":              {"use", `"Use":"sig"`},
}

// caseVariantJWK is k's JWK with the variant's member names.
func caseVariantJWK(t *testing.T, k *jwkstest.Key, drop, members string) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(k.JWK(), &m))
	delete(m, drop)
	b := atkJSON(t, m)
	return json.RawMessage(`{` + members + `,` + string(b[1:]))
}

// Guard profiles a row can be sent through.
const (
	profJWT        = "jwt"        // ModeJWT, defaults
	profHybrid     = "hybrid"     // ModeHybrid: opaque tokens introspected
	profIntrospect = "introspect" // ModeIntrospect: every token introspected
	profTyp        = "typ"        // ModeJWT with RequireJWTAccessTokenType
	profQuery      = "query"      // ModeJWT with Bearer.AllowQuery
)

// atkEnv is an issuer publishing RS256, ES256, ES384 and EdDSA keys, the
// Guards that trust it, and another issuer nobody trusts.
type atkEnv struct {
	*atkSuite
	iss                   *jwkstest.Issuer
	other                 *jwkstest.Issuer
	rsa, es256, es384, ed *jwkstest.Key
	handlers              map[string]http.Handler
	guards                map[string]*middleware.Guard
}

func newAtkEnv(t *testing.T, s *atkSuite, serveIntrospection http.Handler) *atkEnv {
	t.Helper()
	e := &atkEnv{atkSuite: s, handlers: map[string]http.Handler{}, guards: map[string]*middleware.Guard{}}
	e.iss = jwkstest.NewIssuer(t, jwkstest.Config{Now: atkClock})
	e.rsa = e.iss.CurrentKey()
	e.es256 = e.iss.Rotate("ES256")
	e.es384 = e.iss.Rotate("ES384")
	e.ed = e.iss.Rotate("EdDSA")
	if serveIntrospection != nil {
		e.iss.ServeIntrospectionWith(serveIntrospection)
	}
	for name, k := range s.caseJWKs {
		e.iss.PublishRawJWK(caseVariantJWK(t, k, atkCaseVariants[name].drop, atkCaseVariants[name].members))
	}
	e.other = jwkstest.NewIssuer(t, jwkstest.Config{Now: atkClock})
	s.outbound.allow(e.iss.URL)

	profiles := map[string]func(*setup){
		profJWT:        nil,
		profHybrid:     func(c *setup) { c.Mode = modeHybrid },
		profIntrospect: func(c *setup) { c.Mode = modeIntrospect },
		profTyp:        func(c *setup) { c.RequireJWTAccessTokenType = true },
		profQuery:      func(c *setup) { c.Bearer.AllowQuery = true },
	}
	logger := slog.New(slog.NewTextHandler(s.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for name, tweak := range profiles {
		cfg := setup{Config: middleware.Config{
			Issuer: e.iss.URL, Audience: e.iss.Audience, Now: atkClock, Logger: logger,
			ErrorWriter: func(w http.ResponseWriter, r *http.Request, err *middleware.Error) {
				w.Header().Set("X-Attack-Reason", string(err.Reason))
				middleware.WriteProblem(w, r, err)
			},
		}, HTTPClient: s.client, Introspection: introspect.Config{Endpoint: e.iss.IntrospectionURL()}}
		if tweak != nil {
			tweak(&cfg)
		}
		if cfg.Mode == "" {
			cfg.Introspection = introspect.Config{}
		}
		g := mustGuard(t, cfg)
		e.guards[name] = g
		e.handlers[name] = g.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "the protected resource")
		}), scopes.All("data:read"))
	}
	return e
}

// claims are a genuine access token's claims granting the route's scope.
func (e *atkEnv) claims() map[string]any { return e.iss.Claims("worker", "worker", "data:read") }

func atkJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// payloadWith returns the genuine claims with one claim's JSON value
// replaced by raw (removed when raw is empty). raw must be valid JSON.
func (e *atkEnv) payloadWith(t *testing.T, name, raw string) []byte {
	t.Helper()
	c := e.claims()
	if raw == "" {
		delete(c, name)
	} else {
		c[name] = json.RawMessage(raw)
	}
	return atkJSON(t, c)
}

// payloadSpliced appends a member written as is (possibly invalid JSON).
func (e *atkEnv) payloadSpliced(t *testing.T, drop, member string) []byte {
	t.Helper()
	c := e.claims()
	delete(c, drop)
	b := atkJSON(t, c)
	return append(b[:len(b)-1], []byte(","+member+"}")...)
}

func (e *atkEnv) header(k *jwkstest.Key, extra string) []byte {
	return []byte(`{"alg":"` + k.Algorithm + `","kid":"` + k.ID + `","typ":"JWT"` + extra + `}`)
}

// genuine signs payload with the issuer's RS256 key under a plain header:
// the signature is valid, so only the payload can be at fault.
func (e *atkEnv) genuine(payload []byte) string {
	return jwkstest.SignRaw(e.rsa, e.header(e.rsa, ""), payload)
}

func (e *atkEnv) valid(t *testing.T) string {
	t.Helper()
	return e.genuine(atkJSON(t, e.claims()))
}

func atkParts(token string) []string { return strings.Split(token, ".") }

func atkHMAC(alg string, key []byte, input string) []byte {
	var h func() hash.Hash
	switch alg {
	case "HS256":
		h = sha256.New
	case "HS384":
		h = sha512.New384
	default:
		h = sha512.New
	}
	mac := hmac.New(h, key)
	mac.Write([]byte(input))
	return mac.Sum(nil)
}

func (e *atkEnv) hmacToken(t *testing.T, alg string, key []byte, headerExtra string) string {
	t.Helper()
	input := b64s(`{"alg":"`+alg+`","typ":"JWT"`+headerExtra+`}`) + "." + b64u(atkJSON(t, e.claims()))
	return input + "." + b64u(atkHMAC(alg, key, input))
}

func (e *atkEnv) noneToken(t *testing.T, alg, sig string) string {
	t.Helper()
	return b64s(`{"alg":"`+alg+`","typ":"JWT"}`) + "." + b64u(atkJSON(t, e.claims())) + "." + sig
}

// attackerSigned signs with the attacker's own RS256 key under header.
func (e *atkEnv) attackerSigned(t *testing.T, header string) string {
	t.Helper()
	return jwkstest.SignRaw(e.attackerKey, []byte(header), atkJSON(t, e.claims()))
}

// rsaEncodings are the issuer's RSA public key in every form a library
// might have been given as an HMAC secret.
func (e *atkEnv) rsaEncodings(t *testing.T) map[string][]byte {
	t.Helper()
	pub := e.rsa.Public().(*rsa.PublicKey)
	pkix, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	pkcs1 := x509.MarshalPKCS1PublicKey(pub)
	pemPKIX := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})
	pemPKCS1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: pkcs1})
	return map[string][]byte{
		"PEM PKIX with trailing newline":     pemPKIX,
		"PEM PKIX without trailing newline":  bytes.TrimSuffix(pemPKIX, []byte("\n")),
		"PEM PKCS1 with trailing newline":    pemPKCS1,
		"PEM PKCS1 without trailing newline": bytes.TrimSuffix(pemPKCS1, []byte("\n")),
		"DER PKIX":                           pkix,
		"DER PKCS1":                          pkcs1,
		"JWK JSON":                           e.rsa.JWK(),
		"JWK Set JSON":                       atkJSON(t, map[string]any{"keys": []json.RawMessage{e.rsa.JWK()}}),
		"modulus bytes":                      pub.N.Bytes(),
		"modulus base64url (the JWK's n)":    []byte(b64u(pub.N.Bytes())),
	}
}

func p1363(r, s *big.Int, size int) []byte {
	b := make([]byte, 2*size)
	r.FillBytes(b[:size])
	s.FillBytes(b[size:])
	return b
}

// ecToken signs the genuine claims with k and returns the token and its
// signature's r and s.
func (e *atkEnv) ecToken(t *testing.T, k *jwkstest.Key) (input string, r, s *big.Int, size int) {
	t.Helper()
	tok := jwkstest.SignRaw(k, e.header(k, ""), atkJSON(t, e.claims()))
	p := atkParts(tok)
	sig, err := base64.RawURLEncoding.DecodeString(p[2])
	require.NoError(t, err)
	size = len(sig) / 2
	return p[0] + "." + p[1], new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:]), size
}

func curveOrder(k *jwkstest.Key) *big.Int {
	return k.Private.Public().(*ecdsa.PublicKey).Curve.Params().N
}

// ed25519L is the order of Ed25519's base point (RFC 8032 §5.1).
var ed25519L, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)

func reversed(b []byte) []byte {
	out := make([]byte, len(b))
	for i := range b {
		out[len(b)-1-i] = b[i]
	}
	return out
}

func (s *atkSuite) selfSignedCert(t *testing.T) string {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "athena.example.com"},
		NotBefore: atkNow.Add(-time.Hour), NotAfter: atkNow.Add(time.Hour)}
	priv := s.attackerKey.Private
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(der)
}

func formRequest(body string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/data", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

type attackRow struct {
	source string
	name   string
	// profile is the Guard the row goes through (profJWT when empty).
	// Rows of profJWT are also sent through profHybrid, where they must be
	// refused with the same status and code.
	profile string
	token   func(t *testing.T, e *atkEnv) string
	// request builds the request from the token; nil: GET with
	// "Authorization: Bearer <token>".
	request func(e *atkEnv, token string) *http.Request
	// serve replaces the issuer's introspection endpoint; such a row gets
	// an environment of its own (its answers are cached per Guard).
	serve http.HandlerFunc
	// ownEnv gives the row an environment of its own too: its token
	// function changes the issuer's keys.
	ownEnv bool

	status int
	code   string // the challenge's error="…", empty for none
	reason string // the Guard's Error.Reason
	// hybridReason is the reason in ModeHybrid when it differs: tokens not
	// shaped like a JWT go to introspection there, which says inactive.
	hybridReason string
}

// TestAttackSuite runs every row; see the comment at the top of the file.
func TestAttackSuite(t *testing.T) {
	suite := newAtkSuite(t)
	shared := newAtkEnv(t, suite, nil)
	// A genuine token of each algorithm passes every JWT profile, so a
	// refusal below is the row's doing, not a broken environment.
	for _, k := range []*jwkstest.Key{shared.rsa, shared.es256, shared.es384, shared.ed} {
		for _, p := range []string{profJWT, profHybrid, profIntrospect, profQuery} {
			// SignWith mints the token, so the issuer's introspection knows it.
			tok := shared.iss.SignWith(k, nil, shared.claims())
			rec := httptest.NewRecorder()
			shared.handlers[p].ServeHTTP(rec, get("/data", "Bearer "+tok))
			require.Equal(t, http.StatusOK, rec.Code, "genuine %s token through %s: %s", k.Algorithm, p, rec.Header().Get("X-Attack-Reason"))
		}
		tok := shared.iss.SignWith(k, map[string]any{"typ": "at+jwt"}, shared.claims())
		rec := httptest.NewRecorder()
		shared.handlers[profTyp].ServeHTTP(rec, get("/data", "Bearer "+tok))
		require.Equal(t, http.StatusOK, rec.Code, "genuine at+jwt %s token through %s", k.Algorithm, profTyp)
	}
	rec := httptest.NewRecorder()
	shared.handlers[profHybrid].ServeHTTP(rec, get("/data", "Bearer "+shared.iss.OpaqueM2M("worker", "data:read")))
	require.Equal(t, http.StatusOK, rec.Code, "genuine opaque token through hybrid")

	rows := attackRows(t)
	require.GreaterOrEqual(t, len(rows), 150)
	names := map[string]bool{}
	for _, tc := range rows {
		require.NotEmpty(t, tc.source, tc.name)
		require.False(t, names[tc.name], "duplicate row name %q", tc.name)
		names[tc.name] = true
		require.True(t, tc.status >= 400 && tc.status != http.StatusInternalServerError, tc.name)
	}

	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			e := shared
			if tc.serve != nil || tc.ownEnv {
				e = newAtkEnv(t, suite, tc.serve)
			}
			token := tc.token(t, e)
			profile := tc.profile
			if profile == "" {
				profile = profJWT
			}
			runAttack(t, e, tc, profile, token, tc.reason)
			if profile == profJWT {
				want := tc.reason
				if tc.hybridReason != "" {
					want = tc.hybridReason
				}
				runAttack(t, e, tc, profHybrid, token, want)
			}
		})
	}

	// The whole suite: nothing a token named was fetched, and every
	// request the Guards made went to the issuer they trust.
	assert.Zero(t, suite.attackerHits.Load(), "the attacker's server was contacted")
	suite.outbound.mu.Lock()
	issuerURL, err := url.Parse(shared.iss.URL)
	require.NoError(t, err)
	assert.NotZero(t, suite.outbound.hosts[issuerURL.Host], "the recorder sees the Guards' requests")
	for host, n := range suite.outbound.hosts {
		assert.True(t, suite.outbound.allowed[host], "%d requests to %s, which is no trusted issuer", n, host)
	}
	suite.outbound.mu.Unlock()
	assert.Zero(t, shared.other.JWKSFetches(), "the untrusted issuer's keys were fetched")
	// Each of the shared env's five Guards fetches the key set once, plus
	// at most one refetch for unknown kids within the (frozen) cooldown.
	assert.LessOrEqual(t, shared.iss.JWKSFetches(), int64(2*len(shared.guards)), "unknown kids must not cause a fetch each")
}

func runAttack(t *testing.T, e *atkEnv, tc attackRow, profile, token, reason string) {
	t.Helper()
	req := get("/data", "Bearer "+token)
	if tc.request != nil {
		req = tc.request(e, token)
	}
	logBefore := len(e.log.String())
	rec := httptest.NewRecorder()
	require.NotPanics(t, func() { e.handlers[profile].ServeHTTP(rec, req) }, "%s: panic", profile)

	got := rec.Header().Get("X-Attack-Reason")
	require.Equal(t, tc.status, rec.Code, "%s: status (reason %q)", profile, got)
	assert.Equal(t, reason, got, "%s: reason", profile)
	challenge := rec.Header().Get("WWW-Authenticate")
	for _, c := range rec.Header().Values("WWW-Authenticate") {
		// Under DPoP, the DPoP challenge carries the error (RFC 9449 §7.1).
		if d, ok := strings.CutPrefix(c, "DPoP "); ok && strings.Contains(d, `error="`) {
			challenge = "Bearer " + d
		}
	}
	switch {
	case rec.Code == http.StatusServiceUnavailable:
		assert.Empty(t, challenge, "%s: a 503 carries no challenge", profile)
		assert.NotEmpty(t, rec.Header().Get("Retry-After"), "%s: a 503 says when to retry", profile)
	case tc.code == "":
		assert.Equal(t, `Bearer realm="api"`, challenge, "%s: challenge", profile)
	default:
		assert.True(t, strings.HasPrefix(challenge, `Bearer realm="api", error="`+tc.code+`", error_description="`),
			"%s: challenge %q lacks error=%q", profile, challenge, tc.code)
	}
	assert.NotContains(t, rec.Body.String(), "the protected resource", "%s: the handler ran", profile)

	// Secrecy: neither the token nor any sizeable part of it is echoed in
	// the answer or written to the log. (No assertion prints the token.)
	logs := e.log.String()[logBefore:]
	for _, part := range append([]string{token}, atkParts(token)...) {
		if len(part) < 16 {
			continue
		}
		assert.False(t, strings.Contains(rec.Body.String(), part), "%s: the body echoes the token", profile)
		assert.False(t, strings.Contains(challenge, part), "%s: the challenge echoes the token", profile)
		assert.False(t, strings.Contains(logs, part), "%s: the log holds the token", profile)
	}
}

const (
	reasonMalformed = "token_malformed"
	reasonAlg       = "algorithm_rejected"
	reasonSig       = "signature_invalid"
	reasonKey       = "key_unknown"
	reasonClaims    = "claims_invalid"
	reasonIssuer    = "issuer_mismatch"
	reasonAudience  = "audience_mismatch"
	reasonExpired   = "token_expired"
	reasonEarly     = "token_not_yet_valid"
	reasonType      = "type_rejected"
	reasonInactive  = "token_inactive"
	reasonRequest   = "request_malformed"
	reasonMissing   = "token_missing"
	reasonTooLong   = "token_too_long"
	reasonIntroDown = "introspection_unavailable"
)

func attackRows(t *testing.T) []attackRow {
	var rows []attackRow
	add := func(r attackRow) { rows = append(rows, r) }
	// tokenRow: a bearer token in the header, refused with 401 invalid_token.
	tokenRow := func(source, name string, reason string, token func(t *testing.T, e *atkEnv) string) attackRow {
		return attackRow{source: source, name: name, token: token, status: 401, code: "invalid_token", reason: reason}
	}
	// notJWT marks a token that is not shaped like a JWT at all: ModeJWT
	// calls it malformed, ModeHybrid introspects it and hears "inactive".
	notJWT := func(r attackRow) attackRow {
		r.hybridReason = reasonInactive
		return r
	}

	// --- alg none (RFC 7518 §3.6, RFC 8725 §3.1) ----------------------
	for _, alg := range []string{"none", "None", "NONE", "nOnE", "NoNe", "none ", " none", `none\u0000`, `n\u006fne`} {
		add(tokenRow("jwt_tool -X a (alg:none); RFC 8725 §3.1", "alg "+alg+" with an empty signature", reasonMalformed,
			func(t *testing.T, e *atkEnv) string { return e.noneToken(t, alg, "") }))
		add(tokenRow("RFC 8725 §3.1; CVE-2020-15957 (DP-3T backend accepted alg none)", "alg "+alg+" with a signature", reasonAlg,
			func(t *testing.T, e *atkEnv) string { return e.noneToken(t, alg, b64s("any signature at all")) }))
	}
	add(tokenRow("RFC 8725 §3.1", "alg none carrying the issuer's genuine signature of the same claims", reasonAlg, func(t *testing.T, e *atkEnv) string {
		payload := atkJSON(t, e.claims())
		sig := atkParts(e.genuine(payload))[2]
		return b64s(`{"alg":"none","kid":"`+e.rsa.ID+`"}`) + "." + b64u(payload) + "." + sig
	}))
	add(tokenRow("RFC 8725 §3.1", "alg none with a truncated signature", reasonAlg, func(t *testing.T, e *atkEnv) string {
		return e.noneToken(t, "none", atkParts(e.valid(t))[2][:40])
	}))
	add(notJWT(tokenRow("jwt_tool -X a (alg:none); RFC 7515 §7.1", "alg none as a two-part token", reasonMalformed, func(t *testing.T, e *atkEnv) string {
		return b64s(`{"alg":"none"}`) + "." + b64u(atkJSON(t, e.claims()))
	})))
	add(tokenRow("jwt_tool -X n (null signature); CVE-2020-28042 (ServiceStack empty signature)", "genuine header and claims with the signature removed", reasonMalformed,
		func(t *testing.T, e *atkEnv) string {
			p := atkParts(e.valid(t))
			return p[0] + "." + p[1] + "."
		}))
	add(notJWT(tokenRow("jwt_tool -X n (null signature)", "genuine header and claims without a signature part", reasonMalformed, func(t *testing.T, e *atkEnv) string {
		p := atkParts(e.valid(t))
		return p[0] + "." + p[1]
	})))
	for _, alg := range []string{`null`, `""`, `["RS256","none"]`, `{"none":true}`, `true`, `256`} {
		reason := reasonMalformed
		if alg == `""` {
			reason = reasonAlg
		}
		add(tokenRow("RFC 7515 §4.1.1 (alg is a case-sensitive string)", "alg as "+alg, reason, func(t *testing.T, e *atkEnv) string {
			return jwkstest.SignRaw(e.rsa, []byte(`{"alg":`+alg+`,"kid":"`+e.rsa.ID+`"}`), atkJSON(t, e.claims()))
		}))
	}

	// --- RS256 -> HS* key confusion (RFC 8725 §2.1, §3.1) -------------
	confusionSources := map[string]string{
		"HS256": "CVE-2015-9235 (node-jsonwebtoken key confusion); jwt_tool -X k",
		"HS384": "CVE-2016-10555 (jwt-simple)",
		"HS512": "CVE-2023-48238 (json-web-token alg confusion)",
	}
	for _, alg := range []string{"HS256", "HS384", "HS512"} {
		for _, enc := range []string{
			"PEM PKIX with trailing newline", "PEM PKIX without trailing newline",
			"PEM PKCS1 with trailing newline", "PEM PKCS1 without trailing newline",
			"DER PKIX", "DER PKCS1", "JWK JSON", "JWK Set JSON", "modulus bytes", "modulus base64url (the JWK's n)",
		} {
			add(tokenRow(confusionSources[alg], alg+" keyed with the issuer's RSA public key, "+enc, reasonAlg, func(t *testing.T, e *atkEnv) string {
				return e.hmacToken(t, alg, e.rsaEncodings(t)[enc], `,"kid":"`+e.rsa.ID+`"`)
			}))
		}
		add(tokenRow(confusionSources[alg], alg+" keyed with the issuer's RSA public key (PEM), no kid", reasonAlg, func(t *testing.T, e *atkEnv) string {
			return e.hmacToken(t, alg, e.rsaEncodings(t)["PEM PKIX with trailing newline"], "")
		}))
	}
	add(tokenRow("RFC 8725 §3.1 (key confusion with an EC key)", "HS256 keyed with the issuer's P-256 public key (PEM)", reasonAlg, func(t *testing.T, e *atkEnv) string {
		der, err := x509.MarshalPKIXPublicKey(e.es256.Public())
		require.NoError(t, err)
		return e.hmacToken(t, "HS256", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), `,"kid":"`+e.es256.ID+`"`)
	}))
	add(tokenRow("RFC 8725 §3.1 (key confusion with an OKP key)", "HS256 keyed with the issuer's Ed25519 public key bytes", reasonAlg, func(t *testing.T, e *atkEnv) string {
		return e.hmacToken(t, "HS256", e.ed.Public().(ed25519.PublicKey), `,"kid":"`+e.ed.ID+`"`)
	}))

	// --- blank and common HMAC secrets ---------------------------------
	for _, secret := range []string{"", "secret", "password", "your-256-bit-secret", "secretkey", "changeme", "jwt", "key", "123456", "null"} {
		source := "jwt_tool jwt-common.txt wordlist (-C)"
		if secret == "" {
			source = "jwt_tool -X b (blank password); CVE-2019-20933 (InfluxDB empty shared secret)"
		}
		add(tokenRow(source, "HS256 with the secret "+`"`+secret+`"`, reasonAlg, func(t *testing.T, e *atkEnv) string {
			return e.hmacToken(t, "HS256", []byte(secret), `,"kid":"`+e.rsa.ID+`"`)
		}))
	}
	add(tokenRow("PentesterLab JWT III / jwt_tool kid fuzzing: kid ../../dev/null with an empty HMAC key", "HS256 with an empty secret and kid ../../dev/null", reasonAlg,
		func(t *testing.T, e *atkEnv) string {
			return e.hmacToken(t, "HS256", nil, `,"kid":"../../../../../../dev/null"`)
		}))

	// --- keys named by the token (RFC 7515 §4.1.2-4.1.8, RFC 8725 §3.10)
	attackerJWK := func(e *atkEnv) string { return string(e.attackerKey.JWK()) }
	add(tokenRow("CVE-2018-0114 (embedded jwk, node-jose); jwt_tool -X i", "embedded jwk with the attacker's key, kid of the issuer's key", reasonMalformed,
		func(t *testing.T, e *atkEnv) string {
			return e.attackerSigned(t, `{"alg":"RS256","kid":"`+e.rsa.ID+`","jwk":`+attackerJWK(e)+`}`)
		}))
	add(tokenRow("CVE-2018-0114 (embedded jwk, node-jose)", "embedded jwk with the attacker's key, no kid", reasonMalformed, func(t *testing.T, e *atkEnv) string {
		return e.attackerSigned(t, `{"alg":"RS256","jwk":`+attackerJWK(e)+`}`)
	}))
	add(tokenRow("RFC 7515 §4.1.3; RFC 8725 §3.10", "embedded jwk holding the issuer's own key, genuine signature", reasonMalformed, func(t *testing.T, e *atkEnv) string {
		return jwkstest.SignRaw(e.rsa, e.header(e.rsa, `,"jwk":`+string(e.rsa.JWK())), atkJSON(t, e.claims()))
	}))
	add(tokenRow("jwt_tool -X s (spoof JWKS); RFC 8725 §3.10 (SSRF)", "jku to the attacker's key set, attacker's kid", reasonMalformed, func(t *testing.T, e *atkEnv) string {
		return e.attackerSigned(t, `{"alg":"RS256","kid":"attacker","jku":"`+e.attacker.URL+`/jwks.json"}`)
	}))
	add(tokenRow("jwt_tool -X s (spoof JWKS)", "jku to the attacker's key set, kid of the issuer's key", reasonMalformed, func(t *testing.T, e *atkEnv) string {
		return e.attackerSigned(t, `{"alg":"RS256","kid":"`+e.rsa.ID+`","jku":"`+e.attacker.URL+`/jwks.json"}`)
	}))
	add(tokenRow("RFC 8725 §3.10 (jku to the issuer's own host is still not followed)", "jku to the issuer's own key set", reasonMalformed, func(t *testing.T, e *atkEnv) string {
		return e.attackerSigned(t, `{"alg":"RS256","kid":"attacker","jku":"`+e.iss.JWKSURL()+`"}`)
	}))
	add(tokenRow("RFC 7515 §4.1.5; RFC 8725 §3.10 (SSRF)", "x5u to the attacker's server", reasonMalformed, func(t *testing.T, e *atkEnv) string {
		return e.attackerSigned(t, `{"alg":"RS256","kid":"attacker","x5u":"`+e.attacker.URL+`/cert.pem"}`)
	}))
	add(tokenRow("RFC 7515 §4.1.6 (x5c trusted without a chain to a trust anchor)", "x5c with the attacker's self-signed certificate", reasonMalformed,
		func(t *testing.T, e *atkEnv) string {
			return e.attackerSigned(t, `{"alg":"RS256","x5c":["`+e.selfSignedCert(t)+`"]}`)
		}))
	add(tokenRow("RFC 7515 §4.1.7 (x5t selects a key; Aegis ignores it)", "x5t of the attacker's certificate, attacker's signature, no kid", reasonSig,
		func(t *testing.T, e *atkEnv) string {
			der, err := base64.StdEncoding.DecodeString(e.selfSignedCert(t))
			require.NoError(t, err)
			sum := sha256.Sum256(der)
			return e.attackerSigned(t, `{"alg":"RS256","x5t#S256":"`+b64u(sum[:])+`"}`)
		}))
	add(tokenRow("RFC 7515 §4.1.7", "x5t with the issuer's kid, attacker's signature", reasonSig, func(t *testing.T, e *atkEnv) string {
		return e.attackerSigned(t, `{"alg":"RS256","kid":"`+e.rsa.ID+`","x5t":"`+b64s("0123456789abcdefghij")+`"}`)
	}))

	// --- kid injection (RFC 8725 §3.10: kid is attacker-controlled) -----
	for name, kid := range map[string]string{
		"path traversal ../../dev/null":    "../../dev/null",
		"path traversal to /etc/passwd":    "../../../../../../etc/passwd",
		"SQL ' OR 1=1--":                   "' OR 1=1--",
		"SQL UNION SELECT":                 "' UNION SELECT 'secret'--",
		"command |whoami":                  "|whoami",
		"command $(whoami)":                "$(whoami)",
		"null byte":                        `key\u0000.pem`,
		"CRLF log injection":               `x\r\nlevel=ERROR msg=forged`,
		"URL of the attacker's key set":    "{attacker}/jwks.json",
		"the attacker's own kid":           "attacker",
		"5 KB kid within the length bound": strings.Repeat("k", 5000),
	} {
		add(tokenRow("RFC 8725 §3.10; jwt_tool kid injection (-I -hc kid)", "kid "+name+", attacker's signature", reasonKey, func(t *testing.T, e *atkEnv) string {
			k := strings.ReplaceAll(kid, "{attacker}", e.attacker.URL)
			return e.attackerSigned(t, `{"alg":"RS256","kid":"`+k+`"}`)
		}))
	}
	add(tokenRow("RFC 8725 §3.10", "kid of 10 KB", reasonTooLong, func(t *testing.T, e *atkEnv) string {
		return e.attackerSigned(t, `{"alg":"RS256","kid":"`+strings.Repeat("k", 10<<10)+`"}`)
	}))
	for _, kid := range []string{`7`, `{"path":"/dev/null"}`, `["a","b"]`, `null`, `true`} {
		add(tokenRow("RFC 7515 §4.1.4 (kid is a string)", "kid as "+kid, reasonMalformed, func(t *testing.T, e *atkEnv) string {
			return e.attackerSigned(t, `{"alg":"RS256","kid":`+kid+`}`)
		}))
	}
	add(tokenRow("RFC 8725 §3.10", "kid empty: tried against the issuer's keys", reasonSig, func(t *testing.T, e *atkEnv) string {
		return e.attackerSigned(t, `{"alg":"RS256","kid":""}`)
	}))
	for name := range atkCaseVariants {
		add(tokenRow("RFC 7517 §4 (member names are case-sensitive); encoding/json matches names case-insensitively", "signed by a published JWK with "+name, reasonKey,
			func(t *testing.T, e *atkEnv) string {
				k := e.caseJWKs[name]
				return jwkstest.SignRaw(k, e.header(k, ""), atkJSON(t, e.claims()))
			}))
	}
	add(tokenRow("RFC 9068 §4 (keys of the token's issuer only)", "kid and signature of another issuer's key, iss of the trusted issuer", reasonKey,
		func(t *testing.T, e *atkEnv) string {
			return e.other.SignWith(e.other.CurrentKey(), nil, e.claims())
		}))
	add(tokenRow("RFC 9068 §4; RFC 8725 §3.8", "a genuine token of another issuer", reasonIssuer, func(t *testing.T, e *atkEnv) string {
		return e.other.M2M("worker", "data:read")
	}))
	add(tokenRow("RFC 8725 §3.8 (validate the issuer)", "another issuer's key claiming its kid is the trusted issuer's", reasonSig, func(t *testing.T, e *atkEnv) string {
		k := *e.other.CurrentKey()
		k.ID = e.rsa.ID
		return jwkstest.SignRaw(&k, e.header(&k, ""), atkJSON(t, e.claims()))
	}))

	// --- ECDSA (RFC 7518 §3.4) -------------------------------------------
	type ecCase struct {
		name, source string
		sig          func(t *testing.T, e *atkEnv, key *jwkstest.Key) (input string, sig []byte)
	}
	ecCases := []ecCase{
		{"all-zero signature (r=s=0)", "CVE-2022-21449 (Psychic Signatures)", func(t *testing.T, e *atkEnv, key *jwkstest.Key) (string, []byte) {
			in, _, _, size := e.ecToken(t, key)
			return in, make([]byte, 2*size)
		}},
		{"r=s=n (the curve order)", "CVE-2022-21449 (Psychic Signatures: r and s must lie in [1, n-1])", func(t *testing.T, e *atkEnv, key *jwkstest.Key) (string, []byte) {
			in, _, _, size := e.ecToken(t, key)
			return in, p1363(curveOrder(key), curveOrder(key), size)
		}},
		{"r=0 with a genuine s", "CVE-2022-21449 (Psychic Signatures)", func(t *testing.T, e *atkEnv, key *jwkstest.Key) (string, []byte) {
			in, _, s, size := e.ecToken(t, key)
			return in, p1363(big.NewInt(0), s, size)
		}},
		{"r=1, s=1", "CVE-2022-21449 (Psychic Signatures)", func(t *testing.T, e *atkEnv, key *jwkstest.Key) (string, []byte) {
			in, _, _, size := e.ecToken(t, key)
			return in, p1363(big.NewInt(1), big.NewInt(1), size)
		}},
		{"genuine signature DER-encoded instead of raw r||s", "RFC 7518 §3.4 (JWS uses the fixed-size r||s form, not DER)", func(t *testing.T, e *atkEnv, key *jwkstest.Key) (string, []byte) {
			in, r, s, _ := e.ecToken(t, key)
			der, err := asn1.Marshal(struct{ R, S *big.Int }{r, s})
			require.NoError(t, err)
			return in, der
		}},
		{"genuine signature with one byte cut", "RFC 7518 §3.4 (signature length)", func(t *testing.T, e *atkEnv, key *jwkstest.Key) (string, []byte) {
			in, r, s, size := e.ecToken(t, key)
			return in, p1363(r, s, size)[:2*size-1]
		}},
		{"genuine signature with a byte appended", "RFC 7518 §3.4 (signature length)", func(t *testing.T, e *atkEnv, key *jwkstest.Key) (string, []byte) {
			in, r, s, size := e.ecToken(t, key)
			return in, append(p1363(r, s, size), 0)
		}},
		{"genuine signature with r and s swapped", "RFC 7518 §3.4", func(t *testing.T, e *atkEnv, key *jwkstest.Key) (string, []byte) {
			in, r, s, size := e.ecToken(t, key)
			return in, p1363(s, r, size)
		}},
	}
	for _, curve := range []struct {
		name string
		key  func(e *atkEnv) *jwkstest.Key
	}{{"P-256 (ES256)", func(e *atkEnv) *jwkstest.Key { return e.es256 }}, {"P-384 (ES384)", func(e *atkEnv) *jwkstest.Key { return e.es384 }}} {
		for _, c := range ecCases {
			add(tokenRow(c.source, "ECDSA "+curve.name+": "+c.name, reasonSig, func(t *testing.T, e *atkEnv) string {
				in, sig := c.sig(t, e, curve.key(e))
				return in + "." + b64u(sig)
			}))
		}
	}
	add(tokenRow("RFC 8725 §3.1 (the key's algorithm, not the header's)", "ES256 header with the issuer's ES384 key and kid", reasonAlg, func(t *testing.T, e *atkEnv) string {
		input := b64u(e.header(&jwkstest.Key{ID: e.es384.ID, Algorithm: "ES256"}, "")) + "." + b64u(atkJSON(t, e.claims()))
		sum := sha256.Sum256([]byte(input))
		r, s, err := ecdsa.Sign(rand.Reader, e.es384.Private.(*ecdsa.PrivateKey), sum[:])
		require.NoError(t, err)
		return input + "." + b64u(p1363(r, s, 48))
	}))
	add(tokenRow("RFC 8725 §3.1", "ES384 header and signature under the issuer's ES256 kid", reasonAlg, func(t *testing.T, e *atkEnv) string {
		return jwkstest.SignRaw(&jwkstest.Key{ID: e.es256.ID, Algorithm: "ES384", Private: e.es384.Private}, e.header(&jwkstest.Key{ID: e.es256.ID, Algorithm: "ES384"}, ""), atkJSON(t, e.claims()))
	}))
	add(tokenRow("RFC 8725 §3.1", "ES512 header with the issuer's ES256 kid", reasonAlg, func(t *testing.T, e *atkEnv) string {
		k := jwkstest.NewKey("ES512")
		k.ID = e.es256.ID
		return jwkstest.SignRaw(k, e.header(k, ""), atkJSON(t, e.claims()))
	}))
	add(tokenRow("RFC 8725 §3.1", "RS256 header with the issuer's ES256 kid", reasonAlg, func(t *testing.T, e *atkEnv) string {
		return e.attackerSigned(t, `{"alg":"RS256","kid":"`+e.es256.ID+`"}`)
	}))

	// --- EdDSA (RFC 8032 §5.1.7, RFC 8037) -------------------------------
	edSig := func(t *testing.T, e *atkEnv) (string, []byte) {
		tok := jwkstest.SignRaw(e.ed, e.header(e.ed, ""), atkJSON(t, e.claims()))
		p := atkParts(tok)
		sig, err := base64.RawURLEncoding.DecodeString(p[2])
		require.NoError(t, err)
		return p[0] + "." + p[1], sig
	}
	for name, mutate := range map[string]func(sig []byte) []byte{
		"all-zero signature":    func(sig []byte) []byte { return make([]byte, ed25519.SignatureSize) },
		"signature of 63 bytes": func(sig []byte) []byte { return sig[:63] },
		"signature of 65 bytes": func(sig []byte) []byte { return append(sig, 0) },
		"S + L (non-canonical S, a malleated genuine signature)": func(sig []byte) []byte {
			s := new(big.Int).SetBytes(reversed(sig[32:]))
			s.Add(s, ed25519L)
			out := append([]byte{}, sig[:32]...)
			return append(out, reversed(s.FillBytes(make([]byte, 32)))...)
		},
		"R of the identity point, S zero": func(sig []byte) []byte {
			out := make([]byte, 64)
			out[0] = 1 // the encoding of the neutral element
			return out
		},
	} {
		add(tokenRow("RFC 8032 §5.1.7 (EdDSA verification); CVE-2022-21449 (Psychic Signatures, for zero)", "EdDSA "+name, reasonSig, func(t *testing.T, e *atkEnv) string {
			in, sig := edSig(t, e)
			return in + "." + b64u(mutate(sig))
		}))
	}

	// --- JSON: duplicates, depth, BOM, garbage (RFC 7515 §4, RFC 7519 §4,
	// RFC 8259, RFC 8725 §3.7) ------------------------------------------
	add(notJWT(tokenRow("RFC 7515 §4 (duplicate header names: reject or last wins)", "duplicate alg in the header (RS256 then none)", reasonMalformed, func(t *testing.T, e *atkEnv) string {
		return jwkstest.SignRaw(e.rsa, []byte(`{"alg":"RS256","kid":"`+e.rsa.ID+`","alg":"none"}`), atkJSON(t, e.claims()))
	})))
	add(notJWT(tokenRow("RFC 7515 §4", "duplicate kid in the header", reasonMalformed, func(t *testing.T, e *atkEnv) string {
		return jwkstest.SignRaw(e.rsa, []byte(`{"alg":"RS256","kid":"attacker","kid":"`+e.rsa.ID+`"}`), atkJSON(t, e.claims()))
	})))
	// A JWT-shaped token with a header that is not strict, naming a
	// foreign iss: refused in hybrid mode too, with no introspection call
	// (the suite's count of requests to untrusted hosts stays zero either
	// way; the call count is TestHardening2_HybridSpendsNoIntrospectionOnAHopelessJWT's).
	for name, header := range map[string]string{
		"duplicate alg": `{"alg":"RS256","alg":"none","kid":"{kid}"}`,
		"no alg":        `{"kid":"{kid}"}`,
	} {
		add(tokenRow("Hardening round 2, point 8 (outside review); RFC 7515 §4, §4.1.1; README (a foreign iss never causes a call)",
			name+" in the header, foreign iss, never introspected", reasonMalformed, func(t *testing.T, e *atkEnv) string {
				return jwkstest.SignRaw(e.rsa, []byte(strings.ReplaceAll(header, "{kid}", e.rsa.ID)), atkJSON(t, e.other.Claims("worker", "worker", "data:read")))
			}))
	}
	// A token the verified-token cache holds, whose key the issuer then
	// withdraws: it is refused once the Guard has read the new key set.
	for _, withdraw := range []struct {
		name   string
		header map[string]any
		swap   bool // republish the kid with new key material
	}{
		{name: "token without kid, cached, its key unpublished", header: map[string]any{"kid": nil}},
		{name: "token cached, its kid republished with a new key", swap: true},
	} {
		add(attackRow{source: "Hardening round 2, point 3 (outside review); RFC 7517 §4.5 (kid is a hint, the key is the key)", name: withdraw.name,
			ownEnv: true, status: 401, code: "invalid_token", reason: reasonSig,
			token: func(t *testing.T, e *atkEnv) string {
				k := e.iss.Rotate("ES256")
				token := e.iss.SignWith(k, withdraw.header, e.claims())
				for _, p := range []string{profJWT, profHybrid} {
					rec := httptest.NewRecorder()
					e.handlers[p].ServeHTTP(rec, get("/data", "Bearer "+token))
					require.Equal(t, http.StatusOK, rec.Code, "%s: the genuine token passes and is cached", p)
				}
				e.iss.Unpublish(k.ID)
				if withdraw.swap {
					impostor := jwkstest.NewKey("ES256")
					impostor.ID = k.ID
					e.iss.PublishRawJWK(impostor.JWK())
				}
				// The first unknown kid a Guard sees makes it fetch the
				// key set at once.
				for _, p := range []string{profJWT, profHybrid} {
					rec := httptest.NewRecorder()
					e.handlers[p].ServeHTTP(rec, get("/data", "Bearer "+e.attackerSigned(t, `{"alg":"RS256","kid":"made-up"}`)))
					require.Equal(t, http.StatusUnauthorized, rec.Code, "%s: the made-up kid", p)
				}
				return token
			}})
	}
	for _, dup := range []struct{ name, first string }{
		{"iss", `"https://evil.test"`},
		{"exp", `1`},
		{"sub", `"admin"`},
		{"aud", `"https://another-api.test"`},
		{"client_id", `"admin-console"`},
		{"scp", `["admin"]`},
	} {
		add(tokenRow("RFC 7519 §4 (duplicate claim names: reject or last wins)", "duplicate "+dup.name+" in the claims, genuine signature", reasonMalformed,
			func(t *testing.T, e *atkEnv) string {
				body := atkJSON(t, e.claims())
				return e.genuine(append([]byte(`{"`+dup.name+`":`+dup.first+`,`), body[1:]...))
			}))
	}
	add(tokenRow("RFC 8259 §4 (names SHOULD be unique, at any depth)", "duplicate email inside ext, genuine signature", reasonMalformed, func(t *testing.T, e *atkEnv) string {
		return e.genuine(e.payloadWith(t, "ext", `{"email":"a@example.com","email":"admin@example.com"}`))
	}))
	add(tokenRow("RFC 8259 §9 (nesting limits)", "10,000 nested [ in a claim (over the length bound)", reasonTooLong, func(t *testing.T, e *atkEnv) string {
		return e.genuine(e.payloadSpliced(t, "", `"x":`+strings.Repeat("[", 10000)+strings.Repeat("]", 10000)))
	}))
	add(tokenRow("RFC 8259 §9 (nesting limits)", "2,500 nested [ in a claim, genuine signature", reasonMalformed, func(t *testing.T, e *atkEnv) string {
		return e.genuine(e.payloadSpliced(t, "", `"x":`+strings.Repeat("[", 2500)+strings.Repeat("]", 2500)))
	}))
	add(notJWT(tokenRow("RFC 8259 §9 (nesting limits)", "2,500 nested [ in the header", reasonMalformed, func(t *testing.T, e *atkEnv) string {
		return jwkstest.SignRaw(e.rsa, e.header(e.rsa, `,"x":`+strings.Repeat("[", 2500)+strings.Repeat("]", 2500)), atkJSON(t, e.claims()))
	})))
	add(tokenRow("RFC 8259 §8.1 (no BOM in networked JSON)", "claims starting with a UTF-8 BOM, genuine signature", reasonMalformed, func(t *testing.T, e *atkEnv) string {
		return e.genuine(append([]byte("\xEF\xBB\xBF"), atkJSON(t, e.claims())...))
	}))
	add(notJWT(tokenRow("RFC 8259 §8.1", "header starting with a UTF-8 BOM", reasonMalformed, func(t *testing.T, e *atkEnv) string {
		return jwkstest.SignRaw(e.rsa, append([]byte("\xEF\xBB\xBF"), e.header(e.rsa, "")...), atkJSON(t, e.claims()))
	})))
	for name, tail := range map[string]string{"a second object": `{"sub":"admin"}`, "a stray byte": `x`, "a NUL byte": "\x00", "a comment": `/* admin */`} {
		add(tokenRow("RFC 8259 §2 (one JSON text)", "claims followed by "+name+", genuine signature", reasonMalformed, func(t *testing.T, e *atkEnv) string {
			return e.genuine(append(atkJSON(t, e.claims()), tail...))
		}))
	}
	add(notJWT(tokenRow("RFC 8259 §2", "header followed by trailing garbage", reasonMalformed, func(t *testing.T, e *atkEnv) string {
		return jwkstest.SignRaw(e.rsa, append(e.header(e.rsa, ""), []byte(` {"alg":"none"}`)...), atkJSON(t, e.claims()))
	})))
	for _, payload := range []string{`[]`, `null`, `1`, `"claims"`, `true`, `[{"sub":"admin"}]`} {
		add(tokenRow("RFC 7519 §7.2 step 10 (the claims are a JSON object)", "claims "+payload+", genuine signature", reasonMalformed, func(t *testing.T, e *atkEnv) string {
			return e.genuine([]byte(payload))
		}))
	}
	add(tokenRow("RFC 7519 §7.2", "claims {} (nothing), genuine signature", reasonIssuer, func(t *testing.T, e *atkEnv) string {
		return e.genuine([]byte(`{}`))
	}))
	add(tokenRow("RFC 8725 §3.7 (UTF-8 only); RFC 8259 §8.1", "invalid UTF-8 in sub, genuine signature", reasonMalformed, func(t *testing.T, e *atkEnv) string {
		return e.genuine(e.payloadSpliced(t, "sub", "\"sub\":\"work\xffer\""))
	}))
	add(tokenRow("RFC 8725 §3.7", "invalid UTF-8 in a claim name, genuine signature", reasonMalformed, func(t *testing.T, e *atkEnv) string {
		return e.genuine(e.payloadSpliced(t, "", "\"r\xc0le\":\"admin\""))
	}))
	add(tokenRow("RFC 8725 §3.7", "overlong UTF-8 encoding of / in iss, genuine signature", reasonMalformed, func(t *testing.T, e *atkEnv) string {
		return e.genuine(e.payloadSpliced(t, "iss", "\"iss\":\""+strings.Replace(e.iss.URL, "/", "\xc0\xaf", 1)+"\""))
	}))
	add(notJWT(tokenRow("RFC 8725 §3.7", "invalid UTF-8 in the header", reasonMalformed, func(t *testing.T, e *atkEnv) string {
		return jwkstest.SignRaw(e.rsa, e.header(e.rsa, ",\"x\":\"\xff\""), atkJSON(t, e.claims()))
	})))
	add(tokenRow("RFC 8259 §7 (control characters must be escaped)", "raw newline inside sub, genuine signature", reasonMalformed, func(t *testing.T, e *atkEnv) string {
		return e.genuine(e.payloadSpliced(t, "sub", "\"sub\":\"wor\nker\""))
	}))

	// --- JWE in place of a JWS (RFC 7516; CVE-2023-49290, CVE-2024-28180)
	jwe := func(header string) string {
		return b64s(header) + "." + b64s("encrypted key") + "." + b64s("iv-0123456789") + "." + b64s("ciphertext") + "." + b64s("tag-0123456789ab")
	}
	pbes2 := `{"alg":"PBES2-HS256+A128KW","enc":"A128GCM","p2c":2147483647,"p2s":"` + b64s("saltsaltsaltsalt") + `"}`
	pbes2zip := `{"alg":"PBES2-HS256+A128KW","enc":"A128GCM","zip":"DEF","p2c":2147483647,"p2s":"` + b64s("saltsaltsaltsalt") + `"}`
	add(notJWT(tokenRow("CVE-2023-49290 (jwx PBES2 p2c DoS); RFC 7516 §9", "five-part JWE, PBES2 with p2c 2^31-1", reasonMalformed,
		func(t *testing.T, e *atkEnv) string { return jwe(pbes2) })))
	add(notJWT(tokenRow("CVE-2024-28180 (go-jose JWE decompression bomb); RFC 8725 §3.6", "five-part JWE, PBES2 with zip DEF", reasonMalformed,
		func(t *testing.T, e *atkEnv) string { return jwe(pbes2zip) })))
	for _, p := range []string{profIntrospect} {
		add(attackRow{source: "CVE-2023-49290; RFC 7662 §2.1 (an opaque token to the server)", name: "five-part JWE, PBES2, through " + p, profile: p,
			token: func(t *testing.T, e *atkEnv) string { return jwe(pbes2zip) }, status: 401, code: "invalid_token", reason: reasonInactive})
	}
	add(tokenRow("RFC 7516 §4.1.2 (enc makes it a JWE); CVE-2023-49290", "three-part token with a PBES2 JWE header", reasonMalformed, func(t *testing.T, e *atkEnv) string {
		return b64s(pbes2) + "." + b64u(atkJSON(t, e.claims())) + "." + b64s("signature")
	}))
	add(tokenRow("RFC 8725 §3.6 (zip)", "zip DEF on a signed token", reasonMalformed, func(t *testing.T, e *atkEnv) string {
		return jwkstest.SignRaw(e.rsa, e.header(e.rsa, `,"zip":"DEF"`), atkJSON(t, e.claims()))
	}))
	add(tokenRow("RFC 7515 §7.2 (JSON serialization is not a bearer token)", "JWS JSON serialization", reasonMalformed, func(t *testing.T, e *atkEnv) string {
		p := atkParts(e.valid(t))
		return string(atkJSON(t, map[string]string{"protected": p[0], "payload": p[1], "signature": p[2]}))
	}))

	// --- crit, b64, typ (RFC 7515 §4.1.11, RFC 7797, RFC 8725 §3.11) -----
	for name, extra := range map[string]string{
		"crit naming an unknown extension":     `,"crit":["x-aegis-ignore"],"x-aegis-ignore":true`,
		"crit naming a registered header":      `,"crit":["exp"]`,
		"crit empty":                           `,"crit":[]`,
		"crit not an array":                    `,"crit":"b64"`,
		"b64 false under crit (RFC 7797)":      `,"b64":false,"crit":["b64"]`,
		"b64 false without crit (RFC 7797 §6)": `,"b64":false`,
		"enc in a JWS header":                  `,"enc":"A128GCM"`,
	} {
		add(tokenRow("RFC 7515 §4.1.11; RFC 7797 §6", name+", genuine signature", reasonMalformed, func(t *testing.T, e *atkEnv) string {
			return jwkstest.SignRaw(e.rsa, e.header(e.rsa, extra), atkJSON(t, e.claims()))
		}))
	}
	for _, typ := range []string{"JWT", "", "dpop+jwt", "logout+jwt", "secevent+jwt", "id_token+jwt", "at+jwt ", "at+jwt; charset=utf-8", "application/jwt"} {
		add(attackRow{source: "RFC 9068 §4 (typ must be at+jwt); RFC 8725 §3.11 (explicit typing)", name: "typ " + `"` + typ + `"` + " where at+jwt is required",
			profile: profTyp, status: 401, code: "invalid_token", reason: reasonType, token: func(t *testing.T, e *atkEnv) string {
				return e.iss.SignWith(e.rsa, map[string]any{"typ": typ}, e.claims())
			}})
	}
	for _, typ := range []string{"dpop+jwt", "application/dpop+jwt", "logout+jwt", "secevent+jwt", "id_token+jwt", "JOSE", "JOSE+JSON", "at+jwt ", "jwt; charset=utf-8"} {
		add(attackRow{source: "RFC 8725 §3.11 (explicit typing: a JWT of another kind is not an access token)", name: "typ " + `"` + typ + `"` + ", default configuration",
			status: 401, code: "invalid_token", reason: reasonType, token: func(t *testing.T, e *atkEnv) string {
				return e.iss.SignWith(e.rsa, map[string]any{"typ": typ}, e.claims())
			}})
	}
	add(attackRow{source: "RFC 9068 §4", name: "typ as a number where at+jwt is required", profile: profTyp, status: 401, code: "invalid_token", reason: reasonMalformed,
		token: func(t *testing.T, e *atkEnv) string {
			return e.iss.SignWith(e.rsa, map[string]any{"typ": 1}, e.claims())
		}})

	// --- claim types (RFC 7519 §4.1, RFC 9068 §2.2) ------------------------
	bad := map[string]string{"number": `1`, "bool": `true`, "null": `null`, "object": `{"value":"x"}`, "array": `["x"]`}
	for _, claim := range []string{"iss", "sub", "client_id", "jti"} {
		for kind, raw := range bad {
			add(tokenRow("RFC 7519 §4.1 (StringOrURI / string claims); RFC 9068 §2.2", claim+" as "+kind+", genuine signature", reasonClaims, func(t *testing.T, e *atkEnv) string {
				return e.genuine(e.payloadWith(t, claim, raw))
			}))
		}
	}
	for kind, raw := range map[string]string{"number": `1`, "bool": `true`, "null": `null`, "object": `{"aud":"https://api.test"}`,
		"array with a number": `["https://api.test",1]`, "array with null": `["https://api.test",null]`, "nested array": `[["https://api.test"]]`} {
		add(tokenRow("RFC 7519 §4.1.3 (aud: a string or an array of strings)", "aud as "+kind+", genuine signature", reasonClaims, func(t *testing.T, e *atkEnv) string {
			return e.genuine(e.payloadWith(t, "aud", raw))
		}))
	}
	for _, claim := range []string{"exp", "nbf", "iat"} {
		for kind, raw := range map[string]string{"a numeric string": `"9999999999"`, "bool": `true`, "null": `null`, "object": `{"$date":9999999999}`,
			"array": `[9999999999]`, `"NaN"`: `"NaN"`, `"Infinity"`: `"Infinity"`, "an RFC 3339 string": `"2099-01-01T00:00:00Z"`} {
			add(tokenRow("RFC 7519 §2 (NumericDate is a JSON number)", claim+" as "+kind+", genuine signature", reasonClaims, func(t *testing.T, e *atkEnv) string {
				return e.genuine(e.payloadWith(t, claim, raw))
			}))
		}
		for kind, raw := range map[string]string{"+1 (invalid JSON)": `+9999999999`, "leading zero (invalid JSON)": `09999999999`, "hex (invalid JSON)": `0x7fffffff`,
			"bare NaN (invalid JSON)": `NaN`, "bare Infinity (invalid JSON)": `Infinity`} {
			add(tokenRow("RFC 8259 §6 (number grammar)", claim+" "+kind+", genuine signature", reasonMalformed, func(t *testing.T, e *atkEnv) string {
				return e.genuine(e.payloadSpliced(t, claim, `"`+claim+`":`+raw))
			}))
		}
	}
	for kind, raw := range map[string]string{"-1": `-1`, "0": `0`, "1e-7": `1e-7`, "one minute ago, beyond the leeway": jsonNum(atkNow.Add(-time.Minute).Unix())} {
		add(tokenRow("RFC 7519 §4.1.4 (MUST NOT be accepted on or after exp)", "exp "+kind+", genuine signature", reasonExpired, func(t *testing.T, e *atkEnv) string {
			return e.genuine(e.payloadWith(t, "exp", raw))
		}))
	}
	for _, claim := range []string{"nbf", "iat"} {
		for kind, raw := range map[string]string{"in ten minutes": jsonNum(atkNow.Add(10 * time.Minute).Unix()), "year 9999": `253402300799`} {
			add(tokenRow("RFC 7519 §4.1.5-6; RFC 9068 §4", claim+" "+kind+", genuine signature", reasonEarly, func(t *testing.T, e *atkEnv) string {
				return e.genuine(e.payloadWith(t, claim, raw))
			}))
		}
	}
	// A NumericDate that is not finite or falls outside the years 1 to 9999
	// dates no real token: an invalid claim (these exp, nbf and iat
	// overflows were read as expired or not yet valid, and exp 1e309 as
	// never expiring, before issue 13 point 9).
	for _, claim := range []string{"exp", "nbf", "iat"} {
		for kind, raw := range map[string]string{"1e300": `1e300`, "1e309 (overflows to +Inf)": `1e309`, "-1e309 (overflows to -Inf)": `-1e309`,
			"-1e300": `-1e300`, "in the year 10000": `253402300800`, "in the year 0": `-62135596801`} {
			add(tokenRow("RFC 7519 §2 (NumericDate: a date)", claim+" "+kind+", genuine signature", reasonClaims, func(t *testing.T, e *atkEnv) string {
				return e.genuine(e.payloadWith(t, claim, raw))
			}))
		}
	}
	// scope is a string (RFC 9068 §2.2.3); scp an array or a string (see
	// scopes.FromClaim). Other types and bad scope tokens are refused.
	for kind, raw := range map[string]string{"number": `1`, "bool": `true`, "object": `{"data:read":true}`, "array with a number": `["data:read",1]`,
		"array with null": `["data:read",null]`, "nested array": `[["data:read"]]`, "string with a tab": `"data:read\tadmin"`,
		"string with a quote": `"data:read \"admin"`, "string with a backslash": `"data:read admin\\"`, "string with non-ASCII": `"data:read ädmin"`,
		"array with an empty scope": `["data:read",""]`, "array with a spaced scope": `["data:read admin"]`} {
		for _, claim := range []string{"scope", "scp"} {
			add(tokenRow("RFC 6749 §3.3 (scope-token syntax); RFC 9068 §2.2.3", claim+" as "+kind+", genuine signature", reasonClaims, func(t *testing.T, e *atkEnv) string {
				c := e.claims()
				delete(c, "scp")
				c[claim] = json.RawMessage(raw)
				return e.genuine(atkJSON(t, c))
			}))
		}
	}
	for kind, raw := range map[string]string{"null": `null`, "empty string": `""`, "empty array": `[]`, "only spaces": `"   "`} {
		add(attackRow{source: "RFC 6750 §3.1 (insufficient_scope)", name: "scope " + kind + ", genuine signature", status: 403, code: "insufficient_scope", reason: "insufficient_scope",
			token: func(t *testing.T, e *atkEnv) string {
				c := e.claims()
				delete(c, "scp")
				c["scope"] = json.RawMessage(raw)
				return e.genuine(atkJSON(t, c))
			}})
	}
	add(attackRow{source: "RFC 6749 §3.3 (scope tokens are case-sensitive)", name: "scope DATA:READ, genuine signature", status: 403, code: "insufficient_scope", reason: "insufficient_scope",
		token: func(t *testing.T, e *atkEnv) string {
			return e.genuine(e.payloadWith(t, "scp", `["DATA:READ","Data:Read"]`))
		}})
	for kind, raw := range map[string]string{"number": `1`, "array": `["a@example.com"]`, "object": `{"email":"a@example.com"}`} {
		add(tokenRow("OpenID Connect Core §5.1 (email is a string)", "email as "+kind+", genuine signature", reasonClaims, func(t *testing.T, e *atkEnv) string {
			return e.genuine(e.payloadWith(t, "email", raw))
		}))
	}

	// --- time, issuer, audience, subject (RFC 9068 §4, RFC 8725 §3.8-3.12)
	add(tokenRow("RFC 9068 §4; RFC 7519 §4.1.4", "expired an hour ago", reasonExpired, func(t *testing.T, e *atkEnv) string { return e.iss.Expired("worker", "data:read") }))
	add(tokenRow("RFC 9068 §4 (exp is required)", "exp missing", reasonClaims, func(t *testing.T, e *atkEnv) string { return e.genuine(e.payloadWith(t, "exp", "")) }))
	for name, iss := range map[string]string{"another origin": `"https://evil.test"`, "trailing slash": `"{iss}/"`, "upper-case scheme": `"{ISS}"`,
		"longer host": `"{iss}.evil.test"`, "path appended": `"{iss}/../evil"`, "empty": `""`, "with a NUL": `"{iss}\u0000"`} {
		add(tokenRow("RFC 9068 §4 step 2; RFC 8725 §3.8 (exact issuer match)", "iss "+name+", genuine signature", reasonIssuer, func(t *testing.T, e *atkEnv) string {
			v := strings.ReplaceAll(iss, "{iss}", e.iss.URL)
			v = strings.ReplaceAll(v, "{ISS}", strings.Replace(e.iss.URL, "http://", "HTTP://", 1))
			return e.genuine(e.payloadWith(t, "iss", v))
		}))
	}
	add(tokenRow("RFC 9068 §4 step 2", "iss missing, genuine signature", reasonIssuer, func(t *testing.T, e *atkEnv) string { return e.genuine(e.payloadWith(t, "iss", "")) }))
	for name, aud := range map[string]string{"another API": `["https://another-api.test"]`, "a prefix of ours": `"https://api.tes"`, "ours extended": `"https://api.test.evil"`,
		"ours with a slash": `["https://api.test/"]`, "ours upper-cased": `"HTTPS://API.TEST"`, "empty array": `[]`, "empty string": `""`} {
		add(tokenRow("RFC 9068 §4 step 3; RFC 8725 §3.9", "aud "+name+", genuine signature", reasonAudience, func(t *testing.T, e *atkEnv) string {
			return e.genuine(e.payloadWith(t, "aud", aud))
		}))
	}
	add(tokenRow("RFC 9068 §4 step 3", "aud missing, genuine signature", reasonAudience, func(t *testing.T, e *atkEnv) string { return e.genuine(e.payloadWith(t, "aud", "")) }))
	for _, claim := range []string{"sub", "client_id"} {
		add(tokenRow("RFC 9068 §2.2 (sub and client_id are required)", claim+" missing, genuine signature", reasonClaims, func(t *testing.T, e *atkEnv) string {
			return e.genuine(e.payloadWith(t, claim, ""))
		}))
		add(tokenRow("RFC 9068 §2.2", claim+" empty, genuine signature", reasonClaims, func(t *testing.T, e *atkEnv) string {
			return e.genuine(e.payloadWith(t, claim, `""`))
		}))
	}
	for _, claim := range []string{"nonce", "at_hash", "c_hash"} {
		add(tokenRow("RFC 9068 §4 / RFC 8725 §3.11-3.12 (an ID token is not an access token)", "an OpenID Connect ID token ("+claim+"), genuine signature", reasonType,
			func(t *testing.T, e *atkEnv) string {
				return e.genuine(e.payloadWith(t, claim, `"n-0S6_WzA2Mj"`))
			}))
	}
	add(tokenRow("RFC 8725 §3.12 (cross-JWT confusion)", "an ID token shaped like Hydra's: aud is the client, no client_id", reasonClaims, func(t *testing.T, e *atkEnv) string {
		c := e.claims()
		delete(c, "client_id")
		delete(c, "scp")
		c["aud"], c["nonce"], c["auth_time"], c["at_hash"] = []string{"web-app"}, "n-0S6", atkNow.Unix(), "77QmUPtjPfzWtF2AnpK9RQ"
		return e.genuine(atkJSON(t, c))
	}))
	add(tokenRow("OpenID Connect Back-Channel Logout §2.4; RFC 8725 §3.12", "a logout token (typ logout+jwt) for this audience", reasonType, func(t *testing.T, e *atkEnv) string {
		return e.iss.SignWith(e.rsa, map[string]any{"typ": "logout+jwt"}, map[string]any{"iss": e.iss.URL, "aud": e.iss.Audience, "sub": "worker",
			"iat": atkNow.Unix(), "exp": atkNow.Add(time.Hour).Unix(), "jti": "l-1", "sid": "s-1",
			"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}})
	}))

	// --- signature stripping and swapping (RFC 7515 §5.2) -----------------
	add(tokenRow("RFC 7515 §5.2 (signature over header and payload)", "genuine header and payload with another genuine token's signature", reasonSig,
		func(t *testing.T, e *atkEnv) string {
			a, b := atkParts(e.valid(t)), atkParts(e.valid(t))
			return a[0] + "." + a[1] + "." + b[2]
		}))
	add(tokenRow("RFC 7515 §5.2", "admin claims swapped in under a genuine signature", reasonSig, func(t *testing.T, e *atkEnv) string {
		p := atkParts(e.valid(t))
		c := e.claims()
		c["sub"], c["client_id"], c["scp"] = "admin", "admin", []string{"data:read", "admin"}
		return p[0] + "." + b64u(atkJSON(t, c)) + "." + p[2]
	}))
	add(tokenRow("RFC 7515 §5.2", "header re-encoded without kid, genuine signature", reasonSig, func(t *testing.T, e *atkEnv) string {
		p := atkParts(e.valid(t))
		return b64s(`{"alg":"RS256","typ":"JWT"}`) + "." + p[1] + "." + p[2]
	}))
	add(tokenRow("RFC 8725 §3.1", "header alg changed RS256 to RS512, genuine signature", reasonAlg, func(t *testing.T, e *atkEnv) string {
		p := atkParts(e.valid(t))
		return b64s(`{"alg":"RS512","kid":"`+e.rsa.ID+`","typ":"JWT"}`) + "." + p[1] + "." + p[2]
	}))
	add(tokenRow("RFC 8725 §3.1", "header alg changed RS256 to PS256, genuine signature", reasonAlg, func(t *testing.T, e *atkEnv) string {
		p := atkParts(e.valid(t))
		return b64s(`{"alg":"PS256","kid":"`+e.rsa.ID+`","typ":"JWT"}`) + "." + p[1] + "." + p[2]
	}))
	add(tokenRow("RFC 7515 §5.2", "ES256 signature of the same claims under the RS256 header", reasonSig, func(t *testing.T, e *atkEnv) string {
		payload := atkJSON(t, e.claims())
		rs := atkParts(e.genuine(payload))
		es := atkParts(jwkstest.SignRaw(e.es256, e.header(e.es256, ""), payload))
		return rs[0] + "." + rs[1] + "." + es[2]
	}))
	add(tokenRow("RFC 7515 §5.2", "genuine signature truncated to half", reasonSig, func(t *testing.T, e *atkEnv) string {
		p := atkParts(e.valid(t))
		sig, err := base64.RawURLEncoding.DecodeString(p[2])
		require.NoError(t, err)
		return p[0] + "." + p[1] + "." + b64u(sig[:len(sig)/2])
	}))
	add(tokenRow("RFC 7515 §5.2", "genuine signature with the last byte flipped", reasonSig, func(t *testing.T, e *atkEnv) string {
		p := atkParts(e.valid(t))
		sig, err := base64.RawURLEncoding.DecodeString(p[2])
		require.NoError(t, err)
		sig[len(sig)-1] ^= 1
		return p[0] + "." + p[1] + "." + b64u(sig)
	}))
	add(tokenRow("RFC 7515 §5.2 (RSA signature of the same size as the modulus)", "genuine signature with a zero byte prepended", reasonSig, func(t *testing.T, e *atkEnv) string {
		p := atkParts(e.valid(t))
		sig, err := base64.RawURLEncoding.DecodeString(p[2])
		require.NoError(t, err)
		return p[0] + "." + p[1] + "." + b64u(append([]byte{0}, sig...))
	}))
	add(tokenRow("RFC 7515 §2 (base64url without padding)", "genuine token with padded signature", reasonMalformed, func(t *testing.T, e *atkEnv) string {
		return e.valid(t) + "=="
	}))
	add(tokenRow("RFC 7515 §2", "genuine payload and signature in the standard base64 alphabet", reasonMalformed, func(t *testing.T, e *atkEnv) string {
		p := atkParts(e.valid(t))
		for !strings.ContainsAny(p[1]+p[2], "-_") {
			p = atkParts(e.valid(t))
		}
		return p[0] + "." + strings.NewReplacer("-", "+", "_", "/").Replace(p[1]+"."+p[2])
	}))
	// Go's encoding/base64 skips \r and \n even in strict mode: without a
	// check of its own, Aegis would give one token unlimited spellings.
	for part, name := range []string{"header", "payload", "signature"} {
		for kind, insert := range map[string]string{"LF": "\n", "CR": "\r", "CRLF": "\r\n", "2,000 LFs": strings.Repeat("\n", 2000)} {
			spelled := func(t *testing.T, e *atkEnv) string {
				p := atkParts(e.valid(t))
				p[part] = p[part][:4] + insert + p[part][4:]
				return strings.Join(p, ".")
			}
			add(tokenRow("Go encoding/base64 skips CR/LF; RFC 7515 §2 (base64url alphabet only)", "genuine token with "+kind+" inside its "+name, reasonMalformed, spelled))
			add(attackRow{source: "Go encoding/base64 skips CR/LF; RFC 6750 §2.3", name: "query allowed: genuine token with " + kind + " inside its " + name + " in the query",
				profile: profQuery, token: spelled, request: func(e *atkEnv, token string) *http.Request {
					return get("/data?access_token="+url.QueryEscape(token), "")
				}, status: 401, code: "invalid_token", reason: reasonMalformed})
		}
	}
	add(notJWT(tokenRow("RFC 7515 §7.1 (three parts)", "genuine token with a fourth part", reasonMalformed, func(t *testing.T, e *atkEnv) string {
		return e.valid(t) + "." + b64s("extra")
	})))
	add(notJWT(tokenRow("RFC 7515 §7.1", "genuine token with the header part empty", reasonMalformed, func(t *testing.T, e *atkEnv) string {
		p := atkParts(e.valid(t))
		return "." + p[1] + "." + p[2]
	})))
	add(tokenRow("RFC 7515 §7.1", "genuine token with the payload part empty", reasonMalformed, func(t *testing.T, e *atkEnv) string {
		p := atkParts(e.valid(t))
		return p[0] + ".." + p[2]
	}))

	// --- RFC 6750: where and how the token travels ----------------------
	valid := func(t *testing.T, e *atkEnv) string { return e.valid(t) }
	withHeader := func(h string) func(e *atkEnv, token string) *http.Request {
		return func(e *atkEnv, token string) *http.Request { return get("/data", strings.ReplaceAll(h, "{t}", token)) }
	}
	add(attackRow{source: "RFC 6750 §2.3 and §5.3 (no tokens in URLs); RFC 9700", name: "genuine token in the query string only", token: valid,
		request: func(e *atkEnv, token string) *http.Request {
			return get("/data?access_token="+url.QueryEscape(token), "")
		},
		status: 400, code: "invalid_request", reason: reasonRequest})
	add(attackRow{source: "RFC 6750 §2 (one method per request)", name: "genuine token in the header and in the query", token: valid,
		request: func(e *atkEnv, token string) *http.Request {
			return get("/data?access_token="+url.QueryEscape(token), "Bearer "+token)
		}, status: 400, code: "invalid_request", reason: reasonRequest})
	add(attackRow{source: "RFC 6750 §2 (one method per request)", name: "query allowed: a forged token in the query beside a genuine header", profile: profQuery,
		token: valid, request: func(e *atkEnv, token string) *http.Request {
			forged := b64s(`{"alg":"none"}`) + "." + b64s(`{"sub":"admin"}`) + "."
			return get("/data?access_token="+url.QueryEscape(forged), "Bearer "+token)
		}, status: 400, code: "invalid_request", reason: reasonRequest})
	add(attackRow{source: "RFC 6750 §2.2 (form body only when enabled)", name: "genuine token in a form body only", token: valid,
		request: func(e *atkEnv, token string) *http.Request {
			return formRequest("access_token=" + url.QueryEscape(token))
		},
		status: 401, code: "", reason: reasonMissing})
	add(attackRow{source: "RFC 7230 §3.2.2 / RFC 6750 §2.1", name: "two Authorization headers", token: valid,
		request: func(e *atkEnv, token string) *http.Request {
			req := get("/data", "Bearer "+token)
			req.Header.Add("Authorization", "Bearer "+token)
			return req
		}, status: 400, code: "invalid_request", reason: reasonRequest})
	add(attackRow{source: "RFC 6750 §2.1", name: "two Bearer credentials in one header", token: valid, request: withHeader("Bearer {t}, Bearer {t}"),
		status: 400, code: "invalid_request", reason: reasonRequest})
	add(attackRow{source: "RFC 6750 §2.1 (credentials = \"Bearer\" 1*SP b64token)", name: "tab between scheme and token", token: valid, request: withHeader("Bearer\t{t}"),
		status: 401, code: "", reason: reasonMissing})
	add(attackRow{source: "RFC 6750 §2.1", name: "no space between scheme and token", token: valid, request: withHeader("Bearer{t}"),
		status: 401, code: "", reason: reasonMissing})
	add(attackRow{source: "RFC 6750 §2.1", name: "genuine token under the Basic scheme", token: valid, request: withHeader("Basic {t}"),
		status: 401, code: "", reason: reasonMissing})
	add(attackRow{source: "RFC 9449 §7.1 (a token not bound to a key, under the DPoP scheme)", name: "genuine token under the DPoP scheme", token: valid, request: withHeader("DPoP {t}"),
		status: 401, code: "invalid_token", reason: "binding_mismatch"})
	add(attackRow{source: "RFC 6750 §2.1", name: "scheme only", token: valid, request: withHeader("Bearer"),
		status: 400, code: "invalid_request", reason: reasonRequest})
	for name, h := range map[string]string{
		"a quote appended": `Bearer {t}"`, "a comma appended": "Bearer {t},", "a semicolon appended": "Bearer {t};",
		"a NUL appended": "Bearer {t}\x00", "non-ASCII appended": "Bearer {t}é", "= inside the token": "Bearer ab=cd.{t}",
		"percent-encoding": "Bearer {t}%2E", "a quoted token": `Bearer "{t}"`,
	} {
		add(attackRow{source: "RFC 6750 §2.1 (b64token syntax)", name: "token with " + name, token: valid, request: withHeader(h),
			status: 401, code: "invalid_token", reason: reasonMalformed})
	}
	add(attackRow{source: "RFC 6750 §2.1", name: "token with a space inside", token: valid, request: withHeader("Bearer {t} x"),
		status: 400, code: "invalid_request", reason: reasonRequest})
	add(tokenRow("RFC 8725 §3 / resource bounds", "token over 8 KiB", reasonTooLong, func(t *testing.T, e *atkEnv) string {
		return e.genuine(e.payloadSpliced(t, "", `"pad":"`+strings.Repeat("a", 8<<10)+`"`))
	}))

	// --- RFC 7662 §2.2 and §4: hostile introspection answers ------------
	// Each row presents an opaque token the issuer minted; the endpoint is
	// replaced by the answer given. A refused answer is 401; an answer that
	// cannot be trusted to mean anything is the dependency failing (503).
	answer := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, body)
		}
	}
	introRow := func(source, name, body string, status int, reason string) attackRow {
		r := attackRow{source: source, name: "introspection answer: " + name, profile: profHybrid, serve: answer(body),
			token: func(t *testing.T, e *atkEnv) string { return e.iss.OpaqueM2M("worker", "data:read") }, status: status, reason: reason}
		if status != 503 {
			r.code = "invalid_token"
		}
		return r
	}
	good := func(extra string) string {
		return `{"active":true,"sub":"worker","client_id":"worker","scope":"data:read","aud":["https://api.test"],"token_use":"access_token"` + extra + `}`
	}
	future := jsonNum(atkNow.Add(time.Hour).Unix())
	add(introRow("RFC 7662 §2.2 (active is a boolean)", `active "true" as a string`, strings.Replace(good(""), `"active":true`, `"active":"true"`, 1), 503, reasonIntroDown))
	add(introRow("RFC 7662 §2.2", "active 1", strings.Replace(good(""), `"active":true`, `"active":1`, 1), 503, reasonIntroDown))
	add(introRow("RFC 7662 §2.2 (active is REQUIRED)", "active missing", strings.Replace(good(""), `"active":true,`, ``, 1), 503, reasonIntroDown))
	add(introRow("RFC 7662 §2.2; RFC 8259 §4", "active false then true (duplicate)", strings.Replace(good(""), `"active":true`, `"active":false,"active":true`, 1), 503, reasonIntroDown))
	add(introRow("RFC 7662 §2.2", "active false with claims", strings.Replace(good(""), `"active":true`, `"active":false`, 1), 401, reasonInactive))
	add(introRow("RFC 7662 §4 (check exp)", "active with exp in the past", good(`,"exp":`+jsonNum(atkNow.Add(-time.Hour).Unix())), 401, reasonExpired))
	add(introRow("RFC 7662 §2.2", "active with nbf in the future", good(`,"exp":`+future+`,"nbf":`+jsonNum(atkNow.Add(time.Hour/2).Unix())), 401, reasonEarly))
	add(introRow("RFC 7662 §4 (the answer's issuer)", "active with another iss", good(`,"exp":`+future+`,"iss":"https://evil.test"`), 401, reasonIssuer))
	add(introRow("RFC 7662 §4 (audience)", "active for another audience", strings.Replace(good(`,"exp":`+future), `"https://api.test"`, `"https://another-api.test"`, 1), 401, reasonAudience))
	add(introRow("RFC 7662 §4", "active without aud", strings.Replace(good(`,"exp":`+future), `"aud":["https://api.test"],`, ``, 1), 401, reasonAudience))
	add(introRow("Ory Hydra token_use; RFC 7662 §2.2", "active refresh token (token_use refresh_token)", strings.Replace(good(`,"exp":`+future), `"access_token"`, `"refresh_token"`, 1), 401, "token_use_rejected"))
	add(introRow("RFC 9068 §2.2 (sub)", "active without sub", strings.Replace(good(`,"exp":`+future), `"sub":"worker",`, ``, 1), 401, reasonClaims))
	add(introRow("RFC 7662 §2.2 (exp is a NumericDate)", "active with exp as a string", good(`,"exp":"`+future+`"`), 503, reasonIntroDown))
	add(introRow("RFC 7662 §2.2 (scope is a string)", "active with scope as a number", strings.Replace(good(""), `"scope":"data:read"`, `"scope":7`, 1), 503, reasonIntroDown))
	add(introRow("RFC 7662 §2.2", "not JSON (an HTML page with 200)", `<html>ok</html>`, 503, reasonIntroDown))
	add(introRow("RFC 7662 §2.2", "a JSON array", `[{"active":true}]`, 503, reasonIntroDown))
	add(introRow("RFC 7662 §2.2", "an answer over 64 KiB", good(`,"pad":"`+strings.Repeat("a", 70<<10)+`"`), 503, reasonIntroDown))
	add(introRow("RFC 7662 §2.2", "active with a scope claim of bad syntax", strings.Replace(good(`,"exp":`+future), `"scope":"data:read"`, `"scope":"data:read\tadmin"`, 1), 401, reasonClaims))
	add(attackRow{source: "RFC 7662 §2.2 (the server says inactive)", name: "a random opaque token through hybrid", profile: profHybrid, status: 401, code: "invalid_token", reason: reasonInactive,
		token: func(t *testing.T, e *atkEnv) string {
			return "ory_at_" + b64s("forged-token-value-0123456789") + "." + b64s("forged")
		}})
	add(attackRow{source: "RFC 7662 §2.2", name: "a revoked opaque token through hybrid", profile: profHybrid, status: 401, code: "invalid_token", reason: reasonInactive,
		token: func(t *testing.T, e *atkEnv) string {
			tok := e.iss.OpaqueM2M("worker", "data:read")
			e.iss.Revoke(tok)
			return tok
		}})
	add(attackRow{source: "RFC 7662 §2.1 (the issuer decides; it never minted this)", name: "alg none JWT through introspect mode", profile: profIntrospect, status: 401, code: "invalid_token", reason: reasonInactive,
		token: func(t *testing.T, e *atkEnv) string { return e.noneToken(t, "none", b64s("sig")) }})
	add(attackRow{source: "RFC 7662 §2.1 (the JWT is unknown to the server)", name: "attacker-signed JWT through introspect mode", profile: profIntrospect, status: 401, code: "invalid_token", reason: reasonInactive,
		token: func(t *testing.T, e *atkEnv) string {
			return e.attackerSigned(t, `{"alg":"RS256","kid":"`+e.rsa.ID+`"}`)
		}})
	add(attackRow{source: "RFC 9068 §4; README (a foreign iss never causes a call)", name: "another issuer's JWT through introspect mode", profile: profIntrospect, status: 401, code: "invalid_token", reason: reasonIssuer,
		token: func(t *testing.T, e *atkEnv) string { return e.other.M2M("worker", "data:read") }})

	return rows
}

func jsonNum(n int64) string { return string(must(json.Marshal(n))) }

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestAttackJWERefusedPromptly: a JWE with PBES2 at p2c 2^31-1 and zip
// (CVE-2023-49290, CVE-2024-28180) is refused by its shape, before any
// base64 decoding, key lookup or decryption: in ModeJWT with a handful of
// allocations; in ModeHybrid as an opaque token the issuer calls inactive.
func TestAttackJWERefusedPromptly(t *testing.T) {
	suite := newAtkSuite(t)
	e := newAtkEnv(t, suite, nil)
	p2s := b64s("saltsaltsaltsalt")
	token := b64s(`{"alg":"PBES2-HS512+A256KW","enc":"A256GCM","zip":"DEF","p2c":2147483647,"p2s":"`+p2s+`"}`) + "." +
		b64s("encrypted key") + "." + b64s("iv-0123456789") + "." + b64u(bytes.Repeat([]byte{0}, 4096)) + "." + b64s("tag-0123456789ab")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := e.guards[profJWT].Validate(ctx, token)
	var refusal *aegis.Refusal
	require.ErrorAs(t, err, &refusal)
	assert.Equal(t, reasonMalformed, string(refusal.Reason))
	allocs := testing.AllocsPerRun(100, func() { _, _ = e.guards[profJWT].Validate(ctx, token) })
	assert.LessOrEqual(t, allocs, 8.0, "a JWE must be refused by its shape, without decoding or decrypting it")

	_, err = e.guards[profHybrid].Validate(ctx, token)
	require.ErrorAs(t, err, &refusal)
	assert.Equal(t, reasonInactive, string(refusal.Reason))
	assert.NoError(t, ctx.Err(), "refused within the deadline")
	assert.Equal(t, int64(1), e.iss.IntrospectionCalls(), "the JWE went once to introspection as an opaque token")
	assert.Zero(t, suite.attackerHits.Load())
}

// TestAttackSuiteKnownAcceptances pins what Aegis accepts although an
// attack-minded reading of a source might refuse it, each with the reason.
// A row here is a decision, not an endorsement: tightening Aegis should
// move the row into TestAttackSuite.
func TestAttackSuiteKnownAcceptances(t *testing.T) {
	suite := newAtkSuite(t)
	e := newAtkEnv(t, suite, nil)
	rows := []struct {
		source, name, why string
		profile           string
		serve             http.HandlerFunc
		request           func(t *testing.T, e *atkEnv) *http.Request
	}{
		{source: "ECDSA malleability (no low-S rule in RFC 7518 §3.4)", name: "ES256 genuine signature with s replaced by n-s",
			why: "Go's crypto/ecdsa accepts both s and n-s and JOSE defines no low-S rule; the claims are the issuer's, unchanged, so nothing is forged. " +
				"A second byte string for the same token defeats only deny lists keyed on token bytes: revoke by jti, not by hash",
			request: func(t *testing.T, e *atkEnv) *http.Request {
				in, r, s, size := e.ecToken(t, e.es256)
				return get("/data", "Bearer "+in+"."+b64u(p1363(r, new(big.Int).Sub(curveOrder(e.es256), s), size)))
			}},
		{source: "RFC 7519 §2 (NumericDate)", name: "exp 253402300799, the last second of 9999",
			why: "a real date, however far; values beyond 9999 or not finite are refused (TestAttackSuite); bound lifetimes with jwks.ValidatorConfig.MaxLifetime",
			request: func(t *testing.T, e *atkEnv) *http.Request {
				return get("/data", "Bearer "+e.genuine(e.payloadWith(t, "exp", `253402300799`)))
			}},
		{source: "RFC 9068 §2.2.3 (scope is a string)", name: "scope as an array of strings",
			why: "scopes.FromClaim reads scope and scp alike: a string of space-separated tokens or an array of single tokens; each token is still checked",
			request: func(t *testing.T, e *atkEnv) *http.Request {
				c := e.claims()
				delete(c, "scp")
				c["scope"] = []string{"data:read"}
				return get("/data", "Bearer "+e.genuine(atkJSON(t, c)))
			}},
		{source: "Hydra scp is an array", name: "scp as a space-separated string",
			why: "documented in the README (Principal and classification): scp may be an array or a string",
			request: func(t *testing.T, e *atkEnv) *http.Request {
				return get("/data", "Bearer "+e.genuine(e.payloadWith(t, "scp", `"data:read other"`)))
			}},
		{source: "RFC 7235 §2.1 (the scheme is case-insensitive)", name: "scheme in lower case",
			why:     "auth-scheme is case-insensitive",
			request: func(t *testing.T, e *atkEnv) *http.Request { return get("/data", "bearer "+e.valid(t)) }},
		{source: "RFC 6750 §2.1 (1*SP)", name: "two spaces after the scheme",
			why:     "the grammar allows one or more spaces",
			request: func(t *testing.T, e *atkEnv) *http.Request { return get("/data", "Bearer  "+e.valid(t)) }},
		{source: "RFC 7515 §4.1.7-4.1.8", name: "x5t and x5t#S256 beside a genuine signature",
			why: "thumbprints only select a key; Aegis selects by kid among the issuer's keys and ignores them, so no key is taken from them",
			request: func(t *testing.T, e *atkEnv) *http.Request {
				return get("/data", "Bearer "+jwkstest.SignRaw(e.rsa, e.header(e.rsa, `,"x5t":"`+b64s("thumb")+`","x5t#S256":"`+b64s("thumb256")+`"`), atkJSON(t, e.claims())))
			}},
		{source: "RFC 7662 §2.2 (token_type)", name: "introspection answer with token_type refresh_token",
			why:     "the introspect package checks token_use (Ory Hydra's member) and not token_type, whose RFC 7662 meaning is the RFC 6749 §7.1 type (bearer, DPoP…)",
			profile: profHybrid,
			serve: func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, `{"active":true,"sub":"worker","client_id":"worker","scope":"data:read","aud":["https://api.test"],"token_type":"refresh_token"}`)
			},
			request: func(t *testing.T, e *atkEnv) *http.Request {
				return get("/data", "Bearer "+e.iss.OpaqueM2M("worker", "data:read"))
			}},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			require.NotEmpty(t, tc.source)
			require.NotEmpty(t, tc.why)
			env := e
			if tc.serve != nil {
				env = newAtkEnv(t, suite, tc.serve)
			}
			profile := tc.profile
			if profile == "" {
				profile = profJWT
			}
			rec := httptest.NewRecorder()
			env.handlers[profile].ServeHTTP(rec, tc.request(t, env))
			assert.Equal(t, http.StatusOK, rec.Code, "reason %q", rec.Header().Get("X-Attack-Reason"))
		})
	}
	assert.Zero(t, suite.attackerHits.Load())
}
