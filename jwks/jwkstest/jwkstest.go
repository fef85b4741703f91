// Package jwkstest is Aegis's test kit: an in-process OAuth2 issuer on
// httptest that serves discovery metadata and a JWK Set, mints signed access
// tokens shaped like Ory Hydra's (M2M and user fixtures, custom claims,
// expired, wrong audience, any algorithm), rotates keys and counts fetches.
// Use it to test your own handlers behind Aegis without a real issuer.
package jwkstest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// Config configures an Issuer. The zero value is ready to use.
type Config struct {
	// Algorithm of the first signing key; default "RS256".
	Algorithm string
	// Audience put in minted tokens; default DefaultAudience.
	Audience string
	// TokenLifetime of minted tokens; default one hour.
	TokenLifetime time.Duration
	// Now is the clock for iat, nbf and exp; default time.Now.
	Now func() time.Time
	// HideIntrospectionEndpoint leaves introspection_endpoint out of the
	// metadata, as Ory Hydra does; the endpoint still answers.
	HideIntrospectionEndpoint bool
	// Listener, when set, is where the issuer serves (a fixed address for
	// a long-running local issuer); default a new loopback port.
	Listener net.Listener
}

// DefaultAudience is the audience of minted tokens unless configured.
const DefaultAudience = "https://api.test"

// Key is one signing key of the issuer.
type Key struct {
	// ID is the key's kid.
	ID string
	// Algorithm is the JWS alg it signs with.
	Algorithm string
	// Private is the signing key.
	Private crypto.Signer
}

// Public returns the public half of the key.
func (k *Key) Public() crypto.PublicKey { return k.Private.Public() }

// JWK returns the public key as a JWK with kid, alg and use "sig".
func (k *Key) JWK() json.RawMessage {
	pub, err := jwk.FromRaw(k.Public())
	if err != nil {
		panic(fmt.Sprintf("jwkstest: %v", err))
	}
	_ = pub.Set(jwk.KeyIDKey, k.ID)
	_ = pub.Set(jwk.AlgorithmKey, jwa.SignatureAlgorithm(k.Algorithm))
	_ = pub.Set(jwk.KeyUsageKey, "sig")
	raw, err := json.Marshal(pub)
	if err != nil {
		panic(fmt.Sprintf("jwkstest: %v", err))
	}
	return raw
}

// Issuer is an in-process authorization server for tests. Its URL is both
// its issuer identifier and its base address. It is safe for concurrent use.
type Issuer struct {
	// URL is the issuer identifier (the httptest server's URL).
	URL string
	// Audience is what minted tokens carry in aud.
	Audience string

	server        *httptest.Server
	cfg           Config
	fetches       atomic.Int64
	tokenRequests atomic.Int64
	sequence      atomic.Int64

	mu        sync.Mutex
	current   *Key
	published []*Key
	extra     []json.RawMessage
	override  http.Handler
	clients   map[string]Client

	introspections        atomic.Int64
	minted                map[[32]byte]map[string]any
	introspectionClient   *Client
	introspectionOverride http.Handler
}

// NewIssuer starts an Issuer with one signing key and stops it when the test
// ends.
func NewIssuer(tb testing.TB, cfg Config) *Issuer {
	tb.Helper()
	i := Start(cfg)
	tb.Cleanup(i.Close)
	return i
}

// Start starts an Issuer outside a test (a demo, a local run); Close stops it.
func Start(cfg Config) *Issuer {
	if cfg.Algorithm == "" {
		cfg.Algorithm = "RS256"
	}
	if cfg.Audience == "" {
		cfg.Audience = DefaultAudience
	}
	if cfg.TokenLifetime == 0 {
		cfg.TokenLifetime = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	i := &Issuer{cfg: cfg, Audience: cfg.Audience}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", i.serveMetadata)
	mux.HandleFunc("GET /.well-known/jwks.json", i.serveJWKS)
	mux.HandleFunc("POST /oauth2/token", i.serveToken)
	mux.HandleFunc("POST /oauth2/introspect", i.serveIntrospection)
	i.server = httptest.NewUnstartedServer(mux)
	if cfg.Listener != nil {
		_ = i.server.Listener.Close()
		i.server.Listener = cfg.Listener
	}
	i.server.Start()
	i.URL = i.server.URL
	i.Rotate(cfg.Algorithm)
	return i
}

// Close stops the issuer's server.
func (i *Issuer) Close() { i.server.Close() }

// JWKSURL is where the issuer serves its key set.
func (i *Issuer) JWKSURL() string { return i.URL + "/.well-known/jwks.json" }

// Client returns an HTTP client for the issuer's server.
func (i *Issuer) Client() *http.Client { return i.server.Client() }

// JWKSFetches counts the requests for the key set so far.
func (i *Issuer) JWKSFetches() int64 { return i.fetches.Load() }

// NewKey generates a key for alg (RS256…PS512 with RSA-2048, ES256/384/512
// on their curves, EdDSA and Ed25519 with Ed25519) without publishing it.
func NewKey(alg string) *Key {
	var priv crypto.Signer
	var err error
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ES512":
		priv, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "EdDSA", "Ed25519":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		panic(fmt.Sprintf("jwkstest: unsupported algorithm %q", alg))
	}
	if err != nil {
		panic(fmt.Sprintf("jwkstest: generating a key: %v", err))
	}
	return &Key{ID: newID("key"), Algorithm: alg, Private: priv}
}

var idCounter atomic.Int64

func newID(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", prefix, idCounter.Add(1), base64.RawURLEncoding.EncodeToString(b[:]))
}

// Rotate generates a new key for alg, publishes it beside the old ones and
// makes it the one that signs from now on, as Hydra does.
func (i *Issuer) Rotate(alg string) *Key {
	k := NewKey(alg)
	i.mu.Lock()
	defer i.mu.Unlock()
	i.current = k
	i.published = append(i.published, k)
	return k
}

// CurrentKey returns the key that signs new tokens.
func (i *Issuer) CurrentKey() *Key {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.current
}

// Unpublish removes the key with kid from the key set; tokens it signed
// stop validating once a validator refetches.
func (i *Issuer) Unpublish(kid string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	kept := i.published[:0]
	for _, k := range i.published {
		if k.ID != kid {
			kept = append(kept, k)
		}
	}
	i.published = kept
}

// PublishRawJWK adds a JWK to the served set as is, such as a symmetric or
// weak key, to test how validators treat it.
func (i *Issuer) PublishRawJWK(raw json.RawMessage) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.extra = append(i.extra, raw)
}

// ServeJWKSWith replaces the key set endpoint by h (an outage, a slow or
// hostile answer); nil restores it. Fetches are counted either way.
func (i *Issuer) ServeJWKSWith(h http.Handler) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.override = h
}

func (i *Issuer) serveMetadata(w http.ResponseWriter, _ *http.Request) {
	meta := map[string]any{
		"issuer":                                i.URL,
		"jwks_uri":                              i.JWKSURL(),
		"token_endpoint":                        i.URL + "/oauth2/token",
		"introspection_endpoint":                i.IntrospectionURL(),
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
	}
	if i.cfg.HideIntrospectionEndpoint {
		delete(meta, "introspection_endpoint")
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(meta)
}

func (i *Issuer) serveJWKS(w http.ResponseWriter, r *http.Request) {
	i.fetches.Add(1)
	i.mu.Lock()
	override := i.override
	keys := make([]json.RawMessage, 0, len(i.published)+len(i.extra))
	for _, k := range i.published {
		keys = append(keys, k.JWK())
	}
	keys = append(keys, i.extra...)
	i.mu.Unlock()
	if override != nil {
		override.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
}

// Claims returns the claims Hydra puts in an access token for subject and
// client: iss, aud (array), sub, client_id, scp (array), iat, nbf, exp, jti
// and an empty ext. Change the map before Sign for special cases.
func (i *Issuer) Claims(subject, clientID string, scopes ...string) map[string]any {
	now := i.cfg.Now()
	if scopes == nil {
		scopes = []string{}
	}
	return map[string]any{
		"iss":       i.URL,
		"aud":       []string{i.Audience},
		"sub":       subject,
		"client_id": clientID,
		"scp":       scopes,
		"iat":       now.Unix(),
		"nbf":       now.Unix(),
		"exp":       now.Add(i.cfg.TokenLifetime).Unix(),
		"jti":       newID("jti"),
		"ext":       map[string]any{},
	}
}

// M2M mints a client_credentials token: sub equals client_id, no email.
func (i *Issuer) M2M(clientID string, scopes ...string) string {
	return i.Sign(i.Claims(clientID, clientID, scopes...))
}

// User mints a token issued to clientID for a person, with the email under
// ext as Hydra puts session claims.
func (i *Issuer) User(subject, clientID, email string, scopes ...string) string {
	return i.Sign(i.userClaims(subject, clientID, email, scopes))
}

// Expired mints an M2M token whose exp passed an hour ago.
func (i *Issuer) Expired(clientID string, scopes ...string) string {
	c := i.Claims(clientID, clientID, scopes...)
	past := i.cfg.Now().Add(-2 * time.Hour)
	c["iat"], c["nbf"], c["exp"] = past.Unix(), past.Unix(), past.Add(time.Hour).Unix()
	return i.Sign(c)
}

// WrongAudience mints an M2M token for another audience.
func (i *Issuer) WrongAudience(clientID string, scopes ...string) string {
	c := i.Claims(clientID, clientID, scopes...)
	c["aud"] = []string{"https://another-api.test"}
	return i.Sign(c)
}

// OtherIssuer mints an M2M token signed with this issuer's key but naming
// another issuer (OtherIssuerURL) in iss.
func (i *Issuer) OtherIssuer(clientID string, scopes ...string) string {
	c := i.Claims(clientID, clientID, scopes...)
	c["iss"] = OtherIssuerURL
	return i.Sign(c)
}

// OtherIssuerURL is the iss of OtherIssuer's and UserOtherIssuer's tokens.
const OtherIssuerURL = "https://other-issuer.test"

// userClaims are User's claims: email under ext, as Hydra puts it.
func (i *Issuer) userClaims(subject, clientID, email string, scopes []string) map[string]any {
	c := i.Claims(subject, clientID, scopes...)
	c["ext"] = map[string]any{"email": email}
	return c
}

// UserExpired mints a user's token (as User) whose exp passed an hour ago.
func (i *Issuer) UserExpired(subject, clientID, email string, scopes ...string) string {
	c := i.userClaims(subject, clientID, email, scopes)
	past := i.cfg.Now().Add(-2 * time.Hour)
	c["iat"], c["nbf"], c["exp"] = past.Unix(), past.Unix(), past.Add(time.Hour).Unix()
	return i.Sign(c)
}

// UserWrongAudience mints a user's token (as User) for another audience.
func (i *Issuer) UserWrongAudience(subject, clientID, email string, scopes ...string) string {
	c := i.userClaims(subject, clientID, email, scopes)
	c["aud"] = []string{"https://another-api.test"}
	return i.Sign(c)
}

// UserOtherIssuer mints a user's token (as User) naming another issuer
// (OtherIssuerURL) in iss.
func (i *Issuer) UserOtherIssuer(subject, clientID, email string, scopes ...string) string {
	c := i.userClaims(subject, clientID, email, scopes)
	c["iss"] = OtherIssuerURL
	return i.Sign(c)
}

// Sign signs claims with the current key under the header
// {"alg":…,"kid":…,"typ":"JWT"}.
func (i *Issuer) Sign(claims map[string]any) string {
	return i.SignWith(i.CurrentKey(), nil, claims)
}

// SignWith signs claims with key; header members given override or extend
// the default header (a nil value removes a member).
func (i *Issuer) SignWith(key *Key, header map[string]any, claims map[string]any) string {
	h := map[string]any{"alg": key.Algorithm, "kid": key.ID, "typ": "JWT"}
	for name, v := range header {
		if v == nil {
			delete(h, name)
			continue
		}
		h[name] = v
	}
	hj, err := json.Marshal(h)
	if err != nil {
		panic(fmt.Sprintf("jwkstest: header: %v", err))
	}
	cj, err := json.Marshal(claims)
	if err != nil {
		panic(fmt.Sprintf("jwkstest: claims: %v", err))
	}
	token := SignRaw(key, hj, cj)
	i.remember(token, claims)
	return token
}

// SignRaw signs the exact header and payload bytes with key's algorithm and
// returns the compact serialization. It lets tests build tokens no
// well-behaved issuer would.
func SignRaw(key *Key, header, payload []byte) string {
	input := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	if key.Algorithm == "Ed25519" { // RFC 9864's name, unknown to jwx v2
		return input + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(key.Private.(ed25519.PrivateKey), []byte(input)))
	}
	signer, err := jws.NewSigner(jwa.SignatureAlgorithm(key.Algorithm))
	if err != nil {
		panic(fmt.Sprintf("jwkstest: %v", err))
	}
	sig, err := signer.Sign([]byte(input), key.Private)
	if err != nil {
		panic(fmt.Sprintf("jwkstest: signing: %v", err))
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}
