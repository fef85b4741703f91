package introspect_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/internal/testutil"
	"github.com/olympus/aegis/introspect"
)

// memShared is an in-memory introspect.SharedCache on a test clock, with
// the semantics the interface asks for: entries expire, a drop bumps the
// generation and a Set with an older one stores nothing, drops reach every
// watcher. fail makes every operation fail.
type memShared struct {
	clk *testutil.Clock

	mu       sync.Mutex
	entries  map[[32]byte]memEntry
	gen      uint64
	watchers []func(introspect.SharedDrop)
	fail     error
	sets     int
}

type memEntry struct {
	e       introspect.SharedEntry
	expires time.Time
}

func newMemShared(clk *testutil.Clock) *memShared {
	return &memShared{clk: clk, entries: map[[32]byte]memEntry{}}
}

func (m *memShared) Get(_ context.Context, key [32]byte) (introspect.SharedEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return introspect.SharedEntry{}, m.fail
	}
	me, ok := m.entries[key]
	now := m.clk.Now()
	if !ok || !now.Before(me.expires) {
		return introspect.SharedEntry{Gen: m.gen}, nil
	}
	e := me.e
	e.TTL, e.Gen = me.expires.Sub(now), m.gen
	return e, nil
}

func (m *memShared) Set(_ context.Context, key [32]byte, e introspect.SharedEntry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if e.Gen != m.gen {
		return nil
	}
	m.sets++
	m.entries[key] = memEntry{e: e, expires: m.clk.Now().Add(e.TTL)}
	return nil
}

func (m *memShared) Drop(_ context.Context, d introspect.SharedDrop) error {
	m.mu.Lock()
	if m.fail != nil {
		m.mu.Unlock()
		return m.fail
	}
	m.gen++
	for k, me := range m.entries {
		if d.All || k == d.TokenSHA256 || d.Subject != "" && me.e.Subject == d.Subject || d.ClientID != "" && me.e.ClientID == d.ClientID {
			delete(m.entries, k)
		}
	}
	watchers := slices.Clone(m.watchers)
	m.mu.Unlock()
	for _, f := range watchers {
		f(d)
	}
	return nil
}

func (m *memShared) Watch(f func(introspect.SharedDrop)) func() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.watchers = append(m.watchers, f)
	return func() {}
}

func (m *memShared) setFail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = err
}

// replicas are n Clients of one issuer sharing one memShared.
func replicas(t *testing.T, n int, tweak func(*introspect.Config)) (*fixture, *memShared, []*introspect.Client, *hookRecorder) {
	t.Helper()
	rec := &hookRecorder{}
	var shared *memShared
	f := newFixture(t, func(c *introspect.Config) {
		shared = newMemShared(testutil.NewClock(t0))
		c.Shared = shared
		c.Observer = rec
		if tweak != nil {
			tweak(c)
		}
	})
	shared.clk = f.clk
	clients := []*introspect.Client{f.client}
	for range n - 1 {
		c, err := introspect.New(introspect.Config{Endpoint: f.iss.IntrospectionURL(), Issuer: f.iss.URL, Audience: f.iss.Audience,
			Now: f.clk.Now, Shared: shared, Observer: rec, Logger: slog.New(slog.NewTextHandler(f.logs, nil))})
		require.NoError(t, err)
		clients = append(clients, c)
	}
	return f, shared, clients, rec
}

// TestSharedCacheAnswersEveryReplica: tokens sent round-robin to four
// replicas are introspected once each, not four times; inactive answers
// are shared too.
func TestSharedCacheAnswersEveryReplica(t *testing.T) {
	f, shared, clients, rec := replicas(t, 4, nil)
	ctx := context.Background()
	var active, revoked []string
	for i := range 50 {
		active = append(active, f.iss.OpaqueM2M("svc-"+strconv.Itoa(i), "data:read"))
		tok := f.iss.OpaqueM2M("gone-"+strconv.Itoa(i), "data:read")
		f.iss.Revoke(tok)
		revoked = append(revoked, tok)
	}
	for _, tok := range active {
		for _, c := range clients {
			_, err := c.Introspect(ctx, tok)
			require.NoError(t, err)
		}
	}
	for _, tok := range revoked {
		for _, c := range clients {
			_, err := c.Introspect(ctx, tok)
			require.ErrorIs(t, err, introspect.ErrInactive)
		}
	}
	assert.Equal(t, int64(100), f.iss.IntrospectionCalls(), "one call per token across the four replicas")
	assert.Equal(t, 100, shared.sets)
	hits := 0
	for _, s := range rec.shared {
		if s.Op == aegis.SharedCacheGet && s.Hit {
			hits++
		}
		assert.NoError(t, s.Err)
	}
	assert.Equal(t, 300, hits, "three replicas of four found each answer in the shared cache")
}

// TestSharedEntriesKeepTheirTTL: an answer read from the shared cache is
// cached locally no longer than the shared entry had left, so revocation
// is noticed within one TTL on every replica, as without sharing.
func TestSharedEntriesKeepTheirTTL(t *testing.T) {
	f, _, clients, _ := replicas(t, 2, func(c *introspect.Config) { c.Cache.TTL = 30 * time.Second })
	ctx := context.Background()
	tok := f.iss.OpaqueM2M("svc", "data:read")
	_, err := clients[0].Introspect(ctx, tok)
	require.NoError(t, err)
	f.clk.Advance(25 * time.Second)
	_, err = clients[1].Introspect(ctx, tok) // from the shared entry, 5 s left
	require.NoError(t, err)
	require.Equal(t, int64(1), f.iss.IntrospectionCalls())
	f.iss.Revoke(tok)
	f.clk.Advance(6 * time.Second)
	for i, c := range clients {
		_, err := c.Introspect(ctx, tok)
		assert.ErrorIs(t, err, introspect.ErrInactive, "replica %d, 31 s after the first answer", i)
	}
}

// TestSharedCacheDrop: a drop by token, subject or client forgets the
// answers in the shared cache and in every replica's own cache at once,
// so a revoked token is refused everywhere on its next request.
func TestSharedCacheDrop(t *testing.T) {
	tests := []struct {
		name string
		drop func(tok string) introspect.Drop
	}{
		{"by token", func(tok string) introspect.Drop { return introspect.Drop{Token: tok} }},
		{"by subject", func(string) introspect.Drop { return introspect.Drop{Subject: "user-7"} }},
		{"by client", func(string) introspect.Drop { return introspect.Drop{ClientID: "web-app"} }},
		{"all", func(string) introspect.Drop { return introspect.Drop{All: true} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _, clients, _ := replicas(t, 3, nil)
			ctx := context.Background()
			tok := f.iss.OpaqueUser("user-7", "web-app", "u7@example.com", "data:read")
			other := f.iss.OpaqueUser("user-8", "mobile", "u8@example.com", "data:read")
			for _, c := range clients {
				for _, tk := range []string{tok, other} {
					_, err := c.Introspect(ctx, tk)
					require.NoError(t, err)
				}
			}
			require.Equal(t, int64(2), f.iss.IntrospectionCalls())
			f.iss.Revoke(tok)
			require.NoError(t, clients[1].Drop(ctx, tt.drop(tok)))
			for i, c := range clients {
				_, err := c.Introspect(ctx, tok)
				assert.ErrorIs(t, err, introspect.ErrInactive, "replica %d", i)
			}
			assert.Equal(t, int64(3), f.iss.IntrospectionCalls(), "the first replica asked the server, the others shared its answer")
		})
	}
}

func TestDropNamingNothing(t *testing.T) {
	f := newFixture(t, nil)
	assert.ErrorIs(t, f.client.Drop(context.Background(), introspect.Drop{}), introspect.ErrEmptyDrop)
}

// TestDropDuringACall: an answer the server gave before a drop, to a call
// under way while the drop was made, is not cached.
func TestDropDuringACall(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	tok := f.iss.OpaqueM2M("svc", "data:read")
	started, release := make(chan struct{}), make(chan struct{})
	f.iss.ServeIntrospectionWith(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"active":true,"sub":"svc","client_id":"svc","iss":%q,"aud":[%q],"exp":%d}`, f.iss.URL, f.iss.Audience, t0.Add(time.Hour).Unix())
	}))
	done := make(chan error)
	go func() {
		_, err := f.client.Introspect(ctx, tok)
		done <- err
	}()
	<-started
	require.NoError(t, f.client.Drop(ctx, introspect.Drop{Token: tok}))
	close(release)
	require.NoError(t, <-done, "the call's own caller gets its answer")
	f.iss.ServeIntrospectionWith(nil)
	_, err := f.client.Introspect(ctx, tok)
	require.NoError(t, err)
	assert.Equal(t, int64(2), f.iss.IntrospectionCalls(), "the answer given before the drop was not cached")
}

// TestSharedCacheFailureFallsBackToLocal: while the shared cache fails,
// tokens are introspected and cached locally, never refused for it; the
// failure is reported to the Observer on each use and logged once.
func TestSharedCacheFailureFallsBackToLocal(t *testing.T) {
	f, shared, clients, rec := replicas(t, 2, nil)
	ctx := context.Background()
	shared.setFail(errors.New("connection refused"))
	tok := f.iss.OpaqueM2M("svc", "data:read")
	for range 3 {
		for _, c := range clients {
			_, err := c.Introspect(ctx, tok)
			require.NoError(t, err)
		}
	}
	assert.Equal(t, int64(2), f.iss.IntrospectionCalls(), "each replica asked once, then used its local cache")
	failures := 0
	for _, s := range rec.shared {
		if s.Err != nil {
			failures++
		}
	}
	assert.Equal(t, 2, failures, "a get per replica failed (and no set follows a failed get: it has no generation)")
	assert.Equal(t, 2, countLines(f.logs.String(), "the shared cache failed"), "logged once per replica")
	assert.Error(t, clients[0].Drop(ctx, introspect.Drop{Token: tok}), "a drop says the shared cache could not be told")

	shared.setFail(nil)
	other := f.iss.OpaqueM2M("svc-2", "data:read")
	for _, tk := range []string{tok, other} {
		for _, c := range clients {
			_, err := c.Introspect(ctx, tk)
			require.NoError(t, err)
		}
	}
	assert.Equal(t, int64(4), f.iss.IntrospectionCalls(), "shared again once it answers: the token dropped on one replica asked once, the new one once")
	assert.Equal(t, 2, countLines(f.logs.String(), "answers again"), "the recovery is logged once per replica")
}

// TestSharedCacheGarbageIsIgnored: an entry the shared cache returns that
// is not a well-formed answer is not trusted; the server is asked.
func TestSharedCacheGarbageIsIgnored(t *testing.T) {
	f, shared, clients, _ := replicas(t, 1, nil)
	ctx := context.Background()
	tok := f.iss.OpaqueM2M("svc", "data:read")
	key := sha256.Sum256([]byte(tok))
	for _, garbage := range []string{`{"active":"true"}`, `not json`, `{"active":true,"active":false}`} {
		shared.mu.Lock()
		shared.entries[key] = memEntry{e: introspect.SharedEntry{Answer: []byte(garbage)}, expires: f.clk.Now().Add(time.Minute)}
		shared.mu.Unlock()
		before := f.iss.IntrospectionCalls()
		require.NoError(t, clients[0].Drop(ctx, introspect.Drop{All: true}))
		shared.mu.Lock()
		shared.entries[key] = memEntry{e: introspect.SharedEntry{Answer: []byte(garbage)}, expires: f.clk.Now().Add(time.Minute)}
		shared.mu.Unlock()
		_, err := clients[0].Introspect(ctx, tok)
		require.NoError(t, err, garbage)
		assert.Equal(t, before+1, f.iss.IntrospectionCalls(), garbage)
	}
}

// countLines counts the log lines containing s.
func countLines(logs, s string) int {
	n := 0
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}
