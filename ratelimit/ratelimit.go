// Package ratelimit decides whether a client may make one more request
// under a per-minute limit, in memory on one instance (MemoryStore) or
// across replicas through Redis (redisstore.Store, in the nested module
// github.com/olympus/aegis/ratelimit/redisstore), with the limit looked up from
// a Source (Ory Hydra's client metadata, a static map, a token claim, a
// chain with a default).
//
// The algorithm is GCRA (the generic cell rate algorithm, a token bucket
// without a refill loop): a limit of N per minute with burst B lets B
// requests through at once, then one every minute/N. Each client costs one
// timestamp, its theoretical arrival time; a client whose bucket is full
// again needs no state at all.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Limit is an allowance per minute.
type Limit struct {
	// PerMinute is the sustained rate; it must be positive.
	PerMinute int
	// Burst is how many requests may pass at once; zero means PerMinute.
	Burst int
}

// interval is the time one request costs.
func (l Limit) interval() time.Duration { return time.Minute / time.Duration(l.PerMinute) }

func (l Limit) burst() int {
	if l.Burst > 0 {
		return l.Burst
	}
	return l.PerMinute
}

// Validate reports a limit no store can apply.
func (l Limit) Validate() error {
	if l.PerMinute <= 0 {
		return fmt.Errorf("ratelimit: PerMinute must be positive, not %d", l.PerMinute)
	}
	if l.PerMinute > maxPerMinute {
		return fmt.Errorf("ratelimit: PerMinute over %d", maxPerMinute)
	}
	if l.Burst < 0 || l.Burst > maxPerMinute {
		return fmt.Errorf("ratelimit: Burst out of range: %d", l.Burst)
	}
	return nil
}

// maxPerMinute keeps the interval at a microsecond or more (Redis works
// in microseconds).
const maxPerMinute = 60_000_000

// Decision is a store's answer for one request.
type Decision struct {
	// Allowed says whether the request may pass.
	Allowed bool
	// Limit is the limit applied.
	Limit Limit
	// Remaining is how many more requests could pass right now.
	Remaining int
	// RetryAfter is, for a refused request, how long until one would pass.
	RetryAfter time.Duration
	// Reset is how long until the bucket is full again.
	Reset time.Duration
}

// Store applies limits. Implementations are safe for concurrent use.
type Store interface {
	// Allow charges one request to key under limit and says whether it
	// may pass. An error means the store could not decide.
	Allow(ctx context.Context, key string, limit Limit) (Decision, error)
}

// ErrStoreUnavailable marks a store that could not decide (Redis down).
var ErrStoreUnavailable = errors.New("ratelimit: store unavailable")

// gcra computes a decision from the stored theoretical arrival time tat
// (zero or in the past: a full bucket) at time now. It returns the new tat
// to store when the request is allowed.
func gcra(now, tat time.Duration, l Limit) (Decision, time.Duration) {
	interval := l.interval()
	burst := time.Duration(l.burst())
	if tat < now {
		tat = now
	}
	next := tat + interval
	allowAt := next - burst*interval
	d := Decision{Limit: l}
	if now < allowAt {
		d.RetryAfter = allowAt - now
		d.Reset = tat - now
		d.Remaining = 0
		return d, tat
	}
	d.Allowed = true
	d.Reset = next - now
	d.Remaining = int((now - allowAt) / interval)
	return d, next
}
