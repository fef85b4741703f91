package redisstore

// ratelimit.Failover over a real Redis that is stopped, restarted and
// hung (the Failover's own tests use fake stores).

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/olympus/aegis"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/internal/testutil"
	"github.com/olympus/aegis/ratelimit"
)

// logRecorder records a logger's lines (testutil.LogRecorder).
type logRecorder struct{ testutil.LogRecorder }

func (r *logRecorder) logger() *slog.Logger { return r.Logger() }
func (r *logRecorder) lines() []string      { return r.Records() }
func (r *logRecorder) text() string         { return r.String() }

func newFakeClock() *testutil.Clock { return testutil.NewClock(time.Unix(1_700_000_000, 0)) }

// fakeStore is the fallback: it allows every request and counts calls.
type fakeStore struct{ calls atomic.Int64 }

func (s *fakeStore) Allow(_ context.Context, _ string, limit ratelimit.Limit) (ratelimit.Decision, error) {
	s.calls.Add(1)
	return ratelimit.Decision{Allowed: true, Limit: limit, Remaining: burst(limit) - 1}, nil
}

// The Failover's log lines.
const (
	logOpenDown   = "WARN rate-limit store unavailable, deciding in memory"
	logClosedDown = "ERROR rate-limit store unavailable, refusing requests"
	logRecovered  = "INFO rate-limit store recovered"
)

// TestFailoverRedisStopped stops Redis under a Failover and starts it
// again: per policy, decisions go on in the fallback or are refused with
// ratelimit.ErrStoreUnavailable, then return to Redis; each switch is logged once.
func TestFailoverRedisStopped(t *testing.T) {
	tests := []struct {
		name     string
		policy   ratelimit.FailurePolicy
		cooldown time.Duration // negative: the primary is tried every call
		logDown  string
	}{
		{"fail-open with cooldown", ratelimit.FailOpen, time.Second, logOpenDown},
		{"fail-open, primary every call", ratelimit.FailOpen, -1, logOpenDown},
		{"fail-closed with cooldown", ratelimit.FailClosed, time.Second, logClosedDown},
		{"fail-closed, primary every call", ratelimit.FailClosed, -1, logClosedDown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := startRedis(t)
			c := r.Client()
			hook := &countingHook{}
			c.AddHook(hook)
			prefix := testPrefix(t, c)
			primary := newTestRedisStore(t, c, prefix, 100*time.Millisecond)
			fallback := &fakeStore{}
			logs := &logRecorder{}
			clock := newFakeClock()
			f, err := ratelimit.NewFailover(ratelimit.FailoverConfig{
				Primary:    primary,
				Fallback:   fallback,
				Policy:     tt.policy,
				Logger:     logs.logger(),
				RetryAfter: 7 * time.Second,
				Cooldown:   tt.cooldown,
				Now:        clock.Now,
			})
			require.NoError(t, err)
			ctx := context.Background()
			limit := ratelimit.Limit{PerMinute: 1000}

			// allow makes n decisions and checks them against the policy
			// while Redis is down (or, with healthy, up).
			allow := func(n int, healthy bool) {
				t.Helper()
				for i := range n {
					d, err := f.Allow(ctx, "client", limit)
					if healthy || tt.policy == ratelimit.FailOpen {
						require.NoError(t, err, "decision %d", i)
						require.True(t, d.Allowed, "decision %d", i)
						continue
					}
					require.ErrorIs(t, err, ratelimit.ErrStoreUnavailable, "decision %d", i)
					var ue *aegis.Refusal
					require.ErrorAs(t, err, &ue)
					assert.Equal(t, 7*time.Second, ue.RetryAfter)
					assert.False(t, d.Allowed)
					assert.Equal(t, 7*time.Second, d.RetryAfter)
				}
			}

			// Redis up: it decides.
			allow(3, true)
			assert.Len(t, keysUnder(t, c, prefix), 1)
			assert.Zero(t, fallback.calls.Load())
			assert.Empty(t, logs.lines())

			// Redis down.
			r.Stop()
			before := hook.cmds.Load()
			var downCalls int64
			if tt.cooldown > 0 {
				allow(20, false)
				assert.Equal(t, before+1, hook.cmds.Load(), "Redis tried during cooldown")
				clock.Advance(tt.cooldown)
				allow(1, false) // the probe fails
				assert.Equal(t, before+2, hook.cmds.Load())
				downCalls = 21
			} else {
				allow(5, false) // each waits for the timeout
				assert.Equal(t, before+5, hook.cmds.Load(), "Redis not tried on every call")
				downCalls = 5
			}
			if tt.policy == ratelimit.FailOpen {
				assert.Equal(t, downCalls, fallback.calls.Load(), "decisions not made by the fallback")
			}
			assert.Equal(t, []string{tt.logDown}, logs.lines())
			assert.Contains(t, logs.text(), "policy="+tt.policy.String())
			assert.Contains(t, logs.text(), `error="ratelimit: store unavailable: redis: `)

			// Redis back, empty.
			r.Restart()
			if tt.cooldown > 0 {
				allow(5, false) // still cooling down
				assert.Empty(t, keysUnder(t, c, prefix), "Redis used during cooldown")
				clock.Advance(tt.cooldown)
			}
			fallbackCalls := fallback.calls.Load()
			allow(5, true)
			assert.Equal(t, fallbackCalls, fallback.calls.Load(), "fallback used after recovery")
			assert.Len(t, keysUnder(t, c, prefix), 1, "decisions are not back in Redis")
			assert.Equal(t, []string{tt.logDown, logRecovered}, logs.lines())
		})
	}
}

// TestFailoverHungRedis: with a hung Redis, only the first request and one
// per cooldown wait for the timeout.
func TestFailoverHungRedis(t *testing.T) {
	r := startRedis(t)
	c := r.Client()
	primary := newTestRedisStore(t, c, testPrefix(t, c), 100*time.Millisecond)
	logs := &logRecorder{}
	f, err := ratelimit.NewFailover(ratelimit.FailoverConfig{Primary: primary, Fallback: &fakeStore{}, Logger: logs.logger()})
	require.NoError(t, err)
	ctx := context.Background()
	limit := ratelimit.Limit{PerMinute: 60}
	_, err = f.Allow(ctx, "client", limit)
	require.NoError(t, err)

	r.Pause()
	start := time.Now()
	d, err := f.Allow(ctx, "client", limit)
	require.NoError(t, err)
	assert.True(t, d.Allowed)
	first := time.Since(start)
	assert.GreaterOrEqual(t, first, 100*time.Millisecond)

	start = time.Now()
	for range 100 {
		d, err := f.Allow(ctx, "client", limit)
		require.NoError(t, err)
		assert.True(t, d.Allowed)
	}
	rest := time.Since(start)
	assert.Less(t, rest, 50*time.Millisecond, "requests waited for the hung primary")
	t.Logf("first decision %v, next 100 %v", first, rest)
	r.Resume()
	assert.Equal(t, []string{logOpenDown}, logs.lines())
}
