package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/olympus/aegis"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/internal/testutil"
)

// logRecorder records a logger's lines (testutil.LogRecorder).
type logRecorder struct{ testutil.LogRecorder }

func (r *logRecorder) logger() *slog.Logger { return r.Logger() }
func (r *logRecorder) lines() []string      { return r.Records() }
func (r *logRecorder) text() string         { return r.String() }

func newFakeClock() *testutil.Clock { return testutil.NewClock(time.Unix(1_700_000_000, 0)) }

// fakeStore is a Store answering with fn (allowing when fn is nil) and
// counting calls.
type fakeStore struct {
	calls atomic.Int64
	fn    func(ctx context.Context, key string, limit Limit) (Decision, error)
}

func (s *fakeStore) Allow(ctx context.Context, key string, limit Limit) (Decision, error) {
	s.calls.Add(1)
	if s.fn == nil {
		return Decision{Allowed: true, Limit: limit, Remaining: limit.burst() - 1}, nil
	}
	return s.fn(ctx, key, limit)
}

// unavailable wraps err the way a store that could not decide does: it
// matches both ErrStoreUnavailable and err.
func unavailable(err error) error {
	return fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
}

// switchStore fails while down is set.
func switchStore(down *atomic.Bool) *fakeStore {
	return &fakeStore{fn: func(_ context.Context, _ string, l Limit) (Decision, error) {
		if down.Load() {
			return Decision{}, unavailable(errors.New("down"))
		}
		return Decision{Allowed: true, Limit: l}, nil
	}}
}

const (
	logOpenDown   = "WARN rate-limit store unavailable, deciding in memory"
	logClosedDown = "ERROR rate-limit store unavailable, refusing requests"
	logRecovered  = "INFO rate-limit store recovered"
)

func TestNewFailover(t *testing.T) {
	p, fb := &fakeStore{}, &fakeStore{}
	tests := []struct {
		name string
		cfg  FailoverConfig
		ok   bool
	}{
		{"no primary", FailoverConfig{Fallback: fb}, false},
		{"fail-open without fallback", FailoverConfig{Primary: p, Policy: FailOpen}, false},
		{"unknown policy", FailoverConfig{Primary: p, Fallback: fb, Policy: 7}, false},
		{"negative retry after", FailoverConfig{Primary: p, Policy: FailClosed, RetryAfter: -time.Second}, false},
		{"fail-open", FailoverConfig{Primary: p, Fallback: fb}, true},
		{"fail-closed without fallback", FailoverConfig{Primary: p, Policy: FailClosed}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := NewFailover(tt.cfg)
			if !tt.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, slog.Default(), f.log)
			assert.Equal(t, DefaultUnavailableRetryAfter, f.retryAfter)
			assert.Equal(t, DefaultFailoverCooldown, f.cooldown)
		})
	}
}

func TestFailurePolicyString(t *testing.T) {
	assert.Equal(t, "fail-open", FailOpen.String())
	assert.Equal(t, "fail-closed", FailClosed.String())
	assert.Equal(t, "FailurePolicy(9)", FailurePolicy(9).String())
}

func TestUnavailableError(t *testing.T) {
	cause := errors.New("connection refused")
	err := unavailableError(3*time.Second, cause)
	assert.ErrorIs(t, err, ErrStoreUnavailable)
	assert.ErrorIs(t, err, cause)
	var r *aegis.Refusal
	require.ErrorAs(t, err, &r)
	assert.Equal(t, 3*time.Second, r.RetryAfter)
	assert.Equal(t, aegis.ReasonRateLimitUnavailable, r.Reason)
	assert.Equal(t, aegis.ClassUnavailable, r.Class)
	assert.Equal(t, "aegis: rate_limit_unavailable: The rate limiter cannot decide now; try again later: ratelimit: store unavailable: connection refused", err.Error())
}

// TestFailoverCooldown: after a failure the primary is left alone for the
// cooldown, then tried by exactly one request at a time.
func TestFailoverCooldown(t *testing.T) {
	var down atomic.Bool
	primary := switchStore(&down)
	clock := newFakeClock()
	logs := &logRecorder{}
	f, err := NewFailover(FailoverConfig{
		Primary: primary, Fallback: &fakeStore{}, Logger: logs.logger(),
		Cooldown: time.Second, Now: clock.Now,
	})
	require.NoError(t, err)
	limit := Limit{PerMinute: 60}
	allowN := func(n int) {
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				d, err := f.Allow(context.Background(), "k", limit)
				assert.NoError(t, err)
				assert.True(t, d.Allowed)
			})
		}
		wg.Wait()
	}

	down.Store(true)
	allowN(1)
	require.Equal(t, int64(1), primary.calls.Load())
	clock.Advance(999 * time.Millisecond)
	allowN(50)
	assert.Equal(t, int64(1), primary.calls.Load(), "tried during cooldown")

	clock.Advance(time.Millisecond)
	allowN(50)
	assert.Equal(t, int64(2), primary.calls.Load(), "not exactly one probe")
	allowN(50)
	assert.Equal(t, int64(2), primary.calls.Load(), "a failed probe starts another cooldown")

	down.Store(false)
	clock.Advance(500 * time.Millisecond)
	allowN(10)
	assert.Equal(t, int64(2), primary.calls.Load())
	clock.Advance(500 * time.Millisecond)
	allowN(1)
	assert.Equal(t, int64(3), primary.calls.Load())
	allowN(50)
	assert.Equal(t, int64(53), primary.calls.Load(), "primary not used after recovery")
	assert.Equal(t, []string{logOpenDown, logRecovered}, logs.lines())
}

// TestFailoverLogsOnce: many concurrent requests, one record per change.
func TestFailoverLogsOnce(t *testing.T) {
	for _, policy := range []FailurePolicy{FailOpen, FailClosed} {
		t.Run(policy.String(), func(t *testing.T) {
			var down atomic.Bool
			logs := &logRecorder{}
			fallback := &fakeStore{}
			f, err := NewFailover(FailoverConfig{
				Primary: switchStore(&down), Fallback: fallback, Policy: policy,
				Logger: logs.logger(), Cooldown: -1,
			})
			require.NoError(t, err)
			run := func() (errs int64) {
				var n atomic.Int64
				var wg sync.WaitGroup
				for range 8 {
					wg.Go(func() {
						for range 200 {
							if _, err := f.Allow(context.Background(), "k", Limit{PerMinute: 60}); err != nil {
								assert.ErrorIs(t, err, ErrStoreUnavailable)
								n.Add(1)
							}
						}
					})
				}
				wg.Wait()
				return n.Load()
			}
			want := []string{logOpenDown, logRecovered}
			if policy == FailClosed {
				want[0] = logClosedDown
			}

			assert.Zero(t, run())
			down.Store(true)
			errs := run()
			if policy == FailOpen {
				assert.Zero(t, errs)
				assert.Equal(t, int64(1600), fallback.calls.Load())
			} else {
				assert.Equal(t, int64(1600), errs)
			}
			down.Store(false)
			assert.Zero(t, run())
			assert.Equal(t, want, logs.lines())
		})
	}
}

// TestFailoverStaleAnswers: an answer to a request that started before a
// change of state does not change it back.
func TestFailoverStaleAnswers(t *testing.T) {
	var down atomic.Bool
	release := make(chan struct{})
	entered := make(chan struct{})
	primary := &fakeStore{fn: func(_ context.Context, key string, l Limit) (Decision, error) {
		if key == "slow" {
			entered <- struct{}{}
			<-release
		}
		if down.Load() {
			return Decision{}, unavailable(errors.New("down"))
		}
		return Decision{Allowed: true, Limit: l}, nil
	}}
	logs := &logRecorder{}
	f, err := NewFailover(FailoverConfig{
		Primary: primary, Fallback: &fakeStore{}, Logger: logs.logger(), Cooldown: -1,
	})
	require.NoError(t, err)
	ctx := context.Background()
	limit := Limit{PerMinute: 60}
	slow := func() <-chan struct{} {
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, err := f.Allow(ctx, "slow", limit)
			assert.NoError(t, err)
		}()
		<-entered
		return done
	}

	// A success started while healthy, answered after the failure.
	done := slow()
	down.Store(true)
	_, err = f.Allow(ctx, "k", limit)
	require.NoError(t, err)
	down.Store(false)
	release <- struct{}{}
	<-done
	assert.Equal(t, uint64(1), f.state.Load(), "stale success recovered")
	assert.Equal(t, []string{logOpenDown}, logs.lines())

	// A failure started while down, answered after recovery.
	down.Store(true)
	done = slow()
	down.Store(false)
	_, err = f.Allow(ctx, "k", limit)
	require.NoError(t, err)
	down.Store(true)
	release <- struct{}{}
	<-done
	assert.Equal(t, uint64(2), f.state.Load(), "stale failure marked the store down")
	assert.Equal(t, []string{logOpenDown, logRecovered}, logs.lines())
}

// TestFailoverCallerGaveUp: a request cancelled by its caller is no sign
// of a failed store.
func TestFailoverCallerGaveUp(t *testing.T) {
	for _, policy := range []FailurePolicy{FailOpen, FailClosed} {
		t.Run(policy.String(), func(t *testing.T) {
			primary := &fakeStore{fn: func(ctx context.Context, _ string, _ Limit) (Decision, error) {
				return Decision{}, unavailable(ctx.Err())
			}}
			logs := &logRecorder{}
			f, err := NewFailover(FailoverConfig{
				Primary: primary, Fallback: &fakeStore{}, Policy: policy, Logger: logs.logger(),
			})
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_, err = f.Allow(ctx, "k", Limit{PerMinute: 60})
			if policy == FailClosed {
				assert.ErrorIs(t, err, ErrStoreUnavailable)
			} else {
				assert.NoError(t, err)
			}
			assert.Empty(t, logs.lines())
			assert.Equal(t, uint64(0), f.state.Load())
		})
	}
}

// TestFailoverFallbackFails: under FailOpen, nothing is refused because a
// store failed, and no error escapes.
func TestFailoverFallbackFails(t *testing.T) {
	failing := &fakeStore{fn: func(context.Context, string, Limit) (Decision, error) {
		return Decision{}, unavailable(errors.New("down"))
	}}
	f, err := NewFailover(FailoverConfig{
		Primary: failing, Fallback: failing, Logger: (&logRecorder{}).logger(),
	})
	require.NoError(t, err)
	d, err := f.Allow(context.Background(), "k", Limit{PerMinute: 60})
	require.NoError(t, err)
	assert.True(t, d.Allowed)
	assert.Equal(t, Limit{PerMinute: 60}, d.Limit)
}

// TestFailoverInvalidLimit: the caller's error, no store asked, no log.
func TestFailoverInvalidLimit(t *testing.T) {
	primary, fallback := &fakeStore{}, &fakeStore{}
	logs := &logRecorder{}
	f, err := NewFailover(FailoverConfig{Primary: primary, Fallback: fallback, Logger: logs.logger()})
	require.NoError(t, err)
	_, err = f.Allow(context.Background(), "k", Limit{PerMinute: 0})
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrStoreUnavailable)
	assert.Zero(t, primary.calls.Load()+fallback.calls.Load())
	assert.Empty(t, logs.lines())
}
