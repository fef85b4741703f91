// Package dpop verifies DPoP proofs (RFC 9449) at a resource server: the
// proof is a JWT the client signs with its own key for each request, and an
// access token bound to that key (cnf.jkt) is accepted only with a fresh
// proof of it. package core decides when a proof is needed (Policy) and
// calls a Verifier; package middleware takes the proof from the DPoP
// header.
//
// A Verifier checks everything RFC 9449 §4.3 and §7 ask of a resource
// server: one proof; typ dpop+jwt; an asymmetric alg of the allowlist;
// a public jwk with no private members; the signature, with that jwk
// (jwks.ProofParser); htm and htu against the request; iat within Window;
// jti not seen before within that window (a ReplayStore); ath, the hash of
// the access token; and the jwk's RFC 7638 thumbprint against the token's
// cnf.jkt. Server-provided nonces (§8) are checked when NonceConfig is set.
package dpop

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/internal/refusal"
	"github.com/olympus/aegis/jwks"
)

// Policy says which presentations of tokens a route accepts.
type Policy string

const (
	// PolicyDefault is the zero Policy: the configured default (a Guard's,
	// a Checker's), which is Allow unless set.
	PolicyDefault Policy = ""
	// Allow accepts Bearer tokens and DPoP-bound tokens with their proofs:
	// a token bound to a key (cnf.jkt) needs a DPoP proof of it, a token
	// bound to nothing passes as a Bearer token.
	Allow Policy = "allow"
	// Require accepts only DPoP: a DPoP-bound token with its proof.
	Require Policy = "require"
	// Off accepts only Bearer tokens: DPoP-bound tokens are refused, as
	// this server cannot check their binding.
	Off Policy = "off"
)

// ParsePolicy reads "allow", "require" or "off" (a flag's value).
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(s); p {
	case Allow, Require, Off:
		return p, nil
	}
	return "", fmt.Errorf("dpop: policy %q is not allow, require or off", s)
}

// Errors a Verifier's refusals wrap (errors.Is finds them through the
// *aegis.Refusal); jwks.ErrProof is the cause of a malformed or unverifiable
// proof.
var (
	// ErrMissing: no DPoP proof, or more than one.
	ErrMissing = errors.New("dpop: not exactly one proof")
	// ErrMethod: htm is not the request's method.
	ErrMethod = errors.New("dpop: htm is not the request's method")
	// ErrURI: htu is not the request's URI.
	ErrURI = errors.New("dpop: htu is not the request's URI")
	// ErrIssuedAt: iat is outside the accepted window.
	ErrIssuedAt = errors.New("dpop: iat outside the accepted window")
	// ErrReplayed: the proof's jti was seen before.
	ErrReplayed = errors.New("dpop: proof replayed")
	// ErrTokenHash: ath is missing or is not the access token's hash.
	ErrTokenHash = errors.New("dpop: ath does not match the access token")
	// ErrKeyMismatch: the proof's key is not the one the token is bound
	// to (cnf.jkt).
	ErrKeyMismatch = errors.New("dpop: proof key is not the token's")
	// ErrNonce: the proof lacks the server's current nonce.
	ErrNonce = errors.New("dpop: nonce missing or stale")
	// ErrStoreUnavailable: the replay store cannot decide.
	ErrStoreUnavailable = errors.New("dpop: replay store unavailable")
)

// Defaults of Config.
const (
	DefaultWindow     = 60 * time.Second
	DefaultMaxEntries = 100_000
)

// Config configures a Verifier.
type Config struct {
	// Algorithms is the allowlist of proof algorithms; default
	// jwks.DefaultAlgorithms() (ES256/384/512, RS256/384/512,
	// PS256/384/512, EdDSA, Ed25519). Only asymmetric algorithms can be named.
	Algorithms []string
	// Window is how far iat may be from now, either way; default
	// DefaultWindow (60 s).
	Window time.Duration
	// Leeway is clock skew tolerated beyond Window, either way; zero means
	// none (the window absorbs ordinary skew), negative is an error.
	Leeway time.Duration
	// MaxProofLength bounds a proof before any decoding; default
	// jwks.DefaultMaxProofLength (8 KiB).
	MaxProofLength int
	// MaxProofKeys bounds the proof keys remembered, so that a client's
	// key is read and hashed (RFC 7638) once, not for every proof; default
	// jwks.DefaultMaxProofKeys (4,096), negative for none. Every proof's
	// signature is verified either way.
	MaxProofKeys int
	// Replay remembers the proofs seen, to refuse a second use; default an
	// in-memory store of MaxEntries. Share one store (or one Verifier)
	// between everything that accepts the same proofs: Guards of one
	// process, or, with a shared store such as Redis, every replica.
	Replay ReplayStore
	// MaxEntries bounds the default in-memory store; default
	// DefaultMaxEntries.
	MaxEntries int
	// Nonce, when set, demands server-provided nonces (RFC 9449 §8).
	Nonce *NonceConfig
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Verifier checks DPoP proofs. It is safe for concurrent use.
type Verifier struct {
	algorithms []string
	parser     *jwks.ProofParser
	window     time.Duration
	replay     ReplayStore
	nonces     *nonces
	now        func() time.Time
}

// New checks cfg and returns a Verifier. Every problem with cfg is
// reported at once, naming its field.
func New(cfg Config) (*Verifier, error) {
	var errs []error
	for _, alg := range cfg.Algorithms {
		if !slices.Contains(jwks.DefaultAlgorithms(), alg) {
			errs = append(errs, fmt.Errorf("dpop.Config.Algorithms: %q is not an asymmetric JWS algorithm Aegis verifies", alg))
		}
	}
	if cfg.Algorithms != nil && len(cfg.Algorithms) == 0 {
		errs = append(errs, errors.New("dpop.Config.Algorithms is empty: leave it nil for the default"))
	}
	if cfg.Window < 0 {
		errs = append(errs, fmt.Errorf("dpop.Config.Window %v is negative", cfg.Window))
	}
	if cfg.Leeway < 0 {
		errs = append(errs, fmt.Errorf("dpop.Config.Leeway %v is negative", cfg.Leeway))
	}
	if cfg.MaxProofLength < 0 {
		errs = append(errs, fmt.Errorf("dpop.Config.MaxProofLength %d is negative", cfg.MaxProofLength))
	}
	if cfg.MaxEntries < 0 {
		errs = append(errs, fmt.Errorf("dpop.Config.MaxEntries %d is negative", cfg.MaxEntries))
	}
	if cfg.Replay != nil && cfg.MaxEntries != 0 {
		errs = append(errs, errors.New("dpop.Config.MaxEntries bounds the default store: set it or Replay, not both"))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ns, err := newNonces(cfg.Nonce, cfg.Now)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	v := &Verifier{algorithms: slices.Clone(cfg.Algorithms), window: cfg.Window + cfg.Leeway,
		replay: cfg.Replay, nonces: ns, now: cfg.Now}
	if v.algorithms == nil {
		v.algorithms = jwks.DefaultAlgorithms()
	}
	v.parser = jwks.NewProofParser(jwks.ProofParserConfig{Algorithms: v.algorithms, MaxLength: cfg.MaxProofLength, MaxKeys: cfg.MaxProofKeys})
	if cfg.Window == 0 {
		v.window = DefaultWindow + cfg.Leeway
	}
	if v.replay == nil {
		max := cfg.MaxEntries
		if max == 0 {
			max = DefaultMaxEntries
		}
		v.replay, _ = NewMemoryStore(MemoryStoreConfig{MaxEntries: max, Now: cfg.Now})
	}
	return v, nil
}

// Algorithms returns the allowlist, for the algs of a DPoP challenge.
func (v *Verifier) Algorithms() []string { return slices.Clone(v.algorithms) }

// Request is what a proof is checked against.
type Request struct {
	// Proofs are the request's DPoP header values: exactly one is accepted.
	Proofs []string
	// Method is the request's method.
	Method string
	// URL is the request's absolute URL as the client addressed it
	// (scheme and host included; query and fragment are ignored).
	URL *url.URL
	// AccessToken is the token presented with the proof.
	AccessToken string
	// Thumbprint is the token's cnf.jkt.
	Thumbprint string
}

// Verify checks req's proof (see the package documentation) and, when
// every other check passes, records its jti as used. A refusal is an
// *aegis.Refusal: aegis.ReasonInvalidDPoPProof, aegis.ReasonUseDPoPNonce
// (its NewNonce is the nonce to send) or, when the replay store fails,
// aegis.ReasonReplayStoreUnavailable. Neither the proof nor the token ever
// appears in its text.
func (v *Verifier) Verify(ctx context.Context, req Request) (*jwks.Proof, error) {
	if len(req.Proofs) != 1 {
		return nil, invalid(ErrMissing, "the request must carry exactly one DPoP header")
	}
	p, err := v.parser.Parse(req.Proofs[0])
	if err != nil {
		return nil, err
	}
	if p.Method != req.Method {
		return nil, invalid(ErrMethod, "htm is not the request's method")
	}
	want, ok := NormalizeURI(req.URL)
	if !ok {
		return nil, invalid(ErrURI, "the request's URI is not known (no scheme or host)")
	}
	got, ok := normalizeString(p.URI)
	if !ok || got != want {
		return nil, invalid(ErrURI, "htu is not the request's URI")
	}
	now := v.now()
	if p.IssuedAt.Before(now.Add(-v.window)) || p.IssuedAt.After(now.Add(v.window)) {
		return nil, invalid(ErrIssuedAt, "iat is outside the accepted window")
	}
	if v.nonces != nil && !v.nonces.valid(p.Nonce, now) {
		return nil, v.nonces.refusal(now)
	}
	if req.AccessToken != "" {
		sum := sha256.Sum256([]byte(req.AccessToken))
		var ath [43]byte
		base64.RawURLEncoding.Encode(ath[:], sum[:])
		if subtle.ConstantTimeCompare(ath[:], []byte(p.TokenHash)) != 1 {
			return nil, invalid(ErrTokenHash, "ath is missing or is not the access token's hash")
		}
	}
	if req.Thumbprint == "" || subtle.ConstantTimeCompare([]byte(req.Thumbprint), []byte(p.Thumbprint)) != 1 {
		return nil, invalid(ErrKeyMismatch, "the proof's key is not the key the token is bound to")
	}
	seen, err := v.replay.Seen(ctx, replayKey(p), p.IssuedAt.Add(v.window+time.Second))
	if err != nil {
		return nil, aegis.Unavailable(aegis.ReasonReplayStoreUnavailable, time.Second, fmt.Errorf("%w: %w", ErrStoreUnavailable, err))
	}
	if seen {
		return nil, invalid(ErrReplayed, "the proof's jti was used before")
	}
	return p, nil
}

// replayKey names a proof in the replay store: a hash of its key's
// thumbprint and its jti (RFC 9449 §11.1), of fixed size whatever the jti.
func replayKey(p *jwks.Proof) string {
	h := sha256.New()
	h.Write([]byte(p.Thumbprint))
	h.Write([]byte{0})
	h.Write([]byte(p.ID))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

func invalid(sentinel error, detail string) error {
	return refusal.With(aegis.ReasonInvalidDPoPProof, sentinel, detail)
}

// NormalizeURI returns u as htu is compared (RFC 9449 §4.3 check 9, RFC
// 3986 §6.2.2 and §6.2.3): scheme and host in lower case, the scheme's
// default port removed, an empty path as "/", percent-encodings of
// unreserved characters decoded and the others in upper case, then dot
// segments removed (RFC 3986 §5.2.4); no query, no fragment. ok is false unless u is an absolute http or https URL.
func NormalizeURI(u *url.URL) (string, bool) {
	if u == nil {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "https" && scheme != "http") || u.Host == "" || u.Opaque != "" {
		return "", false
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if strings.IndexByte(host, ':') >= 0 {
		host = "[" + host + "]"
	}
	if port != "" && !(scheme == "https" && port == "443") && !(scheme == "http" && port == "80") {
		host += ":" + port
	}
	path, ok := normalizePath(u.EscapedPath())
	if !ok {
		return "", false
	}
	return scheme + "://" + host + removeDotSegments(path), true
}

// removeDotSegments removes the "." and ".." segments of an absolute path
// (RFC 3986 §5.2.4): "/a/./b/../c" is "/a/c", "/a/.." is "/".
func removeDotSegments(p string) string {
	if !strings.Contains(p, "/.") {
		return p
	}
	segments := strings.Split(p[1:], "/")
	out := make([]string, 0, len(segments))
	for i, s := range segments {
		last := i == len(segments)-1
		switch s {
		case ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, s)
			continue
		}
		if last { // a path ending in a dot segment ends in "/"
			out = append(out, "")
		}
	}
	return "/" + strings.Join(out, "/")
}

func normalizeString(s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || u.User != nil {
		return "", false
	}
	return NormalizeURI(u)
}

// normalizePath decodes percent-encoded unreserved characters, upper-cases
// the hex digits of the others, and makes an empty path "/".
func normalizePath(p string) (string, bool) {
	if p == "" {
		return "/", true
	}
	if strings.IndexByte(p, '%') < 0 {
		return p, true
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		if p[i] != '%' {
			b.WriteByte(p[i])
			continue
		}
		if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
			return "", false
		}
		c := unhex(p[i+1])<<4 | unhex(p[i+2])
		if isUnreserved(c) {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteString(strings.ToUpper(p[i+1 : i+3]))
		}
		i += 2
	}
	return b.String(), true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}
