package cache_test

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/internal/cache"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// tokenKeys returns n distinct JWT-shaped keys whose signature part is the
// base64url of sigLen random bytes.
func tokenKeys(rng *rand.Rand, n, sigLen int) []string {
	b64 := base64.RawURLEncoding
	header := b64.EncodeToString([]byte(`{"alg":"RS256","kid":"2026-11","typ":"at+jwt"}`))
	sig := make([]byte, sigLen)
	keys := make([]string, n)
	for i := range keys {
		payload := fmt.Sprintf(`{"iss":"https://id.example.com","sub":"user-%d","aud":"api","exp":%d,"jti":"%x"}`,
			rng.IntN(1000), t0.Unix()+int64(rng.IntN(3600)), rng.Uint64())
		for j := range sig {
			sig[j] = byte(rng.Uint32())
		}
		keys[i] = header + "." + b64.EncodeToString([]byte(payload)) + "." + b64.EncodeToString(sig)
	}
	return keys
}

// TestFillsToCapacityWithTokenShapedKeys: keys whose last character takes
// only four values still fill the whole cache (sharding by the last byte
// kept about an eighth of them).
func TestFillsToCapacityWithTokenShapedKeys(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sigLen int
	}{
		{"RS256, 256-byte signature", 256},
		{"ES256, 64-byte signature", 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 10_000
			keys := tokenKeys(rand.New(rand.NewPCG(1, uint64(tc.sigLen))), n, tc.sigLen)
			last := map[byte]bool{}
			for _, k := range keys {
				last[k[len(k)-1]] = true
			}
			for b := range last {
				require.Contains(t, "AQgw", string(b), "the keys are shaped like real signatures")
			}

			c := cache.New[int](cache.Config{MaxEntries: n})
			for i, k := range keys {
				c.Set(k, i, t0.Add(time.Hour))
			}
			kept := 0
			for i, k := range keys {
				if v, ok := c.Get(k, t0); ok {
					assert.Equal(t, i, v)
					kept++
				}
			}
			t.Logf("kept %d of %d", kept, n)
			assert.GreaterOrEqual(t, kept, n*95/100, "at least 95%% of the keys are kept")
			assert.Equal(t, kept, c.Len())
		})
	}
}

// TestHotKeysSurviveScan: 20 keys in repeated use stay cached while
// 100,000 keys used once pass through a cache of 1,000.
func TestHotKeysSurviveScan(t *testing.T) {
	const (
		maxEntries = 1_000
		oneTime    = 100_000
		every      = 300 // one-time keys between two rounds of hot keys
	)
	c := cache.New[string](cache.Config{MaxEntries: maxEntries})
	hot := make([]string, 20)
	for i := range hot {
		hot[i] = "hot-" + strconv.Itoa(i)
	}
	exp := t0.Add(time.Hour)
	round := func() (misses int) {
		for _, k := range hot {
			if v, ok := c.Get(k, t0); ok {
				require.Equal(t, k, v)
				continue
			}
			misses++
			c.Set(k, k, exp)
		}
		return misses
	}

	assert.Equal(t, len(hot), round(), "the first round fills the hot keys in")
	missesAfterWarmUp, rounds := 0, 0
	for i := range oneTime {
		c.Set("once-"+strconv.Itoa(i), "", exp)
		if (i+1)%every == 0 {
			missesAfterWarmUp += round()
			rounds++
		}
		require.LessOrEqual(t, c.Len(), maxEntries)
	}
	assert.Equal(t, oneTime/every, rounds)
	assert.Zero(t, missesAfterWarmUp, "no hot key was ever evicted after the first round")
	for _, k := range hot {
		_, ok := c.Get(k, t0)
		assert.True(t, ok, "%s is still cached", k)
	}
	assert.Equal(t, maxEntries, c.Len())
}

// TestOneTimeKeysGoFirstInOrder: in a small cache, keys never read again
// are evicted oldest first; a key read once is kept over them.
func TestOneTimeKeysGoFirstInOrder(t *testing.T) {
	c := cache.New[int](cache.Config{MaxEntries: 5})
	exp := t0.Add(time.Hour)
	for i := range 5 {
		c.Set(strconv.Itoa(i), i, exp)
	}
	_, ok := c.Get("0", t0)
	require.True(t, ok)
	for i := 5; i < 8; i++ {
		c.Set(strconv.Itoa(i), i, exp)
	}
	assert.Equal(t, 5, c.Len())
	for _, tc := range []struct {
		key    string
		cached bool
	}{
		{"0", true}, // read, so kept
		{"1", false}, {"2", false}, {"3", false},
		{"4", true}, {"5", true}, {"6", true}, {"7", true},
	} {
		_, ok := c.Get(tc.key, t0)
		assert.Equal(t, tc.cached, ok, "key %s", tc.key)
	}
}

func TestExpiry(t *testing.T) {
	tests := []struct {
		name    string
		expires time.Time
		at      time.Time
		hit     bool
	}{
		{"before expiry", t0.Add(time.Minute), t0, true},
		{"a nanosecond before", t0.Add(time.Minute), t0.Add(time.Minute - 1), true},
		{"at expiry", t0.Add(time.Minute), t0.Add(time.Minute), false},
		{"after expiry", t0.Add(time.Minute), t0.Add(time.Hour), false},
		{"already expired when set", t0.Add(-time.Second), t0, false},
		{"no expiry", time.Time{}, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"far future", time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"past the year 2262", time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(3001, 1, 1, 0, 0, 0, 0, time.UTC), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := cache.New[string](cache.Config{MaxEntries: 10})
			c.Set("k", "v", tc.expires)
			require.Equal(t, 1, c.Len())
			v, ok := c.Get("k", tc.at)
			assert.Equal(t, tc.hit, ok)
			if tc.hit {
				assert.Equal(t, "v", v)
				assert.Equal(t, 1, c.Len())
			} else {
				assert.Empty(t, v)
				assert.Zero(t, c.Len(), "an expired entry is removed when found")
			}
		})
	}
}

func TestSetReplaces(t *testing.T) {
	c := cache.New[string](cache.Config{MaxEntries: 10})
	c.Set("k", "old", t0.Add(time.Second))
	c.Set("k", "new", t0.Add(time.Hour))
	assert.Equal(t, 1, c.Len())
	v, ok := c.Get("k", t0.Add(time.Minute))
	assert.True(t, ok, "the new expiry applies")
	assert.Equal(t, "new", v)
}

func TestDeleteExpired(t *testing.T) {
	c := cache.New[int](cache.Config{MaxEntries: 1000})
	for i := range 100 {
		c.Set(strconv.Itoa(i), i, t0.Add(time.Duration(i)*time.Second))
	}
	c.Set("forever", -1, time.Time{})
	assert.Equal(t, 51, c.DeleteExpired(t0.Add(50*time.Second)), "0..50 expired (50 at that very time)")
	assert.Equal(t, 50, c.Len())
	_, ok := c.Get("50", t0)
	assert.False(t, ok)
	_, ok = c.Get("51", t0)
	assert.True(t, ok)
	assert.Equal(t, 49, c.DeleteExpired(t0.Add(time.Hour)))
	assert.Equal(t, 1, c.Len())
}

// TestExpiredEntriesGoAsTheCacheIsUsed: entries never looked up again are
// removed once expired, after enough lookups in their shard.
func TestExpiredEntriesGoAsTheCacheIsUsed(t *testing.T) {
	c := cache.New[int](cache.Config{MaxEntries: 100_000, Shards: 1})
	for i := range 5000 {
		c.Set(strconv.Itoa(i), i, t0.Add(time.Second))
	}
	c.Set("forever", 0, time.Time{})
	require.Equal(t, 5001, c.Len())
	for range 5001 {
		_, ok := c.Get("forever", t0.Add(time.Minute))
		require.True(t, ok)
	}
	assert.Equal(t, 1, c.Len())
}

func TestDelete(t *testing.T) {
	c := cache.New[int](cache.Config{MaxEntries: 10})
	c.Set("a", 1, time.Time{})
	c.Set("b", 2, time.Time{})
	c.Delete("a")
	c.Delete("absent")
	assert.Equal(t, 1, c.Len())
	_, ok := c.Get("a", t0)
	assert.False(t, ok)
	v, ok := c.Get("b", t0)
	assert.True(t, ok)
	assert.Equal(t, 2, v)
	c.Set("a", 3, time.Time{})
	v, ok = c.Get("a", t0)
	assert.True(t, ok, "a deleted key can be set again")
	assert.Equal(t, 3, v)
}

func TestDeleteFunc(t *testing.T) {
	c := cache.New[int](cache.Config{MaxEntries: 10_000})
	for i := range 1000 {
		c.Set("k"+strconv.Itoa(i), i, t0.Add(time.Duration(i-500)*time.Second))
	}
	visited := map[string]int{}
	removed := c.DeleteFunc(func(k string, v int) bool {
		visited[k] = v
		return v%3 == 0
	})
	assert.Len(t, visited, 1000, "every entry is visited, expired or not")
	assert.Equal(t, 334, removed)
	assert.Equal(t, 666, c.Len())
	for i := range 1000 {
		require.Equal(t, i, visited["k"+strconv.Itoa(i)])
		_, ok := c.Get("k"+strconv.Itoa(i), t0.Add(-time.Hour))
		assert.Equal(t, i%3 != 0, ok, "k%d", i)
	}
	assert.Zero(t, c.DeleteFunc(func(string, int) bool { return false }))
	assert.Equal(t, 666, c.DeleteFunc(func(string, int) bool { return true }))
	assert.Zero(t, c.Len())
}

func TestUpdate(t *testing.T) {
	c := cache.New[int](cache.Config{MaxEntries: 10})
	incr := func(v int, found bool) (int, time.Time, bool) { return v + 1, t0.Add(time.Minute), true }
	c.Update("n", t0, incr)
	c.Update("n", t0, incr)
	v, ok := c.Get("n", t0)
	require.True(t, ok)
	assert.Equal(t, 2, v)

	c.Update("n", t0.Add(time.Minute), func(v int, found bool) (int, time.Time, bool) {
		assert.False(t, found, "an expired entry is not found")
		assert.Zero(t, v)
		return 10, time.Time{}, true
	})
	assert.Equal(t, 1, c.Len(), "the expired entry was replaced, not added to")
	v, ok = c.Get("n", t0.Add(time.Hour))
	require.True(t, ok)
	assert.Equal(t, 10, v)

	c.Update("n", t0, func(v int, found bool) (int, time.Time, bool) { return 0, time.Time{}, false })
	assert.Zero(t, c.Len(), "keep false removes the entry")
	c.Update("absent", t0, func(v int, found bool) (int, time.Time, bool) {
		assert.False(t, found)
		return 0, time.Time{}, false
	})
	assert.Zero(t, c.Len(), "keep false adds nothing")
}

// TestNeverExceedsMaxEntries: however many keys go in, the cache holds at
// most MaxEntries, and exactly that many once that many went in.
func TestNeverExceedsMaxEntries(t *testing.T) {
	for _, tc := range []struct{ maxEntries, shards int }{
		{1, 0}, {2, 0}, {5, 0}, {127, 0}, {128, 0}, {1000, 0}, {1000, 16}, {4097, 64}, {10_000, 0},
	} {
		t.Run(fmt.Sprintf("%d entries, %d shards", tc.maxEntries, tc.shards), func(t *testing.T) {
			c := cache.New[int](cache.Config{MaxEntries: tc.maxEntries, Shards: tc.shards})
			rng := rand.New(rand.NewPCG(uint64(tc.maxEntries), 2))
			for i := range 5*tc.maxEntries + 1000 {
				c.Set(strconv.FormatUint(rng.Uint64(), 36), i, t0.Add(time.Hour))
				if rng.IntN(10) == 0 {
					c.Get(strconv.Itoa(rng.IntN(i+1)), t0)
				}
				require.LessOrEqual(t, c.Len(), tc.maxEntries, "after %d inserts", i+1)
			}
			assert.Equal(t, tc.maxEntries, c.Len())
			assert.Equal(t, tc.maxEntries, countEntries(c), "Len is the number of entries")
		})
	}
}

func countEntries[V any](c *cache.Cache[V]) int {
	n := 0
	c.DeleteFunc(func(string, V) bool { n++; return false })
	return n
}

// TestConcurrentUse: every operation at once from many goroutines on
// overlapping keys (run with -race); Update stays atomic and the bound
// holds.
func TestConcurrentUse(t *testing.T) {
	const maxEntries = 500
	c := cache.New[int](cache.Config{MaxEntries: maxEntries, Shards: 8})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 3))
			for i := range 20_000 {
				k := strconv.Itoa(rng.IntN(2000))
				now := t0.Add(time.Duration(i) * time.Millisecond)
				switch rng.IntN(10) {
				case 0:
					c.Delete(k)
				case 1:
					c.Update(k, now, func(v int, _ bool) (int, time.Time, bool) { return v + 1, now.Add(time.Second), true })
				case 2:
					if i%1000 == 0 {
						c.DeleteFunc(func(_ string, v int) bool { return v > 5 })
					}
				case 3, 4, 5:
					c.Set(k, 1, now.Add(time.Second))
				default:
					c.Get(k, now)
				}
				if c.Len() > maxEntries {
					assert.LessOrEqual(t, c.Len(), maxEntries)
					return
				}
			}
		}()
	}
	// Meanwhile Update from many goroutines on one key of another cache
	// counts every call.
	counts := cache.New[int](cache.Config{MaxEntries: 1000})
	const counters = 8
	for range counters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				counts.Update("counter", t0, func(v int, _ bool) (int, time.Time, bool) { return v + 1, time.Time{}, true })
				counts.Get("counter", t0)
			}
		}()
	}
	wg.Wait()
	assert.LessOrEqual(t, c.Len(), maxEntries)
	assert.Equal(t, c.Len(), countEntries(c))
	v, ok := counts.Get("counter", t0)
	require.True(t, ok)
	assert.Equal(t, counters*1000, v)
}

func TestNewRejectsBadBounds(t *testing.T) {
	for _, n := range []int{0, -1, 1 << 31} {
		assert.Panics(t, func() { cache.New[int](cache.Config{MaxEntries: n}) }, "MaxEntries %d", n)
	}
}

func TestGetHitDoesNotAllocate(t *testing.T) {
	c := cache.New[*int](cache.Config{MaxEntries: 100})
	key := tokenKeys(rand.New(rand.NewPCG(4, 4)), 1, 256)[0]
	c.Set(key, new(int), time.Time{})
	allocs := testing.AllocsPerRun(1000, func() {
		if _, ok := c.Get(key, t0); !ok {
			panic("miss")
		}
	})
	assert.Zero(t, allocs)
}

// BenchmarkGetHit is a hit in a full cache of each size, on 1,024 keys
// (a hot working set) picked at random among those held, each looked up
// with a copy of the key, as a request carries its own: keys shaped like
// RS256 JWTs (about 540 bytes) and, as introspection uses, 32-byte
// digests.
func BenchmarkGetHit(b *testing.B) {
	shapes := []struct {
		name string
		keys func(rng *rand.Rand, n int) []string
	}{
		{"RS256-JWT", func(rng *rand.Rand, n int) []string { return tokenKeys(rng, n, 256) }},
		{"32B", func(rng *rand.Rand, n int) []string {
			keys := make([]string, n)
			buf := make([]byte, 32)
			for i := range keys {
				for j := range buf {
					buf[j] = byte(rng.Uint32())
				}
				keys[i] = string(buf)
			}
			return keys
		}},
	}
	for _, shape := range shapes {
		for _, size := range []int{10, 10_000, 100_000} {
			b.Run(fmt.Sprintf("key=%s/entries=%d", shape.name, size), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(5, uint64(size)))
				keys := shape.keys(rng, size)
				c := cache.New[*int](cache.Config{MaxEntries: size})
				for _, k := range keys {
					c.Set(k, new(int), time.Time{})
				}
				hot := make([]string, 1024)
				for i := range hot {
					hot[i] = strings.Clone(keys[rng.IntN(len(keys))])
				}
				runtime.GC() // not during the loop: setup made garbage
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, ok := c.Get(hot[i&1023], t0); !ok {
						b.Fatal("miss")
					}
					i++
				}
			})
		}
	}
}

// BenchmarkGetHitParallel is BenchmarkGetHit's 10,000 from every core.
func BenchmarkGetHitParallel(b *testing.B) {
	rng := rand.New(rand.NewPCG(6, 6))
	keys := tokenKeys(rng, 10_000, 256)
	c := cache.New[*int](cache.Config{MaxEntries: len(keys)})
	for _, k := range keys {
		c.Set(k, new(int), time.Time{})
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(keys))
		for pb.Next() {
			if _, ok := c.Get(keys[i%len(keys)], t0); !ok {
				b.Error("miss")
				return
			}
			i++
		}
	})
}

// BenchmarkSet: a new key into a full cache of 10,000 (so each Set
// evicts), and a new value for a key already held.
func BenchmarkSet(b *testing.B) {
	keys := tokenKeys(rand.New(rand.NewPCG(7, 7)), 1<<16, 256)
	b.Run("new key, full cache", func(b *testing.B) {
		c := cache.New[*int](cache.Config{MaxEntries: 10_000})
		v := new(int)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			c.Set(keys[i&(1<<16-1)], v, t0)
			i++
		}
	})
	b.Run("existing key", func(b *testing.B) {
		c := cache.New[*int](cache.Config{MaxEntries: 10_000})
		v := new(int)
		for _, k := range keys[:1024] {
			c.Set(k, v, t0)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			c.Set(keys[i&1023], v, t0)
			i++
		}
	})
}
