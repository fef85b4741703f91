package introspect_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/olympus/aegis"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/introspect"
	"github.com/olympus/aegis/jwks/jwkstest"
)

// boundsEndpoint answers every introspection {"active":false} and records
// how many calls were under way at once.
type boundsEndpoint struct {
	inFlight, peak, calls atomic.Int64
	badRequests           atomic.Int64
}

func (b *boundsEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := b.inFlight.Add(1)
	defer b.inFlight.Add(-1)
	for p := b.peak.Load(); n > p && !b.peak.CompareAndSwap(p, n); p = b.peak.Load() {
	}
	b.calls.Add(1)
	if r.Method != http.MethodPost || r.ParseForm() != nil || !strings.HasPrefix(r.PostForm.Get("token"), "ory_at_") {
		b.badRequests.Add(1)
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"active":false}`)
}

// handlerTransport serves each request with h in process: the client's
// semaphore, request building and answer reading are all exercised, without
// the cost of 10,000 loopback connections under the race detector.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

func randomOpaqueTokens(t *testing.T, n int) []string {
	t.Helper()
	tokens := make([]string, n)
	buf := make([]byte, 48)
	for i := range tokens {
		_, err := rand.Read(buf)
		require.NoError(t, err)
		tokens[i] = "ory_at_" + base64.RawURLEncoding.EncodeToString(buf[:32]) + "." + base64.RawURLEncoding.EncodeToString(buf[32:])
	}
	return tokens
}

// introspectAll introspects every token from workers goroutines and
// returns how many were not refused with ErrInactive, and one such error.
func introspectAll(c *introspect.Client, tokens []string, workers int) (int64, error) {
	var wrong atomic.Int64
	var firstWrong atomic.Value
	next := make(chan string)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for token := range next {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				res, err := c.Introspect(ctx, token)
				cancel()
				if res != nil || !errors.Is(err, introspect.ErrInactive) {
					wrong.Add(1)
					if err == nil {
						err = errors.New("accepted")
					}
					firstWrong.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	for _, token := range tokens {
		next <- token
	}
	close(next)
	wg.Wait()
	err, _ := firstWrong.Load().(error)
	return wrong.Load(), err
}

// floodCase is one flood of random opaque tokens.
type floodCase struct {
	name   string
	tokens int
	// loopback sends the calls over HTTP to the jwkstest issuer's endpoint;
	// otherwise they are served in process (10,000 loopback round trips
	// take too long under the race detector).
	loopback   bool
	maxEntries int // 0: the default
	// The repeated flood, within NegativeTTL, makes between minRepeatCalls
	// and maxRepeatCalls calls.
	minRepeatCalls, maxRepeatCalls int64
}

const (
	floodWorkers       = 64
	floodMaxConcurrent = 4
)

// runFlood sends tc.tokens random opaque tokens from 64 goroutines: each
// is refused as inactive, never with more than MaxConcurrent calls under
// way; the caches stay within MaxEntries; the same tokens again within
// NegativeTTL make only the calls the cache cannot spare.
func runFlood(t *testing.T, tc floodCase) {
	flood := randomOpaqueTokens(t, tc.tokens)
	clk := newClock()
	iss := jwkstest.NewIssuer(t, jwkstest.Config{Now: clk.Now})
	endpoint := &boundsEndpoint{}
	cfg := introspect.Config{
		Endpoint: iss.IntrospectionURL(), Issuer: iss.URL, Audience: iss.Audience,
		MaxConcurrent: floodMaxConcurrent, Now: clk.Now,
		Cache: introspect.CacheConfig{MaxEntries: tc.maxEntries},
	}
	calls := endpoint.calls.Load
	if tc.loopback {
		iss.ServeIntrospectionWith(endpoint)
		calls = iss.IntrospectionCalls
	} else {
		cfg.HTTPClient = &http.Client{Transport: handlerTransport{endpoint}}
	}
	client, err := introspect.New(cfg)
	require.NoError(t, err)
	maxEntries := tc.maxEntries
	if maxEntries == 0 {
		maxEntries = introspect.DefaultMaxEntries
	}

	start := time.Now()
	wrong, firstErr := introspectAll(client, flood, floodWorkers)
	t.Logf("%d tokens in %v; peak %d calls under way", tc.tokens, time.Since(start), endpoint.peak.Load())
	require.Zero(t, wrong, "every random token must be refused as inactive; first other outcome: %v", firstErr)
	assert.LessOrEqual(t, endpoint.peak.Load(), int64(floodMaxConcurrent), "calls under way at once")
	assert.Positive(t, endpoint.peak.Load())
	assert.Equal(t, int64(tc.tokens), calls(), "one call per distinct token")
	assert.Equal(t, int64(tc.tokens), introspect.Calls(client))
	assert.Zero(t, endpoint.badRequests.Load(), "each call a POST carrying its token")
	assert.LessOrEqual(t, introspect.CachedEntries(client), maxEntries, "refusals alone stay within MaxEntries")
	assert.Equal(t, min(tc.tokens, maxEntries), introspect.CachedEntries(client))

	clk.Advance(introspect.DefaultNegativeTTL / 2) // still within NegativeTTL
	before := calls()
	wrong, firstErr = introspectAll(client, flood, floodWorkers)
	require.Zero(t, wrong, "first other outcome: %v", firstErr)
	repeat := calls() - before
	assert.GreaterOrEqual(t, repeat, tc.minRepeatCalls, "calls made by the repeated flood")
	assert.LessOrEqual(t, repeat, tc.maxRepeatCalls, "calls made by the repeated flood")
	assert.LessOrEqual(t, endpoint.peak.Load(), int64(floodMaxConcurrent))
	assert.LessOrEqual(t, introspect.CachedEntries(client), maxEntries)

	// Past NegativeTTL the refusal is asked for again.
	clk.Advance(introspect.DefaultNegativeTTL)
	before = calls()
	_, err = client.Introspect(context.Background(), flood[0])
	require.ErrorIs(t, err, introspect.ErrInactive)
	assert.Equal(t, before+1, calls())
}

// TestRandomOpaqueTokenFlood: 10,000 random opaque tokens against the
// default cache bound; the repeat is served from the negative cache.
func TestRandomOpaqueTokenFlood(t *testing.T) {
	for _, tc := range []floodCase{
		{name: "10,000 tokens in process", tokens: 10_000},
		{name: "1,000 tokens over loopback HTTP", tokens: 1_000, loopback: true},
	} {
		t.Run(tc.name, func(t *testing.T) { runFlood(t, tc) })
	}
}

// TestRandomOpaqueTokenFloodOverCacheBound: 10,000 random opaque tokens
// against a cache of 1,000: the cache stays at its bound, so the repeat
// calls again for (almost) every token.
func TestRandomOpaqueTokenFloodOverCacheBound(t *testing.T) {
	runFlood(t, floodCase{tokens: 10_000, maxEntries: 1_000, minRepeatCalls: 9_000, maxRepeatCalls: 10_000})
}

// TestMalformedTokensMakeNoCall: whatever the load, a token failing the
// RFC 6750 syntax check or over MaxTokenLength is refused without a call.
func TestMalformedTokensMakeNoCall(t *testing.T) {
	iss := jwkstest.NewIssuer(t, jwkstest.Config{})
	endpoint := &boundsEndpoint{}
	iss.ServeIntrospectionWith(endpoint)
	client, err := introspect.New(introspect.Config{
		Endpoint: iss.IntrospectionURL(), Issuer: iss.URL, Audience: iss.Audience, MaxConcurrent: 4,
	})
	require.NoError(t, err)

	valid := "ory_at_" + strings.Repeat("a", 43) + "." + strings.Repeat("b", 43)
	cases := []struct{ name, token string }{
		{"empty", ""},
		{"space inside", "ory_at_abc def.ghi"},
		{"leading space", " " + valid},
		{"trailing space", valid + " "},
		{"tab", "ory_at_abc\tdef"},
		{"newline", "ory_at_abc\ndef"},
		{"CRLF injection", "ory_at_abc\r\nX-Evil: 1"},
		{"double quotes", `"` + valid + `"`},
		{"single quote", "ory_at_abc'def"},
		{"backslash", `ory_at_abc\def`},
		{"comma", "ory_at_abc,def"},
		{"padding in the middle", "ory_at_abc=def"},
		{"only padding", "==="},
		{"percent-encoded", "ory_at_abc%2Bdef"},
		{"NUL", "ory_at_abc\x00def"},
		{"non-ASCII", "ory_at_abcdéf"},
		{"scheme included", "Bearer " + valid},
		{"one over MaxTokenLength", "ory_at_" + strings.Repeat("a", aegis.DefaultMaxTokenLength-6)},
		{"1 MiB", strings.Repeat("a", 1<<20)},
	}
	var wg sync.WaitGroup
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.Introspect(context.Background(), tc.token)
			require.ErrorIs(t, err, introspect.ErrMalformed)
			assert.NotContains(t, err.Error(), "ory_at_", "the token never appears in an error")
			// The same again from many goroutines at once.
			for range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := client.Introspect(context.Background(), tc.token)
					assert.ErrorIs(t, err, introspect.ErrMalformed)
				}()
			}
		})
	}
	wg.Wait()
	assert.Zero(t, endpoint.calls.Load(), "no call for a malformed token")
	assert.Zero(t, introspect.Calls(client))
	assert.Zero(t, introspect.CachedEntries(client), "malformed tokens are not cached either")

	// The bound is inclusive: a token of exactly MaxTokenLength is asked.
	_, err = client.Introspect(context.Background(), "ory_at_"+strings.Repeat("a", aegis.DefaultMaxTokenLength-7))
	require.ErrorIs(t, err, introspect.ErrInactive)
	assert.Equal(t, int64(1), endpoint.calls.Load())
}
