package ratelimit_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/internal/testutil"
	"github.com/olympus/aegis/ratelimit"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func newFakeClock() *testutil.Clock { return testutil.NewClock(t0) }

// TestSixtyPerMinute: 60 of 100 immediate requests pass; then one more
// each second.
func TestSixtyPerMinute(t *testing.T) {
	clk := newFakeClock()
	s := ratelimit.NewMemoryStore(ratelimit.MemoryConfig{Now: clk.Now})
	limit := ratelimit.Limit{PerMinute: 60}
	allowed := 0
	for i := range 100 {
		d, err := s.Allow(context.Background(), "worker", limit)
		require.NoError(t, err)
		if d.Allowed {
			allowed++
			assert.Equal(t, 59-i, d.Remaining, "request %d", i)
			assert.Equal(t, time.Duration(i+1)*time.Second, d.Reset)
		} else {
			assert.Equal(t, time.Second, d.RetryAfter, "request %d", i)
			assert.Zero(t, d.Remaining)
		}
	}
	assert.Equal(t, 60, allowed)
	for range 5 {
		clk.Advance(time.Second)
		d, err := s.Allow(context.Background(), "worker", limit)
		require.NoError(t, err)
		assert.True(t, d.Allowed, "one more after each second")
		d, err = s.Allow(context.Background(), "worker", limit)
		require.NoError(t, err)
		assert.False(t, d.Allowed, "but only one")
	}
	other, err := s.Allow(context.Background(), "other", limit)
	require.NoError(t, err)
	assert.True(t, other.Allowed, "clients are independent")
}

func TestBurst(t *testing.T) {
	tests := []struct {
		limit    ratelimit.Limit
		allowed  int
		interval time.Duration
	}{
		{limit: ratelimit.Limit{PerMinute: 600}, allowed: 600, interval: 100 * time.Millisecond},
		{limit: ratelimit.Limit{PerMinute: 600, Burst: 10}, allowed: 10, interval: 100 * time.Millisecond},
		{limit: ratelimit.Limit{PerMinute: 1, Burst: 3}, allowed: 3, interval: time.Minute},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%+v", tc.limit), func(t *testing.T) {
			clk := newFakeClock()
			s := ratelimit.NewMemoryStore(ratelimit.MemoryConfig{Now: clk.Now})
			allowed := 0
			var last ratelimit.Decision
			for range tc.allowed * 2 {
				d, err := s.Allow(context.Background(), "c", tc.limit)
				require.NoError(t, err)
				if d.Allowed {
					allowed++
				} else {
					last = d
				}
			}
			assert.Equal(t, tc.allowed, allowed)
			assert.Equal(t, tc.interval, last.RetryAfter)
			clk.Advance(tc.interval)
			d, err := s.Allow(context.Background(), "c", tc.limit)
			require.NoError(t, err)
			assert.True(t, d.Allowed)
		})
	}
}

func TestInvalidLimits(t *testing.T) {
	s := ratelimit.NewMemoryStore(ratelimit.MemoryConfig{})
	for _, l := range []ratelimit.Limit{{}, {PerMinute: -1}, {PerMinute: 10, Burst: -1}, {PerMinute: 1 << 40}} {
		_, err := s.Allow(context.Background(), "c", l)
		assert.Error(t, err, "%+v", l)
	}
	assert.Zero(t, s.Len())
}

func TestMemoryConcurrentExactCount(t *testing.T) {
	s := ratelimit.NewMemoryStore(ratelimit.MemoryConfig{Now: newFakeClock().Now})
	var wg sync.WaitGroup
	var allowed atomic.Int64
	for range 10000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := s.Allow(context.Background(), "busy-client", ratelimit.Limit{PerMinute: 600})
			assert.NoError(t, err)
			if d.Allowed {
				allowed.Add(1)
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int64(600), allowed.Load())
}

// TestSweepKeepsDebt: only full buckets are dropped; a client in debt is
// never forgotten, however many others come and go.
func TestSweepKeepsDebt(t *testing.T) {
	clk := newFakeClock()
	s := ratelimit.NewMemoryStore(ratelimit.MemoryConfig{Now: clk.Now, Shards: 1})
	slow := ratelimit.Limit{PerMinute: 1}
	d, err := s.Allow(context.Background(), "debtor", slow)
	require.NoError(t, err)
	require.True(t, d.Allowed)
	for i := range 5000 {
		_, err := s.Allow(context.Background(), fmt.Sprintf("passer-%d", i), ratelimit.Limit{PerMinute: 6000})
		require.NoError(t, err)
		clk.Advance(time.Millisecond) // each passer's bucket is full again 10 ms later
	}
	assert.Less(t, s.Len(), 2000, "full buckets were swept as the store was used (%d left)", s.Len())
	d, err = s.Allow(context.Background(), "debtor", slow)
	require.NoError(t, err)
	assert.False(t, d.Allowed, "the debtor's debt survived the sweeps")

	clk.Advance(time.Minute)
	s.Sweep()
	assert.Zero(t, s.Len())
}

// TestMemoryShrinksBack: a million clients, then their buckets refill: the
// entries go and the maps are rebuilt smaller, so the heap comes back down.
func TestMemoryShrinksBack(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a million entries")
	}
	clk := newFakeClock()
	s := ratelimit.NewMemoryStore(ratelimit.MemoryConfig{Now: clk.Now})
	base := heapInUse()
	for i := range 1_000_000 {
		_, err := s.Allow(context.Background(), fmt.Sprintf("client-%07d", i), ratelimit.Limit{PerMinute: 60})
		require.NoError(t, err)
	}
	require.Equal(t, 1_000_000, s.Len())
	full := heapInUse()
	clk.Advance(2 * time.Second)
	s.Sweep()
	assert.Zero(t, s.Len())
	after := heapInUse()
	t.Logf("heap: %d MiB before, %d MiB with 1M clients, %d MiB after refill", base>>20, full>>20, after>>20)
	assert.Less(t, int64(after)-int64(base), (int64(full)-int64(base))/4, "the heap shrank back")
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestMemoryBounded: clients with debt beyond MaxEntries take the place of
// clients seen once, not of the client making requests all along.
func TestMemoryBounded(t *testing.T) {
	clk := newFakeClock()
	s := ratelimit.NewMemoryStore(ratelimit.MemoryConfig{Now: clk.Now, MaxEntries: 100})
	slow := ratelimit.Limit{PerMinute: 1, Burst: 1_000_000}
	debtor := 0
	for i := range 10_000 {
		d, err := s.Allow(context.Background(), fmt.Sprintf("once-%d", i), slow)
		require.NoError(t, err)
		require.True(t, d.Allowed)
		if i%50 == 0 { // more often than the cache turns over
			d, err := s.Allow(context.Background(), "debtor", slow)
			require.NoError(t, err)
			require.True(t, d.Allowed)
			debtor++
		}
		require.LessOrEqual(t, s.Len(), 100)
	}
	assert.Equal(t, 100, s.Len())
	d, err := s.Allow(context.Background(), "debtor", slow)
	require.NoError(t, err)
	assert.Equal(t, 1_000_000-debtor-1, d.Remaining, "the debtor's debt was kept throughout")
}
