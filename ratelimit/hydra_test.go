package ratelimit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
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

	"github.com/olympus/aegis/internal/testutil"
	"github.com/olympus/aegis/ratelimit"
)

func newSrcClock() *testutil.Clock {
	return testutil.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
}

// srcLog collects log lines; safe for concurrent writes.
type srcLog = testutil.Buffer

func newSrcLogger() (*slog.Logger, *srcLog) {
	l := &srcLog{}
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug})), l
}

// hydraFake imitates Hydra's admin API: GET /admin/clients/{id} answers
// the client with its metadata, 404 for unknown clients.
type hydraFake struct {
	srv      *httptest.Server
	requests atomic.Int64

	mu      sync.Mutex
	clients map[string]string // id → metadata JSON; "" leaves the member out
	uris    []string
	failure string // see ServeHTTP
	pad     int    // length of a client_name added to answers
	gate    chan struct{}
	arrived chan struct{}
}

func newHydraFake(t *testing.T) *hydraFake {
	t.Helper()
	f := &hydraFake{clients: map[string]string{}}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *hydraFake) set(id, metadata string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clients[id] = metadata
}

func (f *hydraFake) fail(mode string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failure = mode
}

func (f *hydraFake) lastURI() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.uris) == 0 {
		return ""
	}
	return f.uris[len(f.uris)-1]
}

func (f *hydraFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	f.mu.Lock()
	f.uris = append(f.uris, r.RequestURI)
	failure, pad, gate, arrived := f.failure, f.pad, f.gate, f.arrived
	f.arrived = nil
	f.mu.Unlock()
	if arrived != nil {
		close(arrived)
	}
	if gate != nil {
		<-gate
	}
	_, escaped, found := strings.Cut(r.URL.EscapedPath(), "/admin/clients/")
	id, err := url.PathUnescape(escaped)
	if r.Method != http.MethodGet || !found || err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	quotedID, _ := json.Marshal(id)
	w.Header().Set("Content-Type", "application/json")
	switch failure {
	case "500":
		http.Error(w, `{"error":"internal"}`, http.StatusInternalServerError)
		return
	case "garbage":
		fmt.Fprint(w, `{"client_id":`)
		return
	case "drop":
		panic(http.ErrAbortHandler)
	case "other-id":
		fmt.Fprint(w, `{"client_id":"someone-else","metadata":{"rate_limit_per_minute":5}}`)
		return
	case "no-id":
		fmt.Fprint(w, `{"metadata":{"rate_limit_per_minute":5}}`)
		return
	case "metadata-string":
		fmt.Fprintf(w, `{"client_id":%s,"metadata":"600"}`, quotedID)
		return
	}
	f.mu.Lock()
	metadata, known := f.clients[id]
	f.mu.Unlock()
	if !known {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":"Unable to locate the resource","error_description":""}`)
		return
	}
	fmt.Fprintf(w, `{"client_id":%s,"client_name":"%s","grant_types":["client_credentials"]`, quotedID, strings.Repeat("x", pad))
	if metadata != "" {
		fmt.Fprintf(w, `,"metadata":%s`, metadata)
	}
	fmt.Fprint(w, "}")
}

type hydraHarness struct {
	fake  *hydraFake
	src   *ratelimit.HydraSource
	clock *testutil.Clock
	log   *srcLog
}

func newHydraHarness(t *testing.T, configure func(*ratelimit.HydraConfig)) *hydraHarness {
	t.Helper()
	h := &hydraHarness{fake: newHydraFake(t), clock: newSrcClock()}
	logger, log := newSrcLogger()
	h.log = log
	cfg := ratelimit.HydraConfig{
		AdminURL:   h.fake.srv.URL,
		HTTPClient: h.fake.srv.Client(),
		Logger:     logger,
		Now:        h.clock.Now,
	}
	if configure != nil {
		configure(&cfg)
	}
	src, err := ratelimit.NewHydraSource(cfg)
	require.NoError(t, err)
	h.src = src
	return h
}

func (h *hydraHarness) lookup(t *testing.T, id string) (int, bool, error) {
	t.Helper()
	return h.src.Lookup(context.Background(), ratelimit.Client{ID: id})
}

func TestHydraValueRules(t *testing.T) {
	tests := []struct {
		name     string
		metadata string // "" leaves metadata out
		want     int
		wantOK   bool
		logged   bool
	}{
		{name: "600", metadata: `{"rate_limit_per_minute":600}`, want: 600, wantOK: true},
		{name: "one", metadata: `{"rate_limit_per_minute":1}`, want: 1, wantOK: true},
		{name: "maximum", metadata: `{"rate_limit_per_minute":60000000}`, want: 60_000_000, wantOK: true},
		{name: "other members", metadata: `{"team":"data","rate_limit_per_minute":600,"x":{"y":[1,2]}}`, want: 600, wantOK: true},
		{name: "zero", metadata: `{"rate_limit_per_minute":0}`},
		{name: "field absent", metadata: `{"team":"data"}`},
		{name: "field null", metadata: `{"rate_limit_per_minute":null}`},
		{name: "metadata absent", metadata: ``},
		{name: "metadata null", metadata: `null`},
		{name: "metadata empty", metadata: `{}`},
		{name: "negative", metadata: `{"rate_limit_per_minute":-5}`, logged: true},
		{name: "fractional", metadata: `{"rate_limit_per_minute":10.5}`, logged: true},
		{name: "string", metadata: `{"rate_limit_per_minute":"600"}`, logged: true},
		{name: "boolean", metadata: `{"rate_limit_per_minute":true}`, logged: true},
		{name: "object", metadata: `{"rate_limit_per_minute":{}}`, logged: true},
		{name: "array", metadata: `{"rate_limit_per_minute":[600]}`, logged: true},
		{name: "too large exponent", metadata: `{"rate_limit_per_minute":1e12}`, logged: true},
		{name: "too large integer", metadata: `{"rate_limit_per_minute":60000001}`, logged: true},
		{name: "huge integer", metadata: `{"rate_limit_per_minute":123456789012345678901234567890}`, logged: true},
		{name: "integral exponent", metadata: `{"rate_limit_per_minute":6e2}`, logged: true},
		{name: "integral fraction", metadata: `{"rate_limit_per_minute":600.0}`, logged: true},
		{name: "duplicate member", metadata: `{"rate_limit_per_minute":1,"rate_limit_per_minute":2}`, logged: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHydraHarness(t, nil)
			id := "client-" + strings.ReplaceAll(tt.name, " ", "-")
			h.fake.set(id, tt.metadata)
			for i := range 3 {
				n, ok, err := h.lookup(t, id)
				require.NoError(t, err)
				assert.Equal(t, tt.want, n, "lookup %d", i)
				assert.Equal(t, tt.wantOK, ok, "lookup %d", i)
				h.clock.Advance(61 * time.Second) // past the TTL: the value is fetched and judged again
			}
			assert.Equal(t, int64(3), ratelimit.Lookups(h.src))
			lines := h.log.Lines("level=WARN")
			if !tt.logged {
				assert.Empty(t, lines)
				return
			}
			require.Len(t, lines, 1, "one line however often the value is read")
			assert.Contains(t, lines[0], "client_id="+id)
			assert.Contains(t, lines[0], "reason=")
			assert.Contains(t, lines[0], "field=rate_limit_per_minute")
		})
	}
}

func TestHydraBadValueLoggedPerClientAndValue(t *testing.T) {
	h := newHydraHarness(t, nil)
	h.fake.set("a", `{"rate_limit_per_minute":-5}`)
	h.fake.set("b", `{"rate_limit_per_minute":-5}`)
	steps := []struct {
		id, metadata string
		wantLines    int
	}{
		{id: "a", wantLines: 1},
		{id: "a", wantLines: 1},
		{id: "b", wantLines: 2}, // same value, another client
		{id: "a", metadata: `{"rate_limit_per_minute":"600"}`, wantLines: 3}, // another value
		{id: "a", metadata: `{"rate_limit_per_minute":-5}`, wantLines: 3},    // back to one already logged
		{id: "a", metadata: `{"rate_limit_per_minute":600}`, wantLines: 3},   // fixed
	}
	for i, st := range steps {
		if st.metadata != "" {
			h.fake.set(st.id, st.metadata)
		}
		_, _, err := h.lookup(t, st.id)
		require.NoError(t, err)
		assert.Len(t, h.log.Lines("level=WARN", "invalid limit value"), st.wantLines, "step %d", i)
		h.clock.Advance(time.Minute)
	}
	n, ok, err := h.lookup(t, "a")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, 600, n)
}

func TestHydraField(t *testing.T) {
	h := newHydraHarness(t, func(c *ratelimit.HydraConfig) { c.Field = "tier_limit" })
	h.fake.set("c", `{"rate_limit_per_minute":600,"tier_limit":42}`)
	n, ok, err := h.lookup(t, "c")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, 42, n)
}

func TestHydraTTL(t *testing.T) {
	tests := []struct {
		name string
		ttl  time.Duration
		want time.Duration
	}{
		{name: "default", ttl: 0, want: 60 * time.Second},
		{name: "ten seconds", ttl: 10 * time.Second, want: 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHydraHarness(t, func(c *ratelimit.HydraConfig) { c.TTL = tt.ttl })
			h.fake.set("c", `{"rate_limit_per_minute":600}`)
			n, _, err := h.lookup(t, "c")
			require.NoError(t, err)
			assert.Equal(t, 600, n)

			// PATCH /metadata in Hydra: not seen before the TTL is over.
			h.fake.set("c", `{"rate_limit_per_minute":900}`)
			h.clock.Advance(tt.want - time.Second)
			n, _, err = h.lookup(t, "c")
			require.NoError(t, err)
			assert.Equal(t, 600, n)
			assert.Equal(t, int64(1), ratelimit.Lookups(h.src))

			h.clock.Advance(time.Second)
			n, _, err = h.lookup(t, "c")
			require.NoError(t, err)
			assert.Equal(t, 900, n)
			assert.Equal(t, int64(2), ratelimit.Lookups(h.src))
		})
	}
}

func TestHydraConcurrentMissesShareOneRequest(t *testing.T) {
	h := newHydraHarness(t, nil)
	h.fake.set("busy", `{"rate_limit_per_minute":600}`)
	gate, arrived := make(chan struct{}), make(chan struct{})
	h.fake.mu.Lock()
	h.fake.gate, h.fake.arrived = gate, arrived
	h.fake.mu.Unlock()

	const n = 100
	start := make(chan struct{})
	var wg sync.WaitGroup
	results := make([]int, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], _, errs[i] = h.src.Lookup(context.Background(), ratelimit.Client{ID: "busy"})
		})
	}
	close(start)
	<-arrived // the one request is in Hydra's hands
	close(gate)
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		assert.Equal(t, 600, results[i])
	}
	assert.Equal(t, int64(1), ratelimit.Lookups(h.src))
	assert.Equal(t, int64(1), h.fake.requests.Load())
}

func TestHydraCanceledCallerDoesNotCancelTheRequest(t *testing.T) {
	h := newHydraHarness(t, nil)
	h.fake.set("slow", `{"rate_limit_per_minute":600}`)
	gate, arrived := make(chan struct{}), make(chan struct{})
	h.fake.mu.Lock()
	h.fake.gate, h.fake.arrived = gate, arrived
	h.fake.mu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := h.src.Lookup(ctx, ratelimit.Client{ID: "slow"})
		done <- err
	}()
	<-arrived
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)

	// The shared request goes on and fills the cache.
	second := make(chan int, 1)
	go func() {
		n, _, _ := h.lookup(t, "slow")
		second <- n
	}()
	close(gate)
	assert.Equal(t, 600, <-second)
	assert.Equal(t, int64(1), ratelimit.Lookups(h.src))
}

func TestHydraUnknownClientCachedNegatively(t *testing.T) {
	tests := []struct {
		name        string
		negativeTTL time.Duration
		want        time.Duration
	}{
		{name: "default is the TTL", negativeTTL: 0, want: 60 * time.Second},
		{name: "shorter", negativeTTL: 5 * time.Second, want: 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHydraHarness(t, func(c *ratelimit.HydraConfig) { c.NegativeTTL = tt.negativeTTL })
			for range 3 {
				n, ok, err := h.lookup(t, "newcomer")
				require.NoError(t, err)
				assert.False(t, ok)
				assert.Zero(t, n)
			}
			assert.Equal(t, int64(1), ratelimit.Lookups(h.src))

			h.fake.set("newcomer", `{"rate_limit_per_minute":600}`)
			h.clock.Advance(tt.want - time.Second)
			_, ok, err := h.lookup(t, "newcomer")
			require.NoError(t, err)
			assert.False(t, ok, "still within NegativeTTL")
			assert.Equal(t, int64(1), ratelimit.Lookups(h.src))

			h.clock.Advance(time.Second)
			n, ok, err := h.lookup(t, "newcomer")
			require.NoError(t, err)
			assert.True(t, ok)
			assert.Equal(t, 600, n)
			assert.Equal(t, int64(2), ratelimit.Lookups(h.src))
		})
	}
}

func TestHydraAdminDown(t *testing.T) {
	for _, mode := range []string{"500", "garbage", "drop", "other-id", "no-id", "metadata-string"} {
		t.Run(mode, func(t *testing.T) {
			h := newHydraHarness(t, nil)
			h.fake.set("known", `{"rate_limit_per_minute":600}`)
			h.fake.set("gone", "") // known with no value: also served as last known
			for _, id := range []string{"known", "gone"} {
				_, _, err := h.lookup(t, id)
				require.NoError(t, err)
			}
			h.fake.fail(mode)
			h.clock.Advance(2 * time.Minute)

			for range 4 {
				n, ok, err := h.lookup(t, "known")
				require.NoError(t, err)
				assert.True(t, ok)
				assert.Equal(t, 600, n, "last known value kept")
				_, ok, err = h.lookup(t, "gone")
				require.NoError(t, err)
				assert.False(t, ok)
				h.clock.Advance(6 * time.Second) // past ErrorTTL: asked again, and failing again
			}
			assert.Equal(t, int64(2+8), ratelimit.Lookups(h.src))
			warnings := h.log.Lines("level=WARN", "Hydra admin API failing")
			assert.Len(t, warnings, 2, "once per client per outage")
			assert.Len(t, h.log.Lines("level=WARN", "client_id=known"), 1)

			// A client never seen: an error, remembered for ErrorTTL.
			before := ratelimit.Lookups(h.src)
			_, ok, err := h.lookup(t, "stranger")
			require.Error(t, err)
			assert.False(t, ok)
			_, _, err = h.lookup(t, "stranger")
			require.Error(t, err)
			assert.Equal(t, before+1, ratelimit.Lookups(h.src), "no new request within ErrorTTL")

			// Back up: fresh values again, and a note that it recovered.
			h.fake.fail("")
			h.fake.set("known", `{"rate_limit_per_minute":700}`)
			h.fake.set("stranger", `{"rate_limit_per_minute":30}`)
			h.clock.Advance(6 * time.Second)
			n, _, err := h.lookup(t, "known")
			require.NoError(t, err)
			assert.Equal(t, 700, n)
			n, _, err = h.lookup(t, "stranger")
			require.NoError(t, err)
			assert.Equal(t, 30, n)
			assert.Len(t, h.log.Lines("level=INFO", "answering again", "client_id=known"), 1)

			// A second outage is logged again.
			h.fake.fail(mode)
			h.clock.Advance(2 * time.Minute)
			n, _, err = h.lookup(t, "known")
			require.NoError(t, err)
			assert.Equal(t, 700, n)
			assert.Len(t, h.log.Lines("level=WARN", "Hydra admin API failing", "client_id=known"), 2)
		})
	}
}

func TestHydraServerGoneUnknownClientError(t *testing.T) {
	h := newHydraHarness(t, nil)
	h.fake.srv.Close()
	_, ok, err := h.lookup(t, "anyone")
	require.Error(t, err)
	assert.False(t, ok)
	assert.Contains(t, err.Error(), "Hydra admin API")
}

func TestHydraPathEscaping(t *testing.T) {
	tests := []struct {
		id      string
		wantURI string
	}{
		{id: "a/b", wantURI: "/admin/clients/a%2Fb"},
		{id: "a?b", wantURI: "/admin/clients/a%3Fb"},
		{id: "a#b", wantURI: "/admin/clients/a%23b"},
		{id: "a b", wantURI: "/admin/clients/a%20b"},
		{id: "a%2Fb", wantURI: "/admin/clients/a%252Fb"},
		{id: "../admin", wantURI: "/admin/clients/..%2Fadmin"},
		{id: "ü", wantURI: "/admin/clients/%C3%BC"},
		{id: "c7a1f5e2-3b4d-4e5f-8a9b-0c1d2e3f4a5b", wantURI: "/admin/clients/c7a1f5e2-3b4d-4e5f-8a9b-0c1d2e3f4a5b"},
	}
	h := newHydraHarness(t, nil)
	for i, tt := range tests {
		h.fake.set(tt.id, fmt.Sprintf(`{"rate_limit_per_minute":%d}`, 100+i))
	}
	for i, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			n, ok, err := h.lookup(t, tt.id)
			require.NoError(t, err)
			assert.True(t, ok)
			assert.Equal(t, 100+i, n)
			assert.Equal(t, tt.wantURI, h.fake.lastURI())
		})
	}
}

func TestHydraNoRequestForEmptyOrDotIDs(t *testing.T) {
	h := newHydraHarness(t, nil)
	for _, id := range []string{"", ".", ".."} {
		n, ok, err := h.lookup(t, id)
		require.NoError(t, err)
		assert.False(t, ok)
		assert.Zero(t, n)
	}
	assert.Zero(t, ratelimit.Lookups(h.src))
}

func TestHydraAdminURLPathPrefix(t *testing.T) {
	tests := []struct{ suffix string }{{suffix: "/hydra"}, {suffix: "/hydra/"}, {suffix: "/"}}
	for _, tt := range tests {
		t.Run(tt.suffix, func(t *testing.T) {
			h := newHydraHarness(t, func(c *ratelimit.HydraConfig) { c.AdminURL += tt.suffix })
			h.fake.set("p", `{"rate_limit_per_minute":7}`)
			n, _, err := h.lookup(t, "p")
			require.NoError(t, err)
			assert.Equal(t, 7, n)
			assert.Equal(t, strings.TrimSuffix(tt.suffix, "/")+"/admin/clients/p", h.fake.lastURI())
		})
	}
}

func TestHydraResponseSizeCap(t *testing.T) {
	tests := []struct {
		name    string
		pad     int
		wantErr bool
	}{
		{name: "under the cap", pad: 100},
		{name: "over the cap", pad: 2000, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHydraHarness(t, func(c *ratelimit.HydraConfig) { c.MaxResponseBytes = 1024 })
			h.fake.pad = tt.pad
			h.fake.set("big", `{"rate_limit_per_minute":600}`)
			n, ok, err := h.lookup(t, "big")
			if tt.wantErr {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "over 1024 bytes")
				assert.False(t, ok)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, 600, n)
		})
	}
}

func TestHydraCacheBounded(t *testing.T) {
	h := newHydraHarness(t, func(c *ratelimit.HydraConfig) { c.MaxEntries = 2 })
	for _, id := range []string{"a", "b", "c"} {
		h.fake.set(id, `{"rate_limit_per_minute":600}`)
	}
	steps := []struct {
		id           string
		wantRequests int64
	}{
		{"a", 1}, {"b", 2}, {"c", 3}, // a is dropped
		{"c", 3}, {"a", 4}, // b is dropped
		{"c", 4}, {"b", 5},
	}
	for i, st := range steps {
		n, _, err := h.lookup(t, st.id)
		require.NoError(t, err)
		assert.Equal(t, 600, n)
		assert.Equal(t, st.wantRequests, ratelimit.Lookups(h.src), "step %d (%s)", i, st.id)
	}
}

func TestHydraRedirectToAnotherOriginRefused(t *testing.T) {
	other := newHydraFake(t)
	other.set("r", `{"rate_limit_per_minute":600}`)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.srv.URL+r.URL.Path, http.StatusFound)
	}))
	t.Cleanup(redirector.Close)
	src, err := ratelimit.NewHydraSource(ratelimit.HydraConfig{AdminURL: redirector.URL, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	_, _, err = src.Lookup(context.Background(), ratelimit.Client{ID: "r"})
	require.Error(t, err)
	assert.Zero(t, other.requests.Load())
}

type srcPanickingTransport struct{}

func (srcPanickingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	panic("transport bug")
}

func TestHydraPanicInSharedRequestBecomesError(t *testing.T) {
	src, err := ratelimit.NewHydraSource(ratelimit.HydraConfig{
		AdminURL:   "http://127.0.0.1:4445",
		HTTPClient: &http.Client{Transport: srcPanickingTransport{}},
		Logger:     slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	_, ok, err := src.Lookup(context.Background(), ratelimit.Client{ID: "p"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "transport bug")
	assert.False(t, ok)
}

func TestNewHydraSourceConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     ratelimit.HydraConfig
		wantErr string
	}{
		{name: "loopback http", cfg: ratelimit.HydraConfig{AdminURL: "http://127.0.0.1:4445"}},
		{name: "localhost http", cfg: ratelimit.HydraConfig{AdminURL: "http://localhost:4445/"}},
		{name: "https", cfg: ratelimit.HydraConfig{AdminURL: "https://hydra-admin.internal"}},
		{name: "http allowed", cfg: ratelimit.HydraConfig{AdminURL: "http://hydra-admin:4445", AllowInsecureHTTP: true}},
		{name: "missing", cfg: ratelimit.HydraConfig{}, wantErr: "AdminURL is required"},
		{name: "http elsewhere", cfg: ratelimit.HydraConfig{AdminURL: "http://hydra-admin:4445"}, wantErr: "AllowInsecureHTTP"},
		{name: "other scheme", cfg: ratelimit.HydraConfig{AdminURL: "ftp://127.0.0.1"}, wantErr: "scheme"},
		{name: "relative", cfg: ratelimit.HydraConfig{AdminURL: "/admin"}, wantErr: "absolute"},
		{name: "query", cfg: ratelimit.HydraConfig{AdminURL: "https://h/?x=1"}, wantErr: "no query"},
		{name: "user info", cfg: ratelimit.HydraConfig{AdminURL: "https://u:p@h/"}, wantErr: "user info"},
		{name: "negative TTL", cfg: ratelimit.HydraConfig{AdminURL: "https://h", TTL: -time.Second}, wantErr: "TTL is negative"},
		{name: "negative timeout", cfg: ratelimit.HydraConfig{AdminURL: "https://h", Timeout: -time.Second}, wantErr: "Timeout is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := ratelimit.NewHydraSource(tt.cfg)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Nil(t, src)
				return
			}
			require.NoError(t, err)
			assert.NotNil(t, src)
			assert.Zero(t, ratelimit.Lookups(src))
		})
	}
}

// TestHydraInChain: a Hydra outage sends clients it knows nothing about
// to the default, logged once by the chain.
func TestHydraInChain(t *testing.T) {
	h := newHydraHarness(t, nil)
	h.fake.set("known", `{"rate_limit_per_minute":600}`)
	logger, log := newSrcLogger()
	chain := ratelimit.NewChain(60, h.src)
	chain.Logger, chain.Now = logger, h.clock.Now

	tests := []struct {
		id     string
		down   bool
		want   int
		wantOK bool
	}{
		{id: "known", want: 600, wantOK: true},
		{id: "unknown", want: 60, wantOK: true},
		{id: "known", down: true, want: 600, wantOK: true},
		{id: "stranger", down: true, want: 60, wantOK: true},
		{id: "stranger", down: true, want: 60, wantOK: true},
		{id: "other", down: true, want: 60, wantOK: true},
	}
	for i, tt := range tests {
		if tt.down {
			h.fake.fail("500")
		}
		n, ok, err := chain.Lookup(context.Background(), ratelimit.Client{ID: tt.id})
		require.NoError(t, err)
		assert.Equal(t, tt.want, n, "step %d", i)
		assert.Equal(t, tt.wantOK, ok, "step %d", i)
		h.clock.Advance(2 * time.Minute / 10)
	}
	assert.Len(t, log.Lines("level=WARN", "source failing"), 1)
}
