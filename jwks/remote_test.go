package jwks_test

import (
	"github.com/olympus/aegis"

	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/internal/testutil"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
)

func newClock() *testutil.Clock { return testutil.NewClock(t0) }

// keyServer serves a JWK Set it can be told to change, fail or hold.
type keyServer struct {
	*httptest.Server
	fetches atomic.Int64
	mu      sync.Mutex
	keys    []*jwkstest.Key
	status  int
	body    []byte
	cache   string
	hold    chan struct{}
	seen    chan struct{}
}

func newKeyServer(t *testing.T, keys ...*jwkstest.Key) *keyServer {
	s := &keyServer{keys: keys, status: http.StatusOK, cache: "no-store"}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		status, body, cache, hold, seen := s.status, s.body, s.cache, s.hold, s.seen
		raws := make([]json.RawMessage, len(s.keys))
		for i, k := range s.keys {
			raws[i] = k.JWK()
		}
		s.mu.Unlock()
		if seen != nil {
			seen <- struct{}{}
		}
		if hold != nil {
			select {
			case <-hold:
			case <-r.Context().Done():
				return
			}
		}
		if cache != "" {
			w.Header().Set("Cache-Control", cache)
		}
		w.WriteHeader(status)
		if body != nil {
			_, _ = w.Write(body)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": raws})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *keyServer) set(f func(s *keyServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func newRemote(t *testing.T, cfg jwks.Config) *jwks.Remote {
	t.Helper()
	r, err := jwks.NewRemote(cfg)
	require.NoError(t, err)
	return r
}

func TestRemoteFetchesLazilyFromConfiguredURL(t *testing.T) {
	k := jwkstest.NewKey("ES256")
	srv := newKeyServer(t, k)
	r := newRemote(t, jwks.Config{URL: srv.URL})
	assert.Zero(t, srv.fetches.Load(), "NewRemote must not fetch")
	assert.Empty(t, r.Keys())
	keys, err := r.LookupKeys(context.Background(), k.ID)
	require.NoError(t, err)
	require.Len(t, keys, 1)
	assert.Equal(t, k.ID, keys[0].ID)
	assert.Equal(t, int64(1), srv.fetches.Load())
	assert.Len(t, r.Keys(), 1)
}

func TestRemoteDiscovery(t *testing.T) {
	k := jwkstest.NewKey("ES256")
	keysrv := newKeyServer(t, k)
	tests := []struct {
		name     string
		issuerFn func(base string) string
		handler  func(base string) http.HandlerFunc
		wantErr  string
	}{
		{
			name:     "OpenID configuration",
			issuerFn: func(base string) string { return base },
			handler: func(base string) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path != "/.well-known/openid-configuration" {
						http.NotFound(w, r)
						return
					}
					fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q}`, base, keysrv.URL)
				}
			},
		},
		{
			name:     "RFC 8414 metadata with a path-bearing issuer",
			issuerFn: func(base string) string { return base + "/tenant/a" },
			handler: func(base string) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path != "/.well-known/oauth-authorization-server/tenant/a" {
						http.NotFound(w, r)
						return
					}
					fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q}`, base+"/tenant/a", keysrv.URL)
				}
			},
		},
		{
			name:     "metadata naming another issuer",
			issuerFn: func(base string) string { return base },
			handler: func(base string) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					fmt.Fprintf(w, `{"issuer":"https://evil.test","jwks_uri":%q}`, keysrv.URL)
				}
			},
			wantErr: "names issuer",
		},
		{
			name:     "metadata without jwks_uri",
			issuerFn: func(base string) string { return base },
			handler: func(base string) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, `{"issuer":%q}`, base) }
			},
			wantErr: "no jwks_uri",
		},
		{
			name:     "jwks_uri over plain http on a public host",
			issuerFn: func(base string) string { return base },
			handler: func(base string) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":"http://keys.example.com/jwks"}`, base)
				}
			},
			wantErr: "non-loopback",
		},
		{
			name:     "metadata that is not JSON",
			issuerFn: func(base string) string { return base },
			handler: func(base string) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `<html>`) }
			},
			wantErr: "not a strict JSON object",
		},
		{
			name:     "no metadata at all",
			issuerFn: func(base string) string { return base },
			handler:  func(base string) http.HandlerFunc { return http.NotFound },
			wantErr:  "discovery failed",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var base string
			meta := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tc.handler(base)(w, r) }))
			defer meta.Close()
			base = meta.URL
			r := newRemote(t, jwks.Config{Issuer: tc.issuerFn(base)})
			err := r.Refresh(context.Background())
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				_, err = r.LookupKeys(context.Background(), k.ID)
				require.ErrorIs(t, err, jwks.ErrKeysUnavailable)
				return
			}
			require.NoError(t, err)
			keys, err := r.LookupKeys(context.Background(), k.ID)
			require.NoError(t, err)
			assert.Len(t, keys, 1)
		})
	}
}

func TestNewRemoteConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  jwks.Config
		ok   bool
	}{
		{name: "https issuer", cfg: jwks.Config{Issuer: "https://id.example.com"}, ok: true},
		{name: "loopback http", cfg: jwks.Config{Issuer: "http://127.0.0.1:4444"}, ok: true},
		{name: "localhost http", cfg: jwks.Config{URL: "http://localhost:4444/jwks"}, ok: true},
		{name: "plain http elsewhere", cfg: jwks.Config{Issuer: "http://hydra:4444"}},
		{name: "plain http elsewhere, allowed", cfg: jwks.Config{Issuer: "http://hydra:4444", AllowInsecureHTTP: true}, ok: true},
		{name: "nothing", cfg: jwks.Config{}},
		{name: "relative URL", cfg: jwks.Config{URL: "/jwks"}},
		{name: "ftp", cfg: jwks.Config{URL: "ftp://keys.example.com/"}},
		{name: "min over max", cfg: jwks.Config{Issuer: "https://i.example", MinRefreshInterval: time.Hour, MaxRefreshInterval: time.Minute}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := jwks.NewRemote(tc.cfg)
			if tc.ok {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
		})
	}
}

// TestRemoteUnknownKIDRefetchIsSharedAndCooledDown sends 1,000 concurrent
// lookups of unknown kids: they cause at most one fetch per cooldown.
func TestRemoteUnknownKIDRefetchIsSharedAndCooledDown(t *testing.T) {
	k := jwkstest.NewKey("ES256")
	srv := newKeyServer(t, k)
	clk := newClock()
	r := newRemote(t, jwks.Config{URL: srv.URL, Now: clk.Now, RefetchCooldown: 30 * time.Second})
	require.NoError(t, r.Refresh(context.Background()))
	require.Equal(t, int64(1), srv.fetches.Load())

	var wg sync.WaitGroup
	var found atomic.Int64
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys, err := r.LookupKeys(context.Background(), fmt.Sprintf("unknown-%d", i))
			assert.NoError(t, err)
			found.Add(int64(len(keys)))
		}()
	}
	wg.Wait()
	assert.Zero(t, found.Load())
	assert.Equal(t, int64(2), srv.fetches.Load(), "1,000 unknown kids must cause exactly one refetch")

	clk.Advance(29 * time.Second)
	_, err := r.LookupKeys(context.Background(), "unknown-again")
	require.NoError(t, err)
	assert.Equal(t, int64(2), srv.fetches.Load(), "within the cooldown: no refetch")

	clk.Advance(2 * time.Second)
	_, err = r.LookupKeys(context.Background(), "unknown-again")
	require.NoError(t, err)
	assert.Equal(t, int64(3), srv.fetches.Load(), "after the cooldown: one refetch")
}

// TestRemoteRotationIsPickedUpByOneRefetch: a token with a new kid is
// accepted after exactly one fetch, and the concurrent requests carrying it
// wait for that fetch instead of failing.
func TestRemoteRotationIsPickedUpByOneRefetch(t *testing.T) {
	oldKey, newKey := jwkstest.NewKey("RS256"), jwkstest.NewKey("RS256")
	srv := newKeyServer(t, oldKey)
	clk := newClock()
	r := newRemote(t, jwks.Config{URL: srv.URL, Now: clk.Now})
	_, err := r.LookupKeys(context.Background(), oldKey.ID)
	require.NoError(t, err)

	hold := make(chan struct{})
	seen := make(chan struct{}, 1)
	srv.set(func(s *keyServer) { s.keys = append(s.keys, newKey); s.hold = hold; s.seen = seen })
	var wg sync.WaitGroup
	results := make([]int, 50)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys, err := r.LookupKeys(context.Background(), newKey.ID)
			assert.NoError(t, err)
			results[i] = len(keys)
		}()
	}
	<-seen // the refetch reached the server
	close(hold)
	wg.Wait()
	assert.Equal(t, int64(2), srv.fetches.Load())
	keys, err := r.LookupKeys(context.Background(), oldKey.ID)
	require.NoError(t, err)
	assert.Len(t, keys, 1, "the old key stays usable while published")
	// Goroutines that started before the refetch began joined it; any that
	// arrived after it ended found the key in the new set.
	for i, n := range results {
		assert.Equal(t, 1, n, "lookup %d", i)
	}
}

func TestRemoteFailedRefreshKeepsLastGoodKeys(t *testing.T) {
	k := jwkstest.NewKey("ES256")
	srv := newKeyServer(t, k)
	clk := newClock()
	r := newRemote(t, jwks.Config{URL: srv.URL, Now: clk.Now, MaxResponseBytes: 64 << 10})
	require.NoError(t, r.Refresh(context.Background()))
	failures := []struct {
		name string
		set  func(s *keyServer)
	}{
		{name: "server error", set: func(s *keyServer) { s.status = http.StatusInternalServerError }},
		{name: "bad JSON", set: func(s *keyServer) { s.status, s.body = http.StatusOK, []byte(`{"keys":[`) }},
		{name: "no usable key", set: func(s *keyServer) {
			s.status, s.body = http.StatusOK, []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`)
		}},
		{name: "oversized body", set: func(s *keyServer) {
			s.status, s.body = http.StatusOK, []byte(`{"keys":[],"pad":"`+strings.Repeat("x", 100<<10)+`"}`)
		}},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			srv.set(tc.set)
			require.Error(t, r.Refresh(context.Background()))
			keys, err := r.LookupKeys(context.Background(), k.ID)
			require.NoError(t, err)
			assert.Len(t, keys, 1)
		})
	}
}

// TestRemoteUnknownKIDWhileFailing: a kid the cached keys lack, while the
// key set cannot be fetched, may be the issuer's new key, so the answer is
// "unavailable" (a 503 through the Guard), not "unknown key"; known kids
// keep verifying, and once the issuer answers again an unknown kid is
// plainly unknown and the new key is found.
func TestRemoteUnknownKIDWhileFailing(t *testing.T) {
	old, rotated := jwkstest.NewKey("ES256"), jwkstest.NewKey("ES256")
	srv := newKeyServer(t, old)
	clk := newClock()
	r := newRemote(t, jwks.Config{URL: srv.URL, Now: clk.Now, RefetchCooldown: 10 * time.Second})
	ctx := context.Background()
	require.NoError(t, r.Refresh(ctx))

	srv.set(func(s *keyServer) { s.status = http.StatusInternalServerError })
	steps := []struct {
		name        string
		advance     time.Duration
		heal        bool
		kid         string
		keys        int
		unavailable bool
		retryAfter  time.Duration
	}{
		{name: "new kid, refetch fails", kid: rotated.ID, unavailable: true, retryAfter: 10 * time.Second},
		{name: "known kid still verifies", kid: old.ID, keys: 1},
		{name: "within the cooldown: no fetch, still unavailable", advance: 4 * time.Second, kid: rotated.ID, unavailable: true, retryAfter: 6 * time.Second},
		{name: "issuer back: the new key is found", advance: 10 * time.Second, heal: true, kid: rotated.ID, keys: 1},
		{name: "a kid nobody published is unknown", advance: 10 * time.Second, kid: "forged", keys: 0},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			clk.Advance(st.advance)
			if st.heal {
				srv.set(func(s *keyServer) { s.status, s.keys = http.StatusOK, []*jwkstest.Key{old, rotated} })
			}
			keys, err := r.LookupKeys(ctx, st.kid)
			assert.Len(t, keys, st.keys)
			if !st.unavailable {
				assert.NoError(t, err)
				return
			}
			var u *aegis.Refusal
			require.ErrorAs(t, err, &u)
			assert.ErrorIs(t, err, jwks.ErrKeysUnavailable)
			assert.Equal(t, st.retryAfter, u.RetryAfter)
		})
	}
}

func TestRemoteFetchTimeout(t *testing.T) {
	srv := newKeyServer(t, jwkstest.NewKey("ES256"))
	srv.set(func(s *keyServer) { s.hold = make(chan struct{}) }) // never answers
	r := newRemote(t, jwks.Config{URL: srv.URL, FetchTimeout: 50 * time.Millisecond})
	err := r.Refresh(context.Background())
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestRemoteUnavailableWithNoKeys(t *testing.T) {
	srv := newKeyServer(t)
	srv.set(func(s *keyServer) { s.status = http.StatusServiceUnavailable })
	clk := newClock()
	r := newRemote(t, jwks.Config{URL: srv.URL, Now: clk.Now, RefetchCooldown: 10 * time.Second})
	_, err := r.LookupKeys(context.Background(), "kid")
	require.ErrorIs(t, err, jwks.ErrKeysUnavailable)
	var unavailable *aegis.Refusal
	require.ErrorAs(t, err, &unavailable)
	assert.Equal(t, 10*time.Second, unavailable.RetryAfter)
	assert.Contains(t, unavailable.Error(), "status 503")

	clk.Advance(4 * time.Second)
	_, err = r.LookupKeys(context.Background(), "kid")
	require.ErrorAs(t, err, &unavailable)
	assert.Equal(t, 6*time.Second, unavailable.RetryAfter)
	assert.Equal(t, int64(1), srv.fetches.Load(), "no new fetch within the cooldown")

	k := jwkstest.NewKey("ES256")
	srv.set(func(s *keyServer) { s.status = http.StatusOK; s.keys = []*jwkstest.Key{k} })
	clk.Advance(7 * time.Second)
	keys, err := r.LookupKeys(context.Background(), k.ID)
	require.NoError(t, err)
	assert.Len(t, keys, 1)
}

func TestRemoteCallerCancellationDoesNotCancelSharedFetch(t *testing.T) {
	k := jwkstest.NewKey("ES256")
	srv := newKeyServer(t, k)
	hold, seen := make(chan struct{}), make(chan struct{}, 1)
	srv.set(func(s *keyServer) { s.hold, s.seen = hold, seen })
	r := newRemote(t, jwks.Config{URL: srv.URL})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := r.LookupKeys(ctx, k.ID)
		done <- err
	}()
	<-seen
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
	srv.set(func(s *keyServer) { s.seen = nil })
	close(hold)
	require.NoError(t, r.Refresh(context.Background()))
	keys, err := r.LookupKeys(context.Background(), k.ID)
	require.NoError(t, err)
	assert.Len(t, keys, 1)
}

// TestRemoteBackgroundRefreshInterval checks when a lookup starts a
// background refresh, for each Cache-Control answer.
func TestRemoteBackgroundRefreshInterval(t *testing.T) {
	tests := []struct {
		cacheControl string
		interval     time.Duration
	}{
		{cacheControl: "no-store", interval: time.Minute},
		{cacheControl: "no-cache", interval: time.Minute},
		{cacheControl: "public, max-age=120", interval: 2 * time.Minute},
		{cacheControl: "max-age=0", interval: time.Minute},
		{cacheControl: "max-age=999999", interval: time.Hour},
		{cacheControl: "max-age=garbage", interval: 5 * time.Minute},
		{cacheControl: "", interval: 5 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.cacheControl, func(t *testing.T) {
			k := jwkstest.NewKey("ES256")
			srv := newKeyServer(t, k)
			srv.set(func(s *keyServer) { s.cache = tc.cacheControl })
			clk := newClock()
			r := newRemote(t, jwks.Config{URL: srv.URL, Now: clk.Now})
			require.NoError(t, r.Refresh(context.Background()))

			clk.Advance(tc.interval - time.Second)
			_, err := r.LookupKeys(context.Background(), k.ID)
			require.NoError(t, err)
			assert.Equal(t, int64(1), srv.fetches.Load(), "still fresh")

			seen := make(chan struct{}, 1)
			srv.set(func(s *keyServer) { s.seen = seen })
			clk.Advance(time.Second)
			keys, err := r.LookupKeys(context.Background(), k.ID)
			require.NoError(t, err)
			assert.Len(t, keys, 1, "stale keys are served while the refresh runs")
			<-seen
			assert.Equal(t, int64(2), srv.fetches.Load())
		})
	}
}

func TestRemoteRedirects(t *testing.T) {
	k := jwkstest.NewKey("ES256")
	keysrv := newKeyServer(t, k)
	sameHost := http.NewServeMux()
	sameHost.HandleFunc("/old", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/new", http.StatusFound) })
	sameHost.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, keysrv.URL, http.StatusFound) })
	sameHost.HandleFunc("/new", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []json.RawMessage{k.JWK()}})
	})
	srv := httptest.NewServer(sameHost)
	defer srv.Close()
	require.NoError(t, newRemote(t, jwks.Config{URL: srv.URL + "/old"}).Refresh(context.Background()))
	err := newRemote(t, jwks.Config{URL: srv.URL + "/elsewhere"}).Refresh(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "another origin")
	assert.Zero(t, keysrv.fetches.Load())
}

type panickingTransport struct{}

func (panickingTransport) RoundTrip(*http.Request) (*http.Response, error) { panic("transport bug") }

func TestRemotePanicInFetchIsAnError(t *testing.T) {
	r := newRemote(t, jwks.Config{URL: "https://keys.example.com/jwks", HTTPClient: &http.Client{Transport: panickingTransport{}}})
	_, err := r.LookupKeys(context.Background(), "kid")
	require.ErrorIs(t, err, jwks.ErrKeysUnavailable)
	assert.Contains(t, err.Error(), "panicked")
}
