// Package redisstore is a ratelimit.Store kept in Redis, so that every
// replica of an API shares its clients' counts. It is a nested module
// (github.com/olympus/aegis/ratelimit/redisstore) so that go-redis enters
// only the builds of programs that use it.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/olympus/aegis/ratelimit"
)

// Defaults of Config.
const (
	// DefaultPrefix is put before every client key in Redis.
	DefaultPrefix = "aegis:ratelimit:"
	// DefaultTimeout bounds one decision against Redis.
	DefaultTimeout = 100 * time.Millisecond
)

// Config configures a Store.
type Config struct {
	// Client talks to Redis: a *redis.Client, *redis.ClusterClient,
	// *redis.Ring or a failover client. It is required; the store never
	// closes it.
	//
	// Create it with ContextTimeoutEnabled: true so that go-redis itself
	// stops at Timeout; otherwise each decision waits for Redis on its own
	// goroutine, which costs a little more, since go-redis would wait up to
	// its ReadTimeout (3s by default) for a hung server.
	Client redis.UniversalClient
	// Prefix is put before every key; empty means DefaultPrefix.
	Prefix string
	// Timeout bounds one decision, retries included; zero means
	// DefaultTimeout.
	Timeout time.Duration
	// Now, when set, replaces the Redis server's clock: for tests with a
	// fake clock. Leave it nil in production, so that replicas with skewed
	// clocks agree.
	Now func() time.Time
}

// Store is a ratelimit.Store shared by every replica that uses the same Redis.
// Each decision is one atomic Lua script run with EVALSHA (EVAL when the
// server does not know the script yet), timed by the Redis server's own
// clock so that replicas with skewed clocks agree. A client costs one key
// holding its theoretical arrival time in microseconds; the key expires by
// itself once the client's bucket is full again.
//
// The interval of a limit is 60s/PerMinute in whole microseconds, so for a
// PerMinute that does not divide 60,000,000 it is up to a microsecond
// shorter than the in-memory one (ratelimit.MemoryStore).
//
// Any failure to decide (connection refused, timeout, script error) is
// returned as an error matching ratelimit.ErrStoreUnavailable with
// errors.Is.
type Store struct {
	client  redis.UniversalClient
	prefix  string
	timeout time.Duration
	now     func() time.Time
	// inline is true when go-redis honours the context deadline itself, so
	// no watcher goroutine is needed.
	inline bool
}

var _ ratelimit.Store = (*Store)(nil)

// New returns a Store, or an error for an unusable config. It does not
// contact Redis.
func New(cfg Config) (*Store, error) {
	if cfg.Client == nil {
		return nil, errors.New("redisstore: Config.Client is required")
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("redisstore: Config.Timeout is negative: %v", cfg.Timeout)
	}
	s := &Store{
		client:  cfg.Client,
		prefix:  cfg.Prefix,
		timeout: cfg.Timeout,
		now:     cfg.Now,
		inline:  honoursContextDeadline(cfg.Client),
	}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	return s, nil
}

// honoursContextDeadline reports whether go-redis stops a command at the
// context's deadline: only with ContextTimeoutEnabled and read and write
// deadlines not disabled (-2, stored as -1 once normalised).
func honoursContextDeadline(c redis.UniversalClient) bool {
	var enabled bool
	var read, write time.Duration
	switch c := c.(type) {
	case *redis.Client:
		o := c.Options()
		enabled, read, write = o.ContextTimeoutEnabled, o.ReadTimeout, o.WriteTimeout
	case *redis.ClusterClient:
		o := c.Options()
		enabled, read, write = o.ContextTimeoutEnabled, o.ReadTimeout, o.WriteTimeout
	case *redis.Ring:
		o := c.Options()
		enabled, read, write = o.ContextTimeoutEnabled, o.ReadTimeout, o.WriteTimeout
	default:
		return false
	}
	return enabled && read >= 0 && write >= 0
}

// gcraScript is the GCRA of ratelimit.MemoryStore (gcra() in the
// ratelimit package) in microseconds of the server's clock. KEYS[1] holds the theoretical arrival time (TAT); ARGV[1] is the
// interval, ARGV[2] the burst and ARGV[3], when not empty, the time to use
// instead of the server's (Config.Now). It stores the new TAT only when the
// request is allowed, expiring when the bucket is full again, and returns
// {allowed (0 or 1), retry after, reset, remaining, now}.
//
// Lua numbers are doubles: every value here stays below 2^53 (a
// microsecond timestamp is about 2^51, burst*interval at most 3.6e15), so
// the arithmetic is exact. Numbers are written with %.0f because Redis
// would turn large ones into exponent notation.
var gcraScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local now = tonumber(ARGV[3])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or 0
if tat < now then tat = now end
local nxt = tat + interval
local allow_at = nxt - burst * interval
if now < allow_at then
  return {0, allow_at - now, tat - now, 0, now}
end
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', string.format('%.0f', math.ceil((nxt - now) / 1000)))
return {1, 0, nxt - now, math.floor((now - allow_at) / interval), now}
`)

// Allow charges one request to key under limit. The key may be any
// string; Redis keys are binary safe.
func (s *Store) Allow(ctx context.Context, key string, limit ratelimit.Limit) (ratelimit.Decision, error) {
	d, _, err := s.allow(ctx, key, limit)
	return d, err
}

// allow is Allow that also returns the server's clock (since the Unix
// epoch) at the decision, for tests comparing with ratelimit.MemoryStore.
func (s *Store) allow(ctx context.Context, key string, limit ratelimit.Limit) (ratelimit.Decision, time.Duration, error) {
	if err := limit.Validate(); err != nil {
		return ratelimit.Decision{}, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if s.inline {
		return s.eval(ctx, key, limit)
	}
	type result struct {
		d   ratelimit.Decision
		now time.Duration
		err error
	}
	done := make(chan result, 1)
	go func() {
		d, now, err := s.eval(ctx, key, limit)
		done <- result{d, now, err}
	}()
	select {
	case r := <-done:
		return r.d, r.now, r.err
	case <-ctx.Done():
		// The goroutine ends when go-redis gives up; its context is
		// already cancelled, so it starts nothing new.
		return ratelimit.Decision{}, 0, unavailable(ctx.Err())
	}
}

// eval runs the script and converts its reply.
func (s *Store) eval(ctx context.Context, key string, limit ratelimit.Limit) (ratelimit.Decision, time.Duration, error) {
	interval := int64(time.Minute/time.Microsecond) / int64(limit.PerMinute)
	now := ""
	if s.now != nil {
		now = strconv.FormatInt(s.now().UnixMicro(), 10)
	}
	vals, err := gcraScript.Run(ctx, s.client, []string{s.prefix + key}, interval, burst(limit), now).Slice()
	if err != nil {
		return ratelimit.Decision{}, 0, unavailable(err)
	}
	var n [5]int64
	if len(vals) != len(n) {
		return ratelimit.Decision{}, 0, unavailable(fmt.Errorf("script returned %d values, not %d", len(vals), len(n)))
	}
	for i, v := range vals {
		x, ok := v.(int64)
		if !ok {
			return ratelimit.Decision{}, 0, unavailable(fmt.Errorf("script returned %T, not an integer", v))
		}
		n[i] = x
	}
	d := ratelimit.Decision{
		Allowed:    n[0] == 1,
		Limit:      limit,
		RetryAfter: time.Duration(n[1]) * time.Microsecond,
		Reset:      time.Duration(n[2]) * time.Microsecond,
		Remaining:  int(n[3]),
	}
	return d, time.Duration(n[4]) * time.Microsecond, nil
}

// burst is how many requests limit lets through at once: Burst, or
// PerMinute when Burst is zero (ratelimit.Limit's rule).
func burst(limit ratelimit.Limit) int {
	if limit.Burst > 0 {
		return limit.Burst
	}
	return limit.PerMinute
}

// unavailable wraps a Redis failure so that it matches both
// ratelimit.ErrStoreUnavailable and the cause.
func unavailable(err error) error {
	return fmt.Errorf("%w: redis: %w", ratelimit.ErrStoreUnavailable, err)
}
