package redisstore

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/ratelimit"
)

func newTestRedisStore(t testing.TB, c redis.UniversalClient, prefix string, timeout time.Duration) *Store {
	t.Helper()
	s, err := New(Config{Client: c, Prefix: prefix, Timeout: timeout})
	require.NoError(t, err)
	return s
}

func TestNew(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })

	_, err := New(Config{})
	require.Error(t, err, "no client")
	_, err = New(Config{Client: c, Timeout: -time.Second})
	require.Error(t, err, "negative timeout")

	s, err := New(Config{Client: c})
	require.NoError(t, err)
	assert.Equal(t, DefaultPrefix, s.prefix)
	assert.Equal(t, DefaultTimeout, s.timeout)

	s, err = New(Config{Client: c, Prefix: "p:", Timeout: time.Second})
	require.NoError(t, err)
	assert.Equal(t, "p:", s.prefix)
	assert.Equal(t, time.Second, s.timeout)
}

func TestRedisStoreHonoursContextDeadline(t *testing.T) {
	tests := []struct {
		name   string
		client func() redis.UniversalClient
		inline bool
	}{
		{"Client with ContextTimeoutEnabled", func() redis.UniversalClient {
			return redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
		}, true},
		{"Client without", func() redis.UniversalClient {
			return redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
		}, false},
		{"Client with read deadlines disabled", func() redis.UniversalClient {
			return redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true, ReadTimeout: -2})
		}, false},
		{"ClusterClient with ContextTimeoutEnabled", func() redis.UniversalClient {
			return redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}, ContextTimeoutEnabled: true})
		}, true},
		{"Ring without", func() redis.UniversalClient {
			return redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.client()
			t.Cleanup(func() { _ = c.Close() })
			assert.Equal(t, tt.inline, newTestRedisStore(t, c, "", 0).inline)
		})
	}
}

// TestRedisStoreMatchesGCRA replays every decision of Redis through
// ratelimit.MemoryStore's GCRA at the server's own time: the two must agree
// field for field.
func TestRedisStoreMatchesGCRA(t *testing.T) {
	client := sharedRedis(t)()
	tests := []struct {
		name  string
		limit ratelimit.Limit
		n     int
		gaps  []time.Duration // cycled between requests
	}{
		{"60/min, immediate", ratelimit.Limit{PerMinute: 60}, 70, nil},
		{"60000/min burst 3, spaced", ratelimit.Limit{PerMinute: 60000, Burst: 3}, 60,
			[]time.Duration{0, 300 * time.Microsecond, 0, time.Millisecond, 2500 * time.Microsecond, 0, 0}},
		{"600000/min burst 1", ratelimit.Limit{PerMinute: 600000, Burst: 1}, 40,
			[]time.Duration{0, 50 * time.Microsecond, 150 * time.Microsecond}},
		{"1/min burst 2", ratelimit.Limit{PerMinute: 1, Burst: 2}, 4, nil},
		{"1/min, largest burst", ratelimit.Limit{PerMinute: 1, Burst: maxPerMinute}, 5, nil},
		{"largest rate", ratelimit.Limit{PerMinute: maxPerMinute}, 5, nil},
		{"6/min burst 7", ratelimit.Limit{PerMinute: 6, Burst: 7}, 9, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestRedisStore(t, client, testPrefix(t, client), time.Second)
			ref := newReference()
			allowed := 0
			for i := range tt.n {
				if len(tt.gaps) > 0 {
					if gap := tt.gaps[i%len(tt.gaps)]; gap > 0 {
						time.Sleep(gap)
					}
				}
				got, now, err := s.allow(context.Background(), "client", tt.limit)
				require.NoError(t, err)
				want := ref.allow(t, now, "client", tt.limit)
				require.Equal(t, want, got, "request %d", i)
				if want.Allowed {
					allowed++
				}
			}
			assert.Positive(t, allowed)
			t.Logf("%d of %d allowed", allowed, tt.n)
		})
	}
}

// TestRedisStore60PerMinute: 100 immediate requests under 60/min let
// exactly 60 through, counting Remaining down; the refusals say to retry
// in about a second.
func TestRedisStore60PerMinute(t *testing.T) {
	c := sharedRedis(t)()
	s := newTestRedisStore(t, c, testPrefix(t, c), time.Second)
	limit := ratelimit.Limit{PerMinute: 60}
	const tolerance = 250 * time.Millisecond

	start := time.Now()
	var got []ratelimit.Decision
	for range 100 {
		d, err := s.Allow(context.Background(), "client-60", limit)
		require.NoError(t, err)
		got = append(got, d)
	}
	elapsed := time.Since(start)
	require.Less(t, elapsed, tolerance, "100 requests took too long for the tolerances")

	allowed := 0
	for i, d := range got {
		assert.Equal(t, limit, d.Limit)
		if i < 60 {
			require.True(t, d.Allowed, "request %d", i)
			allowed++
			assert.Equal(t, 59-i, d.Remaining, "request %d", i)
			assert.Zero(t, d.RetryAfter, "request %d", i)
			want := time.Duration(i+1) * time.Second
			assert.InDelta(t, want, d.Reset, float64(tolerance), "Reset of request %d", i)
			continue
		}
		require.False(t, d.Allowed, "request %d", i)
		assert.Zero(t, d.Remaining, "request %d", i)
		assert.Positive(t, d.RetryAfter, "request %d", i)
		assert.GreaterOrEqual(t, d.RetryAfter, time.Second-tolerance, "request %d", i)
		assert.LessOrEqual(t, d.RetryAfter, time.Second+tolerance, "request %d", i)
		assert.InDelta(t, time.Minute, d.Reset, float64(tolerance), "Reset of request %d", i)
	}
	assert.Equal(t, 60, allowed)
	t.Logf("100 requests in %v", elapsed)
}

// TestRedisStoreReplicasConcurrent: four replicas with their own clients,
// one Redis, 10,000 concurrent requests of one client under 600/min:
// exactly 600 pass before anything refills (the first 100ms on the
// server's clock), and over the whole run exactly as many as a serial
// replay of the server's timestamps through the in-memory GCRA allows (600 plus one
// per 100ms the run lasts, since the clock does not stop).
func TestRedisStoreReplicasConcurrent(t *testing.T) {
	newClient := sharedRedis(t)
	prefix := testPrefix(t, newClient())
	const replicas, requests = 4, 10_000
	limit := ratelimit.Limit{PerMinute: 600, Burst: 600}

	var stores []*Store
	for range replicas {
		c := newClient(func(o *redis.Options) {
			o.PoolSize = 32
			o.MinIdleConns = 32
			o.PoolTimeout = 30 * time.Second
		})
		// Warm the pool so that dialing does not stretch the run.
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() { require.NoError(t, c.Ping(context.Background()).Err()) })
		}
		wg.Wait()
		stores = append(stores, newTestRedisStore(t, c, prefix, 30*time.Second))
	}

	type result struct {
		allowed bool
		now     time.Duration
		err     error
	}
	results := make([]result, requests)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range requests {
		wg.Go(func() {
			<-start
			d, now, err := stores[i%replicas].allow(context.Background(), "one-client", limit)
			results[i] = result{d.Allowed, now, err}
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(began)

	allowed := 0
	nows := make([]time.Duration, 0, requests)
	for i, r := range results {
		require.NoError(t, r.err, "request %d", i)
		if r.allowed {
			allowed++
		}
		nows = append(nows, r.now)
	}
	slices.Sort(nows)
	ref := newReference()
	replayed := 0
	for _, now := range nows {
		if ref.allow(t, now, "one-client", limit).Allowed {
			replayed++
		}
	}
	// In the first interval after the first request nothing has refilled:
	// exactly the burst passes, if at least that many requests came.
	t0 := nows[0]
	var inFirst, allowedInFirst int
	for _, r := range results {
		if r.now < t0+interval(limit) {
			inFirst++
			if r.allowed {
				allowedInFirst++
			}
		}
	}
	span := nows[len(nows)-1] - t0
	t.Logf("%d requests in %v (server span %v): %d allowed; in the first %v: %d requests, %d allowed",
		requests, elapsed, span, allowed, interval(limit), inFirst, allowedInFirst)
	assert.Equal(t, replayed, allowed, "Redis and a serial replay of its timestamps disagree")
	assert.GreaterOrEqual(t, allowed, 600)
	assert.LessOrEqual(t, allowed, 600+int(span/interval(limit)), "more than GCRA can refill")
	if inFirst >= 600 {
		assert.Equal(t, 600, allowedInFirst, "allowed before anything refilled")
	} else {
		assert.Equal(t, inFirst, allowedInFirst)
	}
	if span < interval(limit) {
		assert.Equal(t, 600, allowed)
	}
}

// TestRedisStoreReplicasExactWithFrozenClock: four replicas sharing one
// Redis, 10,000 concurrent requests from one client limited to 600 per
// minute, with time standing still: exactly 600 pass.
func TestRedisStoreReplicasExactWithFrozenClock(t *testing.T) {
	newClient := sharedRedis(t)
	prefix := testPrefix(t, newClient())
	frozen := func() time.Time { return time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC) }
	var stores []*Store
	for range 4 {
		c := newClient(func(o *redis.Options) { o.PoolSize = 32; o.PoolTimeout = 30 * time.Second })
		s, err := New(Config{Client: c, Prefix: prefix, Timeout: 30 * time.Second, Now: frozen})
		require.NoError(t, err)
		stores = append(stores, s)
	}
	var wg sync.WaitGroup
	var allowed atomic.Int64
	for i := range 10_000 {
		wg.Go(func() {
			d, err := stores[i%4].Allow(context.Background(), "one-client", ratelimit.Limit{PerMinute: 600})
			assert.NoError(t, err)
			if d.Allowed {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(600), allowed.Load())
}

// TestRedisStoreKeysExpire: the key's expiry is when its bucket is full
// again; refusals do not touch it.
func TestRedisStoreKeysExpire(t *testing.T) {
	c := sharedRedis(t)()
	prefix := testPrefix(t, c)
	s := newTestRedisStore(t, c, prefix, time.Second)
	ctx := context.Background()

	t.Run("refilled key vanishes", func(t *testing.T) {
		limit := ratelimit.Limit{PerMinute: 60000, Burst: 5} // 1ms a request
		for i := range 5 {
			d, err := s.Allow(ctx, "fast", limit)
			require.NoError(t, err)
			require.True(t, d.Allowed, "request %d", i)
		}
		ttl, err := c.PTTL(ctx, prefix+"fast").Result()
		require.NoError(t, err)
		if ttl != -2 { // already gone on a slow machine: fine too
			assert.Positive(t, ttl)
			assert.LessOrEqual(t, ttl, 6*time.Millisecond)
		}
		gone := eventually(2*time.Second, func() bool {
			n, err := c.Exists(ctx, prefix+"fast").Result()
			return err == nil && n == 0
		})
		assert.True(t, gone, "key still there after its bucket refilled")
	})

	t.Run("refusal keeps the expiry", func(t *testing.T) {
		limit := ratelimit.Limit{PerMinute: 1, Burst: 1}
		d, err := s.Allow(ctx, "slow", limit)
		require.NoError(t, err)
		require.True(t, d.Allowed)
		ttl1, err := c.PTTL(ctx, prefix+"slow").Result()
		require.NoError(t, err)
		assert.Greater(t, ttl1, 59*time.Second)
		assert.LessOrEqual(t, ttl1, time.Minute)
		val1, err := c.Get(ctx, prefix+"slow").Result()
		require.NoError(t, err)

		d, err = s.Allow(ctx, "slow", limit)
		require.NoError(t, err)
		require.False(t, d.Allowed)
		ttl2, err := c.PTTL(ctx, prefix+"slow").Result()
		require.NoError(t, err)
		assert.LessOrEqual(t, ttl2, ttl1)
		val2, err := c.Get(ctx, prefix+"slow").Result()
		require.NoError(t, err)
		assert.Equal(t, val1, val2)
	})
}

// TestRedisStorePrefix: the key in Redis is prefix+key, for any key.
func TestRedisStorePrefix(t *testing.T) {
	c := sharedRedis(t)()
	unique := testPrefix(t, c)
	cleanupKeys(t, c, DefaultPrefix+unique)
	tests := []struct {
		name   string
		prefix string // configured
		key    string
		want   string // key in Redis
	}{
		{"default", "", unique + "client-1", DefaultPrefix + unique + "client-1"},
		{"custom", unique + "custom:", "client-1", unique + "custom:client-1"},
		{"odd key", unique + "odd:", "a b\x00\r\n*?[]{tag}:ü\xff", unique + "odd:a b\x00\r\n*?[]{tag}:ü\xff"},
		{"empty key", unique + "empty:", "", unique + "empty:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestRedisStore(t, c, tt.prefix, time.Second)
			d, err := s.Allow(context.Background(), tt.key, ratelimit.Limit{PerMinute: 10})
			require.NoError(t, err)
			require.True(t, d.Allowed)
			scope := tt.prefix
			if scope == "" {
				scope = DefaultPrefix + unique
			}
			assert.Equal(t, []string{tt.want}, keysUnder(t, c, scope))
			v, err := c.Get(context.Background(), tt.want).Result()
			require.NoError(t, err)
			_, err = strconv.ParseInt(v, 10, 64)
			assert.NoError(t, err, "stored TAT %q", v)
		})
	}
}

// countingHook counts dials and commands.
type countingHook struct{ dials, cmds atomic.Int64 }

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		h.dials.Add(1)
		return next(ctx, network, addr)
	}
}

func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.cmds.Add(1)
		return next(ctx, cmd)
	}
}

func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.cmds.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// TestRedisStoreInvalidLimit: an invalid limit is an error of the caller,
// not of the store, and costs no Redis call.
func TestRedisStoreInvalidLimit(t *testing.T) {
	c := sharedRedis(t)()
	hook := &countingHook{}
	c.AddHook(hook)
	s := newTestRedisStore(t, c, testPrefix(t, c), time.Second)
	tests := []struct {
		name  string
		limit ratelimit.Limit
	}{
		{"zero", ratelimit.Limit{}},
		{"negative", ratelimit.Limit{PerMinute: -1}},
		{"too fast", ratelimit.Limit{PerMinute: maxPerMinute + 1}},
		{"negative burst", ratelimit.Limit{PerMinute: 10, Burst: -1}},
		{"burst too large", ratelimit.Limit{PerMinute: 10, Burst: maxPerMinute + 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := s.Allow(context.Background(), "client", tt.limit)
			require.Error(t, err)
			assert.NotErrorIs(t, err, ratelimit.ErrStoreUnavailable)
			assert.False(t, d.Allowed)
		})
	}
	assert.Zero(t, hook.dials.Load(), "dials")
	assert.Zero(t, hook.cmds.Load(), "commands")
}

// TestRedisStoreUnavailable: every way of failing is ratelimit.ErrStoreUnavailable,
// within the timeout.
func TestRedisStoreUnavailable(t *testing.T) {
	limit := ratelimit.Limit{PerMinute: 60}
	const timeout = 100 * time.Millisecond

	t.Run("connection refused", func(t *testing.T) {
		c := newTestClient(t, &redis.Options{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))})
		s := newTestRedisStore(t, c, "", timeout)
		start := time.Now()
		_, err := s.Allow(context.Background(), "client", limit)
		require.ErrorIs(t, err, ratelimit.ErrStoreUnavailable)
		assert.Less(t, time.Since(start), timeout+time.Second)
	})

	t.Run("caller gave up", func(t *testing.T) {
		c := sharedRedis(t)()
		s := newTestRedisStore(t, c, testPrefix(t, c), timeout)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := s.Allow(ctx, "client", limit)
		require.ErrorIs(t, err, ratelimit.ErrStoreUnavailable)
		assert.ErrorIs(t, err, context.Canceled)
	})

	t.Run("script error", func(t *testing.T) {
		c := sharedRedis(t)()
		prefix := testPrefix(t, c)
		require.NoError(t, c.HSet(context.Background(), prefix+"hash", "f", "v").Err())
		s := newTestRedisStore(t, c, prefix, timeout)
		_, err := s.Allow(context.Background(), "hash", limit)
		require.ErrorIs(t, err, ratelimit.ErrStoreUnavailable)
		assert.ErrorContains(t, err, "WRONGTYPE")
	})

	t.Run("garbage value is a full bucket", func(t *testing.T) {
		c := sharedRedis(t)()
		prefix := testPrefix(t, c)
		require.NoError(t, c.Set(context.Background(), prefix+"junk", "not a number", 0).Err())
		s := newTestRedisStore(t, c, prefix, timeout)
		d, err := s.Allow(context.Background(), "junk", limit)
		require.NoError(t, err)
		assert.True(t, d.Allowed)
		assert.Equal(t, 59, d.Remaining)
	})

	// A hung server keeps connections open and answers nothing.
	for _, tt := range []struct {
		name        string
		ctxTimeouts bool
	}{
		{"hung server, go-redis honours the deadline", true},
		{"hung server, watcher goroutine", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := startRedis(t)
			c := r.Client(func(o *redis.Options) { o.ContextTimeoutEnabled = tt.ctxTimeouts })
			s := newTestRedisStore(t, c, "", timeout)
			require.Equal(t, tt.ctxTimeouts, s.inline)
			_, err := s.Allow(context.Background(), "client", limit) // dials
			require.NoError(t, err)

			r.Pause()
			for range 3 {
				start := time.Now()
				_, err = s.Allow(context.Background(), "client", limit)
				elapsed := time.Since(start)
				require.ErrorIs(t, err, ratelimit.ErrStoreUnavailable)
				assert.ErrorIs(t, err, context.DeadlineExceeded)
				assert.GreaterOrEqual(t, elapsed, timeout)
				assert.Less(t, elapsed, timeout+500*time.Millisecond)
			}
			r.Resume()
			ok := eventually(5*time.Second, func() bool {
				_, err := s.Allow(context.Background(), "client", limit)
				return err == nil
			})
			assert.True(t, ok, "no decision after the server resumed")
		})
	}
}

// TestRedisStoreScriptFlushed: a server that forgot the script (restart,
// SCRIPT FLUSH) gets it again through EVAL.
func TestRedisStoreScriptFlushed(t *testing.T) {
	r := startRedis(t)
	c := r.Client()
	s := newTestRedisStore(t, c, "", time.Second)
	ctx := context.Background()
	limit := ratelimit.Limit{PerMinute: 60}
	_, err := s.Allow(ctx, "client", limit)
	require.NoError(t, err)
	require.NoError(t, c.ScriptFlush(ctx).Err())
	d, err := s.Allow(ctx, "client", limit)
	require.NoError(t, err)
	assert.Equal(t, 58, d.Remaining)
	exists, err := gcraScript.Exists(ctx, c).Result()
	require.NoError(t, err)
	assert.Equal(t, []bool{true}, exists)
}

// BenchmarkRedisAllow measures one decision against a private Redis on
// loopback, with go-redis honouring the context deadline (ctxTimeouts) or
// not (watcher: a goroutine per decision enforces the timeout).
func BenchmarkRedisAllow(b *testing.B) {
	r := startRedis(b)
	limit := ratelimit.Limit{PerMinute: 1_000_000, Burst: 1_000_000}
	for _, bb := range []struct {
		name        string
		ctxTimeouts bool
	}{
		{"ctxTimeouts", true},
		{"watcher", false},
	} {
		c := r.Client(func(o *redis.Options) { o.ContextTimeoutEnabled = bb.ctxTimeouts })
		s := newTestRedisStore(b, c, "bench:", time.Second)
		b.Run(bb.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Allow(context.Background(), "client", limit); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bb.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(8) // 8 requests in flight per CPU, as under load
			var n atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				key := fmt.Sprintf("client-%d", n.Add(1))
				for pb.Next() {
					if _, err := s.Allow(context.Background(), key, limit); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
