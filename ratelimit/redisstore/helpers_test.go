package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/internal/redistest"
	"github.com/olympus/aegis/ratelimit"
)

// The servers themselves come from internal/redistest.
var (
	startRedis    = redistest.Start
	sharedRedis   = redistest.Shared
	newTestClient = redistest.NewClient
	freePort      = redistest.FreePort
)

// testPrefix returns a key prefix unique to this test run; its keys in c
// are deleted at the end of the test.
func testPrefix(t testing.TB, c redis.UniversalClient) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := strings.NewReplacer("/", ".", " ", "_").Replace(t.Name())
	prefix := "aegis-test:" + name + ":" + hex.EncodeToString(b) + ":"
	cleanupKeys(t, c, prefix)
	return prefix
}

// cleanupKeys deletes the keys starting with prefix at the end of the
// test, for a shared server; errors (a stopped server) are ignored.
func cleanupKeys(t testing.TB, c redis.UniversalClient, prefix string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, escapeGlob(prefix)+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
}

// keysUnder lists the keys starting with prefix.
func keysUnder(t testing.TB, c redis.UniversalClient, prefix string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var keys []string
	iter := c.Scan(ctx, 0, escapeGlob(prefix)+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("SCAN %s*: %v", prefix, err)
	}
	return keys
}

// escapeGlob escapes Redis glob characters.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\^-`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// eventually polls cond every few milliseconds until it holds or timeout
// passes, and reports whether it held.
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// maxPerMinute is ratelimit's largest PerMinute and Burst (its
// maxPerMinute): TestRedisStoreMatchesGCRA has it accepted and
// TestRedisStoreInvalidLimit one more refused.
const maxPerMinute = 60_000_000

// interval is the time one request costs under l.
func interval(l ratelimit.Limit) time.Duration { return time.Minute / time.Duration(l.PerMinute) }

// reference replays decisions through ratelimit.MemoryStore, the GCRA
// the Lua script implements, at given instants of the Redis server's
// clock: the two must agree field for field.
type reference struct {
	now   time.Time
	store *ratelimit.MemoryStore
}

func newReference() *reference {
	r := &reference{now: time.Unix(0, 0)} // the store's epoch: instants are since the Unix epoch, like the server's
	r.store = ratelimit.NewMemoryStore(ratelimit.MemoryConfig{Shards: 1, Now: func() time.Time { return r.now }})
	return r
}

// allow decides one request of key under limit at now (since the Unix
// epoch), charging it when allowed.
func (r *reference) allow(t testing.TB, now time.Duration, key string, limit ratelimit.Limit) ratelimit.Decision {
	t.Helper()
	r.now = time.Unix(0, 0).Add(now)
	d, err := r.store.Allow(context.Background(), key, limit)
	require.NoError(t, err)
	return d
}
