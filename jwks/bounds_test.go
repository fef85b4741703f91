package jwks_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/olympus/aegis/internal/testutil"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
)

const (
	boundsFetchTimeout = 300 * time.Millisecond
	boundsMaxBytes     = 1 << 20
	// boundsHugeBody is what a hostile key set endpoint tries to send.
	boundsHugeBody = 50 << 20
	// boundsAllocBudget bounds what one refused fetch may allocate, in the
	// client and the test server together: a few times MaxResponseBytes,
	// nowhere near boundsHugeBody.
	boundsAllocBudget = 16 << 20
)

// boundsEnv is a Remote that fetched a good key set once, from an issuer
// whose key set endpoint can then be replaced by a hostile one.
type boundsEnv struct {
	iss    *jwkstest.Issuer
	good   *jwkstest.Key
	clk    *testutil.Clock
	remote *jwks.Remote
	logs   *testutil.Buffer
}

func newBoundsEnv(t *testing.T, cfg jwks.Config) *boundsEnv {
	t.Helper()
	e := &boundsEnv{clk: testutil.NewClock(t0), logs: &testutil.Buffer{}}
	e.iss = jwkstest.NewIssuer(t, jwkstest.Config{Algorithm: "ES256", Now: e.clk.Now})
	e.good = e.iss.CurrentKey()
	cfg.URL = e.iss.JWKSURL()
	cfg.Now = e.clk.Now
	cfg.Logger = slog.New(slog.NewTextHandler(e.logs, nil))
	if cfg.FetchTimeout == 0 {
		cfg.FetchTimeout = boundsFetchTimeout
	}
	if cfg.MaxResponseBytes == 0 {
		cfg.MaxResponseBytes = boundsMaxBytes
	}
	r, err := jwks.NewRemote(cfg)
	require.NoError(t, err)
	e.remote = r
	keys, err := r.LookupKeys(context.Background(), e.good.ID)
	require.NoError(t, err)
	require.Len(t, keys, 1, "the first, good fetch")
	return e
}

// requireGoodKeyKept checks that the last good key still serves.
func (e *boundsEnv) requireGoodKeyKept(t *testing.T) {
	t.Helper()
	keys, err := e.remote.LookupKeys(context.Background(), e.good.ID)
	require.NoError(t, err)
	require.Len(t, keys, 1, "the last good key must stay in use")
	assert.Equal(t, e.good.ID, keys[0].ID)
}

// streamHandler answers 200 and writes chunks from next until next returns
// nil, a write fails (the client hung up) or limit bytes are sent. It
// records what it sent and closes done when it returns.
func streamHandler(limit int64, sent *atomic.Int64, done chan<- struct{}, next func() []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		for sent.Load() < limit && r.Context().Err() == nil {
			chunk := next()
			if chunk == nil {
				return
			}
			n, err := w.Write(chunk)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
}

// boundsJWKTemplate splits key's JWK around its kid so that documents of
// many keys can be written without building each JWK.
func boundsJWKTemplate(t *testing.T, key *jwkstest.Key) (before, after string) {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(key.JWK(), &m))
	m["kid"] = "\x00KID\x00"
	b, err := json.Marshal(m)
	require.NoError(t, err)
	before, after, ok := strings.Cut(string(b), `"\u0000KID\u0000"`)
	require.True(t, ok, "kid placeholder in %s", b)
	return before, after
}

func waitClosed(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not end", what)
	}
}

// measureFetch runs Refresh and returns how long it took, how many bytes
// were allocated meanwhile (by the whole process) and its error.
func measureFetch(r *jwks.Remote) (time.Duration, uint64, error) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := r.Refresh(ctx)
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	return took, after.TotalAlloc - before.TotalAlloc, err
}

// TestRemoteHostileKeySetAnswers: after a good fetch, each hostile answer
// is refused (or bounded), costs bounded memory and time, and leaves the
// last good key in use.
func TestRemoteHostileKeySetAnswers(t *testing.T) {
	filler := []byte(strings.Repeat(" ", 32<<10))

	t.Run("50 MB body is cut at MaxResponseBytes", func(t *testing.T) {
		e := newBoundsEnv(t, jwks.Config{})
		var sent atomic.Int64
		done := make(chan struct{})
		first := true
		e.iss.ServeJWKSWith(streamHandler(boundsHugeBody, &sent, done, func() []byte {
			if first {
				first = false
				return []byte(`{"keys":[],"pad":"`)
			}
			return filler
		}))

		took, allocated, err := measureFetch(e.remote)
		require.Error(t, err)
		assert.ErrorContains(t, err, "body over "+strconv.Itoa(boundsMaxBytes)+" bytes")
		waitClosed(t, done, "the streaming handler")
		t.Logf("refused after %v; server sent %d bytes; %d bytes allocated", took, sent.Load(), allocated)
		assert.Less(t, allocated, uint64(boundsAllocBudget), "memory must stay near MaxResponseBytes")
		assert.Less(t, sent.Load(), int64(boundsHugeBody), "the client must hang up, not read everything")
		e.requireGoodKeyKept(t)
	})

	t.Run("100,000 keys streamed are refused by size", func(t *testing.T) {
		e := newBoundsEnv(t, jwks.Config{})
		before, after := boundsJWKTemplate(t, jwkstest.NewKey("ES256"))
		var sent atomic.Int64
		done := make(chan struct{})
		i := -1
		buf := make([]byte, 0, 64<<10)
		e.iss.ServeJWKSWith(streamHandler(boundsHugeBody, &sent, done, func() []byte {
			buf = buf[:0]
			if i < 0 {
				buf = append(buf, `{"keys":[`...)
				i = 0
			}
			for ; i < 100_000 && len(buf) < 32<<10; i++ {
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = append(buf, before...)
				buf = strconv.AppendQuote(buf, "k"+strconv.Itoa(i))
				buf = append(buf, after...)
			}
			if i == 100_000 {
				i++
				buf = append(buf, "]}"...)
			}
			if len(buf) == 0 {
				return nil
			}
			return buf
		}))

		took, allocated, err := measureFetch(e.remote)
		require.Error(t, err)
		assert.ErrorContains(t, err, "body over")
		waitClosed(t, done, "the streaming handler")
		t.Logf("refused after %v; server sent %d bytes; %d bytes allocated", took, sent.Load(), allocated)
		assert.Less(t, allocated, uint64(boundsAllocBudget))
		e.requireGoodKeyKept(t)
		assert.Len(t, e.remote.Keys(), 1)
	})

	t.Run("100,000 keys within the size cap: at most 100 are read", func(t *testing.T) {
		e := newBoundsEnv(t, jwks.Config{MaxResponseBytes: 2 << 20})
		before, after := boundsJWKTemplate(t, jwkstest.NewKey("ES256"))
		var doc strings.Builder
		doc.WriteString(`{"keys":[`)
		doc.Write(e.good.JWK())
		for i := 1; i < 100_000; i++ {
			doc.WriteByte(',')
			if i < 200 {
				doc.WriteString(before + strconv.Quote("k"+strconv.Itoa(i)) + after)
			} else {
				doc.WriteString(`{}`)
			}
		}
		doc.WriteString(`]}`)
		body := doc.String()
		require.Less(t, len(body), 2<<20)
		e.iss.ServeJWKSWith(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(body))
		}))

		took, allocated, err := measureFetch(e.remote)
		require.NoError(t, err, "a key set with too many keys is read up to the cap")
		t.Logf("read %d bytes in %v; %d bytes allocated", len(body), took, allocated)
		// ParseSet splits the whole "keys" array before it stops at 100
		// (about 45 bytes allocated per entry here), but parsing 100,000
		// keys would cost hundreds of MB: this proves they are not parsed.
		assert.Less(t, allocated, uint64(2*boundsAllocBudget))
		keys := e.remote.Keys()
		assert.Len(t, keys, 100, "ParseSet keeps at most 100 keys")
		assert.True(t, e.remote.HasKey("k99"))
		assert.False(t, e.remote.HasKey("k100"), "keys past the cap are not read")
		assert.Contains(t, e.logs.String(), "more than 100 keys")
		e.requireGoodKeyKept(t)
	})

	t.Run("one byte every 100 ms is ended by FetchTimeout", func(t *testing.T) {
		e := newBoundsEnv(t, jwks.Config{})
		done := make(chan struct{})
		e.iss.ServeJWKSWith(boundsTrickle(done))

		took, _, err := measureFetch(e.remote)
		require.Error(t, err)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.GreaterOrEqual(t, took, boundsFetchTimeout-50*time.Millisecond)
		assert.Less(t, took, boundsFetchTimeout+time.Second, "FetchTimeout bounds the whole fetch, body included")
		waitClosed(t, done, "the trickling handler")
		e.requireGoodKeyKept(t)
	})

	for _, tc := range []struct {
		name   string
		status int
		host   func(u string) string
	}{
		{name: "302 to another port", status: http.StatusFound, host: func(u string) string { return u }},
		{name: "307 to another host name", status: http.StatusTemporaryRedirect, host: func(u string) string {
			return strings.Replace(u, "127.0.0.1", "localhost", 1)
		}},
		{name: "308 to another host name", status: http.StatusPermanentRedirect, host: func(u string) string {
			return strings.Replace(u, "127.0.0.1", "localhost", 1)
		}},
	} {
		t.Run("redirect: "+tc.name, func(t *testing.T) {
			e := newBoundsEnv(t, jwks.Config{})
			var otherHits atomic.Int64
			other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				otherHits.Add(1)
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"keys":[` + string(jwkstest.NewKey("ES256").JWK()) + `]}`))
			}))
			t.Cleanup(other.Close)
			target := tc.host(other.URL) + "/.well-known/jwks.json"
			require.NotEqual(t, e.iss.URL, tc.host(other.URL))
			e.iss.ServeJWKSWith(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target, tc.status)
			}))

			_, _, err := measureFetch(e.remote)
			require.Error(t, err)
			assert.ErrorContains(t, err, "redirect to another origin refused")
			assert.Zero(t, otherHits.Load(), "the other host must never be asked")
			e.requireGoodKeyKept(t)
			assert.Len(t, e.remote.Keys(), 1)
		})
	}

	deep := `{"keys":` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + `}`
	for _, tc := range []struct {
		name string
		ct   string
		body string
	}{
		{name: "not JSON", body: `not json`},
		{name: "HTML", ct: "text/html", body: `<html><body>Login</body></html>`},
		{name: "truncated", body: `{"keys":[`},
		{name: "empty body", body: ``},
		{name: "JSON array", body: `[]`},
		{name: "JSON string", body: `"keys"`},
		{name: "JSON null", body: `null`},
		{name: "no keys member", body: `{}`},
		{name: "keys null", body: `{"keys":null}`},
		{name: "keys an object", body: `{"keys":{}}`},
		{name: "keys a string", body: `{"keys":"[]"}`},
		{name: "keys empty", body: `{"keys":[]}`},
		{name: "keys of the wrong shape", body: `{"keys":[1,"a",null,[],{"kty":7}]}`},
		{name: "duplicate keys member", body: `{"keys":[],"keys":[` + "%s" + `]}`},
		{name: "trailing garbage", body: `{"keys":[` + "%s" + `]}{"keys":[]}`},
		{name: "deeply nested", body: deep},
	} {
		t.Run("bad document: "+tc.name, func(t *testing.T) {
			e := newBoundsEnv(t, jwks.Config{})
			body := strings.ReplaceAll(tc.body, "%s", string(jwkstest.NewKey("ES256").JWK()))
			e.iss.ServeJWKSWith(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ct := tc.ct
				if ct == "" {
					ct = "application/json"
				}
				w.Header().Set("Content-Type", ct)
				_, _ = w.Write([]byte(body))
			}))

			took, allocated, err := measureFetch(e.remote)
			require.Error(t, err)
			assert.Less(t, took, 2*time.Second)
			assert.Less(t, allocated, uint64(boundsAllocBudget))
			e.requireGoodKeyKept(t)
			assert.Len(t, e.remote.Keys(), 1)
		})
	}
}

// boundsTrickle answers 200 and sends one byte of a key set every 100 ms
// until the client hangs up (or 10 s pass); it closes done when it returns.
func boundsTrickle(done chan<- struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		body := `{"keys":[` + strings.Repeat(" ", 100) + `]}`
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < len(body); i++ {
			if _, err := w.Write([]byte{body[i]}); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-tick.C:
			case <-r.Context().Done():
				return
			}
		}
	})
}

// TestRemoteBackgroundRefreshEndsWithItsFetch: a refresh started in the
// background against a server that never finishes its answer ends at
// FetchTimeout, goroutine and all, and the cached keys keep serving
// meanwhile without waiting for it.
func TestRemoteBackgroundRefreshEndsWithItsFetch(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	func() {
		e := newBoundsEnv(t, jwks.Config{RefreshInterval: time.Minute})
		defer e.iss.Close()
		done := make(chan struct{})
		e.iss.ServeJWKSWith(boundsTrickle(done))
		fetches := e.iss.JWKSFetches()

		e.clk.Advance(2 * time.Minute) // the keys are due for a refresh
		start := time.Now()
		e.requireGoodKeyKept(t)
		assert.Less(t, time.Since(start), boundsFetchTimeout, "a due refresh runs in the background, not in the caller")

		waitClosed(t, done, "the background refresh's request")
		assert.Equal(t, fetches+1, e.iss.JWKSFetches(), "one background refresh")
		require.Eventually(t, func() bool {
			return strings.Contains(e.logs.String(), "refresh failed, keeping the last good keys")
		}, 5*time.Second, 10*time.Millisecond)
		e.requireGoodKeyKept(t)
		assert.Equal(t, fetches+1, e.iss.JWKSFetches(), "a failed refresh waits MinRefreshInterval before the next")
	}()
}
