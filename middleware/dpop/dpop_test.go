package dpop_test

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware/dpop"
)

var start = time.Unix(1_800_000_000, 0)

// clock is a settable test clock.
type clock struct{ t atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.t.Store(start.UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *clock) Advance(d time.Duration) { c.t.Add(int64(d)) }

var key = jwkstest.NewKey(jwks.ES256)

const token = "the-access-token"

func request(proofs ...string) dpop.Request {
	u, _ := url.Parse("https://API.test:443/data?page=2")
	return dpop.Request{Proofs: proofs, Method: "GET", URL: u, AccessToken: token, Thumbprint: key.Thumbprint()}
}

func proof(mod func(p *jwkstest.DPoPProof)) string {
	p := jwkstest.DPoPProof{Method: "GET", URL: "https://api.test/data", AccessToken: token, IssuedAt: start}
	if mod != nil {
		mod(&p)
	}
	return key.DPoPProof(p)
}

func newVerifier(t *testing.T, c *clock, cfg dpop.Config) *dpop.Verifier {
	t.Helper()
	cfg.Now = c.Now
	v, err := dpop.New(cfg)
	require.NoError(t, err)
	return v
}

func TestVerifyAcceptsAValidProof(t *testing.T) {
	for _, alg := range jwks.DefaultAlgorithms() {
		t.Run(alg, func(t *testing.T) {
			k := jwkstest.NewKey(alg)
			v := newVerifier(t, newClock(), dpop.Config{})
			req := request(k.DPoPProof(jwkstest.DPoPProof{Method: "GET", URL: "https://api.test/data", AccessToken: token, IssuedAt: start}))
			req.Thumbprint = k.Thumbprint()
			p, err := v.Verify(context.Background(), req)
			require.NoError(t, err)
			assert.Equal(t, k.Thumbprint(), p.Thumbprint)
		})
	}
}

func TestVerifyRefuses(t *testing.T) {
	other := jwkstest.NewKey(jwks.ES256)
	tests := []struct {
		name     string
		req      func() dpop.Request
		sentinel error
	}{
		{"no proof", func() dpop.Request { return request() }, dpop.ErrMissing},
		{"two proofs", func() dpop.Request { return request(proof(nil), proof(nil)) }, dpop.ErrMissing},
		{"malformed proof", func() dpop.Request { return request("not.a.proof") }, jwks.ErrProof},
		{"wrong typ", func() dpop.Request {
			return request(proof(func(p *jwkstest.DPoPProof) { p.Header = map[string]any{"typ": "JWT"} }))
		}, jwks.ErrProof},
		{"htm another method", func() dpop.Request { return request(proof(func(p *jwkstest.DPoPProof) { p.Method = "POST" })) }, dpop.ErrMethod},
		{"htm in lower case", func() dpop.Request { return request(proof(func(p *jwkstest.DPoPProof) { p.Method = "get" })) }, dpop.ErrMethod},
		{"htu another path", func() dpop.Request {
			return request(proof(func(p *jwkstest.DPoPProof) { p.URL = "https://api.test/other" }))
		}, dpop.ErrURI},
		{"htu another host", func() dpop.Request {
			return request(proof(func(p *jwkstest.DPoPProof) { p.URL = "https://evil.test/data" }))
		}, dpop.ErrURI},
		{"htu another scheme", func() dpop.Request {
			return request(proof(func(p *jwkstest.DPoPProof) { p.URL = "http://api.test/data" }))
		}, dpop.ErrURI},
		{"htu another port", func() dpop.Request {
			return request(proof(func(p *jwkstest.DPoPProof) { p.URL = "https://api.test:8443/data" }))
		}, dpop.ErrURI},
		{"htu relative", func() dpop.Request { return request(proof(func(p *jwkstest.DPoPProof) { p.URL = "/data" })) }, dpop.ErrURI},
		{"htu with userinfo", func() dpop.Request {
			return request(proof(func(p *jwkstest.DPoPProof) { p.URL = "https://user@api.test/data" }))
		}, dpop.ErrURI},
		{"request URL without host", func() dpop.Request {
			r := request(proof(nil))
			r.URL = &url.URL{Path: "/data"}
			return r
		}, dpop.ErrURI},
		{"iat too old", func() dpop.Request {
			return request(proof(func(p *jwkstest.DPoPProof) { p.IssuedAt = start.Add(-61 * time.Second) }))
		}, dpop.ErrIssuedAt},
		{"iat too new", func() dpop.Request {
			return request(proof(func(p *jwkstest.DPoPProof) { p.IssuedAt = start.Add(61 * time.Second) }))
		}, dpop.ErrIssuedAt},
		{"ath missing", func() dpop.Request { return request(proof(func(p *jwkstest.DPoPProof) { p.AccessToken = "" })) }, dpop.ErrTokenHash},
		{"ath of another token", func() dpop.Request {
			return request(proof(func(p *jwkstest.DPoPProof) { p.AccessToken = "another-token" }))
		}, dpop.ErrTokenHash},
		{"key not the token's", func() dpop.Request {
			r := request(proof(nil))
			r.Thumbprint = other.Thumbprint()
			return r
		}, dpop.ErrKeyMismatch},
		{"token bound to no key", func() dpop.Request {
			r := request(proof(nil))
			r.Thumbprint = ""
			return r
		}, dpop.ErrKeyMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, newClock(), dpop.Config{})
			p, err := v.Verify(context.Background(), tt.req())
			assert.Nil(t, p)
			require.ErrorIs(t, err, tt.sentinel)
			var r *aegis.Refusal
			require.ErrorAs(t, err, &r)
			assert.Equal(t, aegis.ReasonInvalidDPoPProof, r.Reason)
			assert.NotContains(t, err.Error(), token)
		})
	}
}

func TestVerifyNormalizesHTU(t *testing.T) {
	for _, tt := range []struct{ htu, request string }{
		{"https://api.test/data", "https://API.test:443/data?page=2"},
		{"HTTPS://Api.Test/data?x=1#frag", "https://api.test/data"},
		{"http://api.test:80/data", "http://api.test/data"},
		{"https://api.test", "https://api.test/"},
		{"https://api.test/%7Euser/a%2fb", "https://api.test/~user/a%2Fb"},
		{"https://[::1]:8443/data", "https://[::1]:8443/data"},
	} {
		t.Run(tt.htu, func(t *testing.T) {
			v := newVerifier(t, newClock(), dpop.Config{})
			req := request(proof(func(p *jwkstest.DPoPProof) { p.URL = tt.htu }))
			req.URL, _ = url.Parse(tt.request)
			_, err := v.Verify(context.Background(), req)
			assert.NoError(t, err)
		})
	}
}

func TestVerifyIATWindowAndLeeway(t *testing.T) {
	tests := []struct {
		name   string
		cfg    dpop.Config
		offset time.Duration
		ok     bool
	}{
		{"default window, 60 s old", dpop.Config{}, -60 * time.Second, true},
		{"default window, 60 s ahead", dpop.Config{}, 60 * time.Second, true},
		{"window 10 s, 11 s old", dpop.Config{Window: 10 * time.Second}, -11 * time.Second, false},
		{"window 10 s with leeway 5 s, 14 s old", dpop.Config{Window: 10 * time.Second, Leeway: 5 * time.Second}, -14 * time.Second, true},
		{"window 10 s with leeway 5 s, 16 s ahead", dpop.Config{Window: 10 * time.Second, Leeway: 5 * time.Second}, 16 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, newClock(), tt.cfg)
			_, err := v.Verify(context.Background(), request(proof(func(p *jwkstest.DPoPProof) { p.IssuedAt = start.Add(tt.offset) })))
			if tt.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, dpop.ErrIssuedAt)
			}
		})
	}
}

func TestVerifyRefusesAReplay(t *testing.T) {
	c := newClock()
	v := newVerifier(t, c, dpop.Config{})
	pr := proof(nil)
	_, err := v.Verify(context.Background(), request(pr))
	require.NoError(t, err)
	c.Advance(30 * time.Second)
	_, err = v.Verify(context.Background(), request(pr))
	assert.ErrorIs(t, err, dpop.ErrReplayed)
	// Once out of the window, the proof is refused for its iat.
	c.Advance(31 * time.Second)
	_, err = v.Verify(context.Background(), request(pr))
	assert.ErrorIs(t, err, dpop.ErrIssuedAt)
}

func TestVerifyRecordsOnlyAcceptedProofs(t *testing.T) {
	v := newVerifier(t, newClock(), dpop.Config{})
	pr := proof(func(p *jwkstest.DPoPProof) { p.ID = "one" })
	bad := request(pr)
	bad.AccessToken = "another"
	_, err := v.Verify(context.Background(), bad)
	require.ErrorIs(t, err, dpop.ErrTokenHash)
	_, err = v.Verify(context.Background(), request(pr))
	assert.NoError(t, err, "a refused proof does not use up its jti")
}

func TestVerifyConcurrentReplaysAdmitOne(t *testing.T) {
	v := newVerifier(t, newClock(), dpop.Config{})
	pr := proof(nil)
	var wg sync.WaitGroup
	var ok atomic.Int32
	for range 16 {
		wg.Go(func() {
			if _, err := v.Verify(context.Background(), request(pr)); err == nil {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int32(1), ok.Load())
}

type failingStore struct{}

func (failingStore) Seen(context.Context, string, time.Time) (bool, error) {
	return false, errors.New("down")
}

func TestVerifyStoreFailureIsUnavailable(t *testing.T) {
	v := newVerifier(t, newClock(), dpop.Config{Replay: failingStore{}})
	_, err := v.Verify(context.Background(), request(proof(nil)))
	require.ErrorIs(t, err, dpop.ErrStoreUnavailable)
	var r *aegis.Refusal
	require.ErrorAs(t, err, &r)
	assert.Equal(t, aegis.ReasonReplayStoreUnavailable, r.Reason)
	assert.Equal(t, aegis.ClassUnavailable, r.Class)
}

func TestVerifyNonces(t *testing.T) {
	c := newClock()
	v := newVerifier(t, c, dpop.Config{Nonce: &dpop.NonceConfig{Interval: time.Minute}})
	n := v.Nonce()
	require.NotEmpty(t, n)

	_, err := v.Verify(context.Background(), request(proof(nil)))
	require.ErrorIs(t, err, dpop.ErrNonce)
	var r *aegis.Refusal
	require.ErrorAs(t, err, &r)
	assert.Equal(t, aegis.ReasonUseDPoPNonce, r.Reason)

	_, err = v.Verify(context.Background(), request(proof(func(p *jwkstest.DPoPProof) { p.Nonce = n })))
	require.NoError(t, err)

	c.Advance(time.Minute) // the previous nonce is still accepted
	assert.NotEqual(t, n, v.Nonce(), "the nonce rotates")
	_, err = v.Verify(context.Background(), request(proof(func(p *jwkstest.DPoPProof) { p.Nonce = n; p.IssuedAt = c.Now() })))
	require.NoError(t, err)

	c.Advance(time.Minute) // two intervals on, it is stale
	_, err = v.Verify(context.Background(), request(proof(func(p *jwkstest.DPoPProof) { p.Nonce = n; p.IssuedAt = c.Now() })))
	assert.ErrorIs(t, err, dpop.ErrNonce)
}

func TestNoncesAreSharedBySecret(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	c := newClock()
	a := newVerifier(t, c, dpop.Config{Nonce: &dpop.NonceConfig{Secret: secret}})
	b := newVerifier(t, c, dpop.Config{Nonce: &dpop.NonceConfig{Secret: secret}})
	other := newVerifier(t, c, dpop.Config{Nonce: &dpop.NonceConfig{}})
	assert.Equal(t, a.Nonce(), b.Nonce())
	assert.NotEqual(t, a.Nonce(), other.Nonce())
}

func TestNewRefusesBadConfig(t *testing.T) {
	for name, cfg := range map[string]dpop.Config{
		"HMAC algorithm":     {Algorithms: []string{"HS256"}},
		"none":               {Algorithms: []string{"none"}},
		"empty algorithms":   {Algorithms: []string{}},
		"negative window":    {Window: -time.Second},
		"negative leeway":    {Leeway: -time.Second},
		"negative length":    {MaxProofLength: -1},
		"store and entries":  {Replay: failingStore{}, MaxEntries: 5},
		"short nonce secret": {Nonce: &dpop.NonceConfig{Secret: []byte("short")}},
	} {
		t.Run(name, func(t *testing.T) {
			v, err := dpop.New(cfg)
			assert.Error(t, err)
			assert.Nil(t, v)
		})
	}
}

func TestParsePolicy(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want dpop.Policy
		ok   bool
	}{{"allow", dpop.Allow, true}, {"require", dpop.Require, true}, {"off", dpop.Off, true}, {"", "", false}, {"Allow", "", false}} {
		t.Run(tt.in, func(t *testing.T) {
			p, err := dpop.ParsePolicy(tt.in)
			if tt.ok {
				require.NoError(t, err)
				assert.Equal(t, tt.want, p)
			} else {
				assert.Error(t, err)
			}
		})
	}
}

func TestMemoryStore(t *testing.T) {
	c := newClock()
	s, err := dpop.NewMemoryStore(dpop.MemoryStoreConfig{MaxEntries: 10, Now: c.Now})
	require.NoError(t, err)
	seen, err := s.Seen(context.Background(), "k", c.Now().Add(time.Minute))
	require.NoError(t, err)
	assert.False(t, seen)
	seen, err = s.Seen(context.Background(), "k", c.Now().Add(time.Minute))
	require.NoError(t, err)
	assert.True(t, seen)
	c.Advance(2 * time.Minute)
	seen, err = s.Seen(context.Background(), "k", c.Now().Add(time.Minute))
	require.NoError(t, err)
	assert.False(t, seen, "an expired key is forgotten")
	assert.Equal(t, 1, s.Len())
}

// TestNormalizeURI checks htu's comparison form (RFC 9449 §4.3 check 9:
// RFC 3986 §6.2.2 syntax-based and §6.2.3 scheme-based normalization).
func TestNormalizeURI(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"https://API.Example.COM/data", "https://api.example.com/data", true},
		{"HTTPS://api.example.com:443/data?x=1#f", "https://api.example.com/data", true},
		{"http://api.example.com:80", "http://api.example.com/", true},
		{"http://api.example.com:8080/a", "http://api.example.com:8080/a", true},
		{"https://[::1]:8443/a", "https://[::1]:8443/a", true},
		{"https://api.example.com/%7euser/%2fx%2Fy", "https://api.example.com/~user/%2Fx%2Fy", true},
		{"https://api.example.com/a/./b/../c", "https://api.example.com/a/c", true},
		{"https://api.example.com/a/b/..", "https://api.example.com/a/", true},
		{"https://api.example.com/a/.", "https://api.example.com/a/", true},
		{"https://api.example.com/../../a", "https://api.example.com/a", true},
		{"https://api.example.com/a/%2E%2E/b", "https://api.example.com/b", true},
		{"https://api.example.com/a/.b/..c/", "https://api.example.com/a/.b/..c/", true},
		{"https://api.example.com/a%zz", "", false},
		{"ftp://api.example.com/a", "", false},
		{"/data", "", false},
		{"https:opaque", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			u, err := url.Parse(tt.in)
			if err != nil {
				assert.False(t, tt.ok)
				return
			}
			got, ok := dpop.NormalizeURI(u)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}
