package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/olympus/aegis"
)

// FailurePolicy says what a Failover does while its primary store cannot
// decide.
type FailurePolicy int

const (
	// FailOpen decides with the fallback store (typically a MemoryStore,
	// so each replica limits on its own) until the primary answers again.
	// A request is never refused because a store failed.
	FailOpen FailurePolicy = iota
	// FailClosed refuses every request with an unavailable *aegis.Refusal until the
	// primary answers again.
	FailClosed
)

// String returns "fail-open" or "fail-closed".
func (p FailurePolicy) String() string {
	switch p {
	case FailOpen:
		return "fail-open"
	case FailClosed:
		return "fail-closed"
	}
	return fmt.Sprintf("FailurePolicy(%d)", int(p))
}

// Defaults of FailoverConfig.
const (
	// DefaultUnavailableRetryAfter is the retry hint of FailClosed refusals.
	DefaultUnavailableRetryAfter = 5 * time.Second
	// DefaultFailoverCooldown is how long a failed primary is left alone.
	DefaultFailoverCooldown = time.Second
)

// FailoverConfig configures a Failover.
type FailoverConfig struct {
	// Primary is the store that decides while it can, e.g. a redisstore.Store;
	// required.
	Primary Store
	// Fallback decides under FailOpen while Primary cannot; required for
	// FailOpen, unused under FailClosed.
	Fallback Store
	// Policy is FailOpen (the zero value) or FailClosed.
	Policy FailurePolicy
	// Logger receives one record per change of state; nil means
	// slog.Default().
	Logger *slog.Logger
	// RetryAfter is the hint carried by FailClosed refusals; zero means
	// DefaultUnavailableRetryAfter.
	RetryAfter time.Duration
	// Cooldown is how long after a failure the primary is skipped before
	// one request tries it again (so that a dead primary does not cost
	// every request its timeout); zero means DefaultFailoverCooldown and a
	// negative value tries the primary on every request.
	Cooldown time.Duration
	// Now is the clock for Cooldown; nil means time.Now. For tests.
	Now func() time.Time
}

// Failover is a Store that decides with a primary store and, while the
// primary fails, falls back according to its FailurePolicy. It logs once
// when it switches away from the primary (WARN under FailOpen, ERROR under
// FailClosed) and once when the primary has recovered (INFO). It is safe
// for concurrent use.
type Failover struct {
	primary    Store
	fallback   Store
	policy     FailurePolicy
	log        *slog.Logger
	retryAfter time.Duration
	cooldown   time.Duration
	now        func() time.Time
	epoch      time.Time

	// state counts changes of state: even means the primary is healthy,
	// odd that it failed. A request changes it only from the value it saw
	// when it started, so a slow answer from before a change cannot undo
	// it and each change is logged exactly once.
	state atomic.Uint64
	// probeAt is when, in nanoseconds since epoch, the failed primary may
	// be tried again; the request that moves it forward is the one trying.
	probeAt atomic.Int64
}

var _ Store = (*Failover)(nil)

// NewFailover returns a Failover, or an error for an unusable config.
func NewFailover(cfg FailoverConfig) (*Failover, error) {
	if cfg.Primary == nil {
		return nil, errors.New("ratelimit: FailoverConfig.Primary is required")
	}
	switch cfg.Policy {
	case FailOpen:
		if cfg.Fallback == nil {
			return nil, errors.New("ratelimit: FailoverConfig.Fallback is required for FailOpen")
		}
	case FailClosed:
	default:
		return nil, fmt.Errorf("ratelimit: unknown %v", cfg.Policy)
	}
	if cfg.RetryAfter < 0 {
		return nil, fmt.Errorf("ratelimit: FailoverConfig.RetryAfter is negative: %v", cfg.RetryAfter)
	}
	f := &Failover{
		primary:    cfg.Primary,
		fallback:   cfg.Fallback,
		policy:     cfg.Policy,
		log:        cfg.Logger,
		retryAfter: cfg.RetryAfter,
		cooldown:   cfg.Cooldown,
		now:        cfg.Now,
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	if f.retryAfter == 0 {
		f.retryAfter = DefaultUnavailableRetryAfter
	}
	if f.cooldown == 0 {
		f.cooldown = DefaultFailoverCooldown
	}
	if f.now == nil {
		f.now = time.Now
	}
	f.epoch = f.now()
	return f, nil
}

// unavailableError is the error of a FailClosed refusal: the *aegis.Refusal of
// class unavailable (reason rate_limit_unavailable) every part of Aegis
// uses, matching ErrStoreUnavailable and cause with errors.Is.
func unavailableError(retryAfter time.Duration, cause error) error {
	err := ErrStoreUnavailable
	if cause != nil && !errors.Is(cause, ErrStoreUnavailable) {
		err = fmt.Errorf("%w: %w", ErrStoreUnavailable, cause)
	} else if cause != nil {
		err = cause
	}
	return aegis.Unavailable(aegis.ReasonRateLimitUnavailable, retryAfter, err)
}

// errPrimarySkipped is the cause of a FailClosed refusal while the failed
// primary is left alone.
var errPrimarySkipped = fmt.Errorf("%w: not retried during cooldown after a failure", ErrStoreUnavailable)

// Allow decides with the primary store, or without it per the policy. An
// invalid limit is an error (no store is asked). Under FailOpen no other
// error is returned: if the fallback fails too, the request is allowed.
// Under FailClosed a primary failure is an unavailable *aegis.Refusal
// (matching ErrStoreUnavailable), returned
// with a refusing Decision carrying the same RetryAfter.
func (f *Failover) Allow(ctx context.Context, key string, limit Limit) (Decision, error) {
	if err := limit.Validate(); err != nil {
		return Decision{}, err
	}
	seen := f.state.Load()
	if seen%2 == 1 && !f.tryProbe() {
		return f.degraded(ctx, key, limit, errPrimarySkipped)
	}
	d, err := f.primary.Allow(ctx, key, limit)
	if err == nil {
		if seen%2 == 1 && f.state.CompareAndSwap(seen, seen+1) {
			f.log.LogAttrs(ctx, slog.LevelInfo, "rate-limit store recovered",
				slog.String("policy", f.policy.String()))
		}
		return d, nil
	}
	// A request given up by its caller says nothing about the store.
	if ctx.Err() == nil && seen%2 == 0 {
		// The probe time is set before the state turns odd, so that no
		// request sees a failed primary with a stale one.
		f.probeAt.Store(int64(f.now().Sub(f.epoch) + f.cooldown))
		if f.state.CompareAndSwap(seen, seen+1) {
			if f.policy == FailOpen {
				f.log.LogAttrs(ctx, slog.LevelWarn, "rate-limit store unavailable, deciding in memory",
					slog.String("policy", f.policy.String()), slog.Any("error", err))
			} else {
				f.log.LogAttrs(ctx, slog.LevelError, "rate-limit store unavailable, refusing requests",
					slog.String("policy", f.policy.String()), slog.Any("error", err))
			}
		}
	}
	return f.degraded(ctx, key, limit, err)
}

// tryProbe reports whether this request is the one to try the failed
// primary again, after the cooldown.
func (f *Failover) tryProbe() bool {
	if f.cooldown < 0 {
		return true
	}
	at := f.probeAt.Load()
	now := int64(f.now().Sub(f.epoch))
	return now >= at && f.probeAt.CompareAndSwap(at, now+int64(f.cooldown))
}

// degraded decides without the primary.
func (f *Failover) degraded(ctx context.Context, key string, limit Limit, cause error) (Decision, error) {
	if f.policy == FailClosed {
		return Decision{Limit: limit, RetryAfter: f.retryAfter},
			unavailableError(f.retryAfter, cause)
	}
	d, err := f.fallback.Allow(ctx, key, limit)
	if err != nil {
		return Decision{Allowed: true, Limit: limit}, nil
	}
	return d, nil
}
