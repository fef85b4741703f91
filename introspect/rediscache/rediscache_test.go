package rediscache_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/internal/redistest"
	"github.com/olympus/aegis/introspect"
	"github.com/olympus/aegis/introspect/rediscache"
)

// testPrefix is a key prefix of its own for the test (with a hash tag, as
// a Cluster needs).
func testPrefix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "{aegis-test:" + strings.NewReplacer("/", ".", " ", "_").Replace(t.Name()) + ":" + hex.EncodeToString(b) + "}:"
}

func newCache(t testing.TB, client redis.UniversalClient, prefix string) *rediscache.Cache {
	t.Helper()
	c, err := rediscache.New(rediscache.Config{Client: client, Prefix: prefix, Timeout: time.Second, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// drops collects what a watcher is told.
type drops struct {
	mu  sync.Mutex
	got []introspect.SharedDrop
	ch  chan introspect.SharedDrop
}

func watch(c *rediscache.Cache) *drops {
	d := &drops{ch: make(chan introspect.SharedDrop, 16)}
	c.Watch(func(sd introspect.SharedDrop) {
		d.mu.Lock()
		d.got = append(d.got, sd)
		d.mu.Unlock()
		d.ch <- sd
	})
	return d
}

func (d *drops) next(t *testing.T) introspect.SharedDrop {
	t.Helper()
	select {
	case sd := <-d.ch:
		return sd
	case <-time.After(5 * time.Second):
		t.Fatal("no drop arrived within 5 s")
		return introspect.SharedDrop{}
	}
}

func TestNewConfig(t *testing.T) {
	_, err := rediscache.New(rediscache.Config{})
	assert.ErrorContains(t, err, "Client is required")
	rc := redis.NewClient(&redis.Options{})
	defer rc.Close()
	_, err = rediscache.New(rediscache.Config{Client: rc, Timeout: -time.Second})
	assert.ErrorContains(t, err, "negative")
}

// TestGetSet: an answer stored is found with the time it has left; the
// generation guards Set; what is stored is keyed by the token's hash.
func TestGetSet(t *testing.T) {
	client := redistest.Shared(t)()
	prefix := testPrefix(t)
	c := newCache(t, client, prefix)
	ctx := context.Background()
	token := "opaque-token-value"
	key := sha256.Sum256([]byte(token))

	e, err := c.Get(ctx, key)
	require.NoError(t, err)
	assert.Nil(t, e.Answer, "nothing stored yet")
	gen := e.Gen

	answer := []byte(`{"active":true,"sub":"alice","client_id":"web"}`)
	require.NoError(t, c.Set(ctx, key, introspect.SharedEntry{Answer: answer, Subject: "alice", ClientID: "web", TTL: 30 * time.Second, Gen: gen}))
	e, err = c.Get(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, answer, e.Answer)
	assert.InDelta(t, 30*time.Second, e.TTL, float64(2*time.Second))
	assert.Equal(t, gen, e.Gen)

	keys, err := client.Keys(ctx, strings.NewReplacer("{", "\\{", "}", "\\}").Replace(prefix)+"*").Result()
	require.NoError(t, err)
	for _, k := range keys {
		assert.NotContains(t, k, token, "keys hold the token's hash, never the token")
	}
	for _, k := range keys {
		v, err := client.Type(ctx, k).Result()
		require.NoError(t, err)
		if v == "string" && strings.HasSuffix(k, hex.EncodeToString(key[:])) {
			val, err := client.Get(ctx, k).Bytes()
			require.NoError(t, err)
			assert.NotContains(t, string(val), token)
		}
	}

	tests := []struct {
		name   string
		e      introspect.SharedEntry
		stored bool
	}{
		{"an older generation stores nothing", introspect.SharedEntry{Answer: []byte(`{"active":false}`), TTL: time.Minute, Gen: gen + 7}, false},
		{"no TTL stores nothing", introspect.SharedEntry{Answer: []byte(`{"active":false}`), Gen: gen}, false},
		{"the current generation stores", introspect.SharedEntry{Answer: []byte(`{"active":false}`), TTL: time.Minute, Gen: gen}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, err := c.Get(ctx, key)
			require.NoError(t, err)
			require.NoError(t, c.Set(ctx, key, tt.e))
			after, err := c.Get(ctx, key)
			require.NoError(t, err)
			if tt.stored {
				assert.Equal(t, tt.e.Answer, after.Answer)
			} else {
				assert.Equal(t, before.Answer, after.Answer)
			}
		})
	}
}

// TestDrop: each kind of drop deletes the answers it names, moves the
// generation (an answer looked up before it is not stored after it) and
// reaches every watcher, the dropping Cache's own included.
func TestDrop(t *testing.T) {
	client := redistest.Shared(t)()
	ctx := context.Background()
	type stored struct{ token, sub, client string }
	entries := []stored{{"t-alice-web", "alice", "web"}, {"t-alice-cli", "alice", "cli"}, {"t-bob-web", "bob", "web"}, {"t-carol", "carol", "batch"}}
	tests := []struct {
		name string
		drop introspect.SharedDrop
		gone []string
	}{
		{"by token", introspect.SharedDrop{TokenSHA256: sha256.Sum256([]byte("t-bob-web"))}, []string{"t-bob-web"}},
		{"by subject", introspect.SharedDrop{Subject: "alice"}, []string{"t-alice-web", "t-alice-cli"}},
		{"by client", introspect.SharedDrop{ClientID: "web"}, []string{"t-alice-web", "t-bob-web"}},
		{"all", introspect.SharedDrop{All: true}, []string{"t-alice-web", "t-alice-cli", "t-bob-web", "t-carol"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := testPrefix(t)
			a, b := newCache(t, client, prefix), newCache(t, client, prefix)
			da, db := watch(a), watch(b)
			for _, s := range entries {
				e, err := a.Get(ctx, sha256.Sum256([]byte(s.token)))
				require.NoError(t, err)
				require.NoError(t, a.Set(ctx, sha256.Sum256([]byte(s.token)), introspect.SharedEntry{Answer: []byte(`{"active":true}`), Subject: s.sub, ClientID: s.client, TTL: time.Minute, Gen: e.Gen}))
			}
			stale, err := b.Get(ctx, sha256.Sum256([]byte("t-late")))
			require.NoError(t, err)

			waitSubscribed(t, client, prefix, 2)
			require.NoError(t, a.Drop(ctx, tt.drop))
			assert.Equal(t, tt.drop, da.next(t))
			assert.Equal(t, tt.drop, db.next(t))
			for _, s := range entries {
				e, err := b.Get(ctx, sha256.Sum256([]byte(s.token)))
				require.NoError(t, err)
				if contains(tt.gone, s.token) {
					assert.Nil(t, e.Answer, "%s dropped", s.token)
				} else {
					assert.NotNil(t, e.Answer, "%s kept", s.token)
				}
			}
			require.NoError(t, b.Set(ctx, sha256.Sum256([]byte("t-late")), introspect.SharedEntry{Answer: []byte(`{"active":true}`), TTL: time.Minute, Gen: stale.Gen}))
			e, err := b.Get(ctx, sha256.Sum256([]byte("t-late")))
			require.NoError(t, err)
			assert.Nil(t, e.Answer, "an answer looked up before the drop is not stored after it")
		})
	}
}

// waitSubscribed waits until n watchers listen on prefix's drop channel:
// Watch subscribes in the background, and a drop published before that is
// not delivered.
func waitSubscribed(t *testing.T, client redis.UniversalClient, prefix string, n int64) {
	t.Helper()
	channel := prefix + "drops"
	require.Eventually(t, func() bool {
		subs, err := client.PubSubNumSub(context.Background(), channel).Result()
		return err == nil && subs[channel] >= n
	}, 5*time.Second, 5*time.Millisecond, "watchers subscribed to %s", channel)
}

// TestWatchAfterOutage: when the drop channel was lost (Redis stopped) and
// comes back, every watcher is told to drop everything, since drops may
// have been missed; a message on the channel that is not a drop is
// ignored.
func TestWatchAfterOutage(t *testing.T) {
	srv := redistest.Start(t)
	client := srv.Client()
	prefix := testPrefix(t)
	c := newCache(t, client, prefix)
	d := watch(c)
	waitSubscribed(t, client, prefix, 1)
	ctx := context.Background()
	for _, junk := range []string{"not json", `{"t":"zz"}`, `{"t":"abcd"}`, `{}`} {
		require.NoError(t, client.Publish(ctx, prefix+"drops", junk).Err())
	}
	require.NoError(t, c.Drop(ctx, introspect.SharedDrop{Subject: "after-junk"}))
	assert.Equal(t, introspect.SharedDrop{Subject: "after-junk"}, d.next(t), "junk is skipped, the drop after it arrives")

	srv.Stop()
	srv.Restart()
	assert.Equal(t, introspect.SharedDrop{All: true}, d.next(t))
	waitSubscribed(t, client, prefix, 1)
	require.NoError(t, c.Drop(ctx, introspect.SharedDrop{ClientID: "again"}))
	assert.Equal(t, introspect.SharedDrop{ClientID: "again"}, d.next(t), "drops flow again")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
