package logthrottle

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestLimiter(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	l := &Limiter{Interval: time.Second}
	steps := []struct {
		key  string
		at   time.Duration
		ok   bool
		held int
	}{
		{"a", 0, true, 0},
		{"a", 0, false, 0},
		{"a", 999 * time.Millisecond, false, 0},
		{"b", 500 * time.Millisecond, true, 0},
		{"a", time.Second, true, 2},
		{"a", 2 * time.Second, true, 0},
		{"b", 2 * time.Second, true, 0},
	}
	for i, st := range steps {
		ok, held := l.Allow(st.key, t0.Add(st.at))
		assert.Equal(t, st.ok, ok, "step %d", i)
		assert.Equal(t, st.held, held, "step %d", i)
	}
}

// TestLimiterBoundsKeys: past MaxKeys the keys are forgotten, so memory
// stays bounded whatever keys come.
func TestLimiterBoundsKeys(t *testing.T) {
	for _, tt := range []struct {
		name string
		l    *Limiter
		max  int
	}{
		{"default", &Limiter{Interval: time.Hour}, DefaultMaxKeys},
		{"MaxKeys", &Limiter{Interval: time.Hour, MaxKeys: 10}, 10},
		{"once per key", &Limiter{MaxKeys: 1000}, 1000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Now()
			for i := range 10 * tt.max {
				ok, _ := tt.l.Allow(fmt.Sprint(i), now)
				assert.True(t, ok)
			}
			assert.LessOrEqual(t, len(tt.l.next), tt.max)
			assert.LessOrEqual(t, len(tt.l.held), tt.max)
		})
	}
}

// TestLimiterOncePerKey: without an interval a key passes once, however
// much later it comes again.
func TestLimiterOncePerKey(t *testing.T) {
	var l Limiter
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	steps := []struct {
		key string
		at  time.Duration
		ok  bool
	}{
		{"a", 0, true},
		{"a", time.Hour, false},
		{"b", time.Hour, true},
		{"a", 24 * 365 * time.Hour, false},
	}
	for i, st := range steps {
		ok, _ := l.Allow(st.key, t0.Add(st.at))
		assert.Equal(t, st.ok, ok, "step %d", i)
	}
}

func TestLimiterConcurrent(t *testing.T) {
	l := &Limiter{Interval: time.Hour}
	now := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	passed := 0
	for range 100 {
		wg.Go(func() {
			if ok, _ := l.Allow("k", now); ok {
				mu.Lock()
				passed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 1, passed)
}
