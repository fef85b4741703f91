package middleware_test

// Helpers of TestSoak (soak_test.go): fault injectors for the issuer's key
// set and introspection endpoint, a record of fault windows, the token
// pools, and a scan of the logs for tokens.

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/olympus/aegis/jwks/jwkstest"
)

// soakDep is a dependency of the Guard that a fault takes down.
type soakDep int

const (
	soakJWKS soakDep = iota
	soakIntro
	soakRedis
	// soakStall is this process not running: whatever was waiting may
	// time out, so it counts as a fault of every dependency.
	soakStall
)

func (d soakDep) String() string {
	return [...]string{"jwks", "introspection", "redis", "stall"}[d]
}

// soakStallGrace is how long a stall of this process may explain failures
// after it ended.
const soakStallGrace = 500 * time.Millisecond

// soakWindow is one fault: from start to end (zero while it lasts). An
// event such as a key rotation is a window of no length.
type soakWindow struct {
	dep        soakDep
	label      string
	start, end time.Time
}

// soakFaults records when each dependency was down.
type soakFaults struct {
	mu      sync.Mutex
	windows []soakWindow
	open    map[string]int // label → index of its open window
}

func newSoakFaults() *soakFaults { return &soakFaults{open: map[string]int{}} }

func (f *soakFaults) begin(dep soakDep, label string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.open[label]; ok {
		return
	}
	f.open[label] = len(f.windows)
	f.windows = append(f.windows, soakWindow{dep: dep, label: label, start: time.Now()})
}

func (f *soakFaults) end(label string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i, ok := f.open[label]; ok {
		f.windows[i].end = time.Now()
		delete(f.open, label)
	}
}

func (f *soakFaults) event(dep soakDep, label string) {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.windows = append(f.windows, soakWindow{dep: dep, label: label, start: now, end: now})
}

// observe records a fault seen rather than injected, from from to to,
// extending the label's last window when they meet.
func (f *soakFaults) observe(dep soakDep, label string, from, to time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.windows) - 1; i >= 0; i-- {
		if w := &f.windows[i]; w.label == label {
			if !from.After(w.end.Add(50 * time.Millisecond)) {
				w.end = to
				return
			}
			break
		}
	}
	f.windows = append(f.windows, soakWindow{dep: dep, label: label, start: from, end: to})
}

// overlaps reports whether [from, to] meets a fault of one of deps, a
// fault counting until grace after its end.
func (f *soakFaults) overlaps(deps []soakDep, from, to time.Time, grace time.Duration) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.windows {
		if (w.dep != soakStall && !slices.Contains(deps, w.dep)) || to.Before(w.start) {
			continue
		}
		g := grace
		if w.dep == soakStall {
			g = min(grace, soakStallGrace) // a timeout that ran out meanwhile, a failover cooldown
		}
		if w.end.IsZero() || !from.After(w.end.Add(g)) {
			return true
		}
	}
	return false
}

// overlapsLabel is overlaps for the faults whose label starts with prefix.
func (f *soakFaults) overlapsLabel(prefix string, from, to time.Time, grace time.Duration) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.windows {
		if !strings.HasPrefix(w.label, prefix) || to.Before(w.start) {
			continue
		}
		if w.end.IsZero() || !from.After(w.end.Add(grace)) {
			return true
		}
	}
	return false
}

// lastEnds returns, per label, the end of its last window, and the dep of
// the label; a window still open is an error of the test's own making.
func (f *soakFaults) lastEnds() (map[string]time.Time, map[string]soakDep, map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ends, deps, counts := map[string]time.Time{}, map[string]soakDep{}, map[string]int{}
	for _, w := range f.windows {
		counts[w.label]++
		deps[w.label] = w.dep
		if w.end.IsZero() {
			ends[w.label] = time.Time{} // still open
			continue
		}
		if e, ok := ends[w.label]; !ok || (!e.IsZero() && w.end.After(e)) {
			ends[w.label] = w.end
		}
	}
	return ends, deps, counts
}

// soakHangs is a handler behaviour that answers nothing until the caller
// gives up; cap ends it if the caller never does (a bug: every caller of
// the issuer has a timeout), stop at the end of the test.
type soakHangs struct {
	stop                      <-chan struct{}
	cap                       time.Duration
	released, stopped, capped atomic.Int64
	longest                   atomic.Int64 // nanoseconds
}

func (h *soakHangs) hang(w http.ResponseWriter, r *http.Request) {
	// A server notices a caller that gave up only once the request body
	// is read.
	_, _ = io.Copy(io.Discard, r.Body)
	start := time.Now()
	t := time.NewTimer(h.cap)
	defer t.Stop()
	select {
	case <-r.Context().Done():
		h.released.Add(1)
		d := int64(time.Since(start))
		for {
			old := h.longest.Load()
			if d <= old || h.longest.CompareAndSwap(old, d) {
				break
			}
		}
	case <-h.stop:
		h.stopped.Add(1)
	case <-t.C:
		h.capped.Add(1)
		w.WriteHeader(http.StatusGatewayTimeout)
	}
}

// soakKeySet flaps the issuer's key set endpoint. Good answers come from
// its own list of published keys (kept in step with the issuer's) and name
// the keys left out in a header, so that soakTransport can tell when a
// Guard has received a key set without a retired key.
type soakKeySet struct {
	iss   *jwkstest.Issuer
	hangs *soakHangs

	mu        sync.Mutex
	published []*jwkstest.Key
	retired   []string
	phase     string
	hits      map[string]int
	garbage   int
	// dropped[guard][kid]: when that Guard first read a key set without kid.
	dropped map[string]map[string]time.Time
}

func newSoakKeySet(iss *jwkstest.Issuer, hangs *soakHangs) *soakKeySet {
	return &soakKeySet{iss: iss, hangs: hangs, published: []*jwkstest.Key{iss.CurrentKey()},
		phase: "good", hits: map[string]int{}, dropped: map[string]map[string]time.Time{}}
}

var soakGarbage = []string{
	`{"keys":[{"kty":"RSA","kid":"`,
	`<html><body>502 Bad Gateway</body></html>`,
	`{"keys":"not an array"}`,
	`{"keys":[]}`,
	`null`,
	`{"keys":[{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQ","alg":"HS256","kid":"k"}]}`,
	`{"keys":[{"kty":"RSA","kid":"x","n":"AQAB","e":"AQAB"}]}`,
	"\x00\x01\x02 binary",
}

// setPhase installs the handler of phase: good, 500, hang or garbage.
func (s *soakKeySet) setPhase(phase string) {
	s.mu.Lock()
	s.phase = phase
	s.mu.Unlock()
	var h http.HandlerFunc
	switch phase {
	case "good":
		h = s.serveGood
	case "500":
		h = func(w http.ResponseWriter, r *http.Request) {
			s.hit("500")
			http.Error(w, "internal error", http.StatusInternalServerError)
		}
	case "hang":
		h = func(w http.ResponseWriter, r *http.Request) {
			s.hit("hang")
			s.hangs.hang(w, r)
		}
	case "garbage":
		h = func(w http.ResponseWriter, r *http.Request) {
			s.mu.Lock()
			s.hits["garbage"]++
			body := soakGarbage[s.garbage%len(soakGarbage)]
			s.garbage++
			s.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, body)
		}
	default:
		panic("soak: unknown key set phase " + phase)
	}
	s.iss.ServeJWKSWith(h)
}

func (s *soakKeySet) hit(phase string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hits[phase]++
}

func (s *soakKeySet) serveGood(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.hits["good"]++
	keys := make([]json.RawMessage, 0, len(s.published))
	for _, k := range s.published {
		keys = append(keys, k.JWK())
	}
	absent := strings.Join(s.retired, ",")
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Soak-Set", "1")
	w.Header().Set("X-Soak-Absent", absent)
	_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
}

// rotate makes a new current key, published beside the others.
func (s *soakKeySet) rotate() *jwkstest.Key {
	k := s.iss.Rotate("ES256")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.published = append(s.published, k)
	return k
}

// unpublishAllBut leaves only the current key in the set.
func (s *soakKeySet) unpublishAllBut(current *jwkstest.Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.published {
		if k.ID != current.ID {
			s.iss.Unpublish(k.ID)
			s.retired = append(s.retired, k.ID)
		}
	}
	s.published = []*jwkstest.Key{current}
}

// delivered records that guard read a key set without the kids absent.
func (s *soakKeySet) delivered(guard, absent string, at time.Time) {
	if absent == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.dropped[guard]
	if m == nil {
		m = map[string]time.Time{}
		s.dropped[guard] = m
	}
	for _, kid := range strings.Split(absent, ",") {
		if _, ok := m[kid]; !ok {
			m[kid] = at
		}
	}
}

// droppedBefore reports whether guard had read a key set without kid
// before t.
func (s *soakKeySet) droppedBefore(guard, kid string, t time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.dropped[guard][kid]
	return ok && at.Before(t)
}

func (s *soakKeySet) hitCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.hits)
}

// soakTransport is a Guard's transport to the issuer: it tells the key
// set which Guard read a good answer to its end.
type soakTransport struct {
	guard string
	base  http.RoundTripper
	keys  *soakKeySet
}

func (t *soakTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.Header.Get("X-Soak-Set") == "" {
		return resp, err
	}
	absent := resp.Header.Get("X-Soak-Absent")
	resp.Body = &soakBody{ReadCloser: resp.Body, onEOF: func() { t.keys.delivered(t.guard, absent, time.Now()) }}
	return resp, nil
}

type soakBody struct {
	io.ReadCloser
	once  sync.Once
	onEOF func()
}

func (b *soakBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.once.Do(b.onEOF)
	}
	return n, err
}

// soakIntrospection flaps the introspection endpoint: good, 5xx or hang.
type soakIntrospection struct {
	iss   *jwkstest.Issuer
	hangs *soakHangs
	n5xx  atomic.Int64
	nHang atomic.Int64
}

func (s *soakIntrospection) setPhase(phase string) {
	switch phase {
	case "good":
		s.iss.ServeIntrospectionWith(nil)
	case "5xx":
		s.iss.ServeIntrospectionWith(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := s.n5xx.Add(1)
			status := []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}[n%3]
			if status == http.StatusServiceUnavailable {
				w.Header().Set("Retry-After", "1")
			}
			http.Error(w, "upstream trouble", status)
		}))
	case "hang":
		s.iss.ServeIntrospectionWith(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.nHang.Add(1)
			s.hangs.hang(w, r)
		}))
	default:
		panic("soak: unknown introspection phase " + phase)
	}
}

// soakTok is a token and the kid of its signing key ("" for opaque
// tokens and junk).
type soakTok struct{ s, kid string }

// soakPools are the tokens clients send, re-minted at each key rotation.
type soakPools struct {
	kid                                                              string    // the current key
	valid                                                            []soakTok // current key: M2M and user tokens with data:read
	prev                                                             []soakTok // previous key, still published
	retired                                                          []soakTok // keys no longer published
	greedy                                                           soakTok   // a client limited to 1 per minute
	noScope                                                          soakTok   // valid, without data:read
	expired, wrongAud, foreign, tampered, confused, none, unknownKid []soakTok

	opaque, revoked []soakTok // opaque tokens: the same for the whole run
}

// soakSent keeps every token sent, for the log scan.
type soakSent struct {
	mu     sync.Mutex
	tokens []string
}

func (s *soakSent) add(tokens ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = append(s.tokens, tokens...)
}

func (s *soakSent) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.tokens)
}

func soakB64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func soakJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// mintPools mints the tokens of a new generation: key is the current key,
// foreign a key the issuer never published, old the previous generation
// (nil at first).
func mintPools(iss *jwkstest.Issuer, key, foreign *jwkstest.Key, old *soakPools, sent *soakSent) *soakPools {
	p := &soakPools{kid: key.ID}
	jwt := func(s string) soakTok { sent.add(s); return soakTok{s: s, kid: key.ID} }
	for i := range 3 {
		p.valid = append(p.valid, jwt(iss.M2M("svc-"+strconv.Itoa(i), "data:read")))
		p.valid = append(p.valid, jwt(iss.User("user-"+strconv.Itoa(i), "web-app", "u"+strconv.Itoa(i)+"@example.com", "data:read", "openid")))
	}
	p.greedy = jwt(iss.M2M("greedy", "data:read"))
	p.noScope = jwt(iss.M2M("svc-noscope", "data:write"))
	p.expired = []soakTok{jwt(iss.Expired("svc-0", "data:read")), jwt(iss.Expired("greedy", "data:read"))}
	p.wrongAud = []soakTok{jwt(iss.WrongAudience("svc-0", "data:read"))}

	header := func(h map[string]any) []byte { return soakJSON(h) }
	claims := func(client string) []byte {
		c := iss.Claims(client, client, "data:read", "admin")
		return soakJSON(c)
	}
	// Signed by a key of ours that the issuer never published, under the
	// issuer's current kid.
	for _, client := range []string{"svc-0", "admin-tool"} {
		p.foreign = append(p.foreign, jwt(jwkstest.SignRaw(foreign, header(map[string]any{"alg": key.Algorithm, "kid": key.ID, "typ": "JWT"}), claims(client))))
	}
	// A valid token whose payload is changed, its signature kept.
	for _, base := range p.valid[:2] {
		parts := strings.Split(base.s, ".")
		var c map[string]any
		raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
		_ = json.Unmarshal(raw, &c)
		c["scp"] = []string{"data:read", "admin"}
		c["client_id"], c["sub"] = "admin-tool", "admin-tool"
		p.tampered = append(p.tampered, jwt(parts[0]+"."+soakB64(soakJSON(c))+"."+parts[2]))
	}
	// HS256 keyed with the issuer's public key (key confusion).
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		panic(err)
	}
	input := soakB64(header(map[string]any{"alg": "HS256", "kid": key.ID, "typ": "JWT"})) + "." + soakB64(claims("svc-0"))
	mac := hmac.New(sha256.New, der)
	mac.Write([]byte(input))
	p.confused = []soakTok{jwt(input + "." + soakB64(mac.Sum(nil)))}
	// alg none, without and with a signature.
	none := soakB64(header(map[string]any{"alg": "none", "typ": "JWT"})) + "." + soakB64(claims("svc-0"))
	p.none = []soakTok{jwt(none + "."), jwt(none + "." + soakB64([]byte("signature-that-means-nothing")))}
	// Signed by a key under a kid nobody published: each costs a refetch
	// at most once per cooldown.
	for range 2 {
		var b [9]byte
		for i := range b {
			b[i] = byte(rand.IntN(256))
		}
		kid := "key-unknown-" + soakB64(b[:])
		p.unknownKid = append(p.unknownKid, jwt(jwkstest.SignRaw(foreign, header(map[string]any{"alg": foreign.Algorithm, "kid": kid, "typ": "JWT"}), claims("svc-0"))))
	}
	if old != nil {
		p.prev = old.valid
		p.retired = old.retired
		p.opaque, p.revoked = old.opaque, old.revoked
	}
	return p
}

// retire moves the previous generation's tokens among the retired ones
// (keeping the last few), once their key is unpublished.
func (p *soakPools) retire() *soakPools {
	c := *p
	c.retired = append(slices.Clone(p.retired), p.prev...)
	if len(c.retired) > 24 {
		c.retired = c.retired[len(c.retired)-24:]
	}
	c.prev = nil
	return &c
}

const soakB64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func soakRandom(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = soakB64URL[rng.IntN(len(soakB64URL))]
	}
	return string(b)
}

// soakJunk returns an Authorization header value carrying junk.
func soakJunk(rng *rand.Rand) (header, token string) {
	var tok string
	switch rng.IntN(7) {
	case 0:
		tok = soakRandom(rng, 8+rng.IntN(120))
	case 1:
		tok = soakRandom(rng, 20) + "." + soakRandom(rng, 40) + "." + soakRandom(rng, 43)
	case 2:
		tok = "eyJ" + soakRandom(rng, 30+rng.IntN(60))
	case 3:
		tok = soakRandom(rng, 9000) // over Bearer.MaxLength
	case 4:
		tok = `junk"token` + soakRandom(rng, 20)
	case 5:
		tok = "ééé" + soakRandom(rng, 20)
	case 6:
		tok = "ory_at_" + soakRandom(rng, 32) + "." + soakRandom(rng, 32) // never issued
	}
	return "Bearer " + tok, tok
}

// soakMissing returns an Authorization header value with no usable
// bearer token ("" means no header).
func soakMissing(rng *rand.Rand) string {
	return []string{"", "", "Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Token abc"}[rng.IntN(6)]
}

// soakPieces splits s into runs of base64url characters of at least min
// bytes.
func soakPieces(s string, min int) []string {
	var pieces []string
	start := -1
	for i := 0; i <= len(s); i++ {
		in := i < len(s) && strings.IndexByte(soakB64URL, s[i]) >= 0
		switch {
		case in && start < 0:
			start = i
		case !in && start >= 0:
			if i-start >= min {
				pieces = append(pieces, s[start:i])
			}
			start = -1
		}
	}
	return pieces
}

// soakLeaks returns the log pieces that are a piece of a token sent, or a
// prefix of one of at least 24 bytes (a clipped token).
func soakLeaks(log string, tokens []string) []string {
	seen := map[string]bool{}
	for _, tok := range tokens {
		for _, p := range soakPieces(tok, 16) {
			seen[p] = true
		}
	}
	sorted := make([]string, 0, len(seen))
	for p := range seen {
		sorted = append(sorted, p)
	}
	sort.Strings(sorted)
	var leaks []string
	for _, p := range soakPieces(log, 16) {
		if seen[p] {
			leaks = append(leaks, p)
			continue
		}
		if len(p) >= 24 {
			if i := sort.SearchStrings(sorted, p); i < len(sorted) && strings.HasPrefix(sorted[i], p) {
				leaks = append(leaks, p)
			}
		}
	}
	return leaks
}
