// Package rediscache is an introspect.SharedCache kept in Redis: the
// replicas of an API that share it introspect each opaque token once
// between them, and a drop made on one reaches all of them through Redis
// pub/sub. It is a nested module
// (github.com/olympus/aegis/introspect/rediscache) so that go-redis enters
// only the builds of programs that use it.
//
// Answers are stored under the SHA-256 of their token, never the token,
// with the TTL the introspect.Client gives (never past the token's exp;
// inactive answers for the negative TTL). Whoever can write to this Redis
// can vouch for any token: give Aegis a Redis user of its own (ACL) and TLS
// where the network is not trusted.
package rediscache

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/olympus/aegis/introspect"
)

// Defaults of Config.
const (
	// DefaultPrefix is put before every key and the drop channel. Its
	// hash tag keeps every key in one slot of a Redis Cluster, as the
	// store's scripts need.
	DefaultPrefix = "{aegis:introspect}:"
	// DefaultTimeout bounds one operation against Redis.
	DefaultTimeout = 100 * time.Millisecond
	// healthInterval is how long the drop watcher waits for a message
	// before it pings Redis, to notice a connection that died silently.
	healthInterval = 15 * time.Second
	// maxBackoff bounds the wait between two attempts to resubscribe.
	maxBackoff = 2 * time.Second
)

// Config configures a Cache.
type Config struct {
	// Client talks to Redis: a *redis.Client, *redis.ClusterClient,
	// *redis.Ring or a failover client. It is required; the Cache never
	// closes it. Create it with ContextTimeoutEnabled: true so that
	// go-redis itself stops at Timeout.
	Client redis.UniversalClient
	// Prefix is put before every key and the drop channel; empty means
	// DefaultPrefix. Replicas sharing answers use the same prefix. In a
	// Redis Cluster it must hold a hash tag ({…}).
	Prefix string
	// Timeout bounds each Get, Set and Drop; zero means DefaultTimeout.
	Timeout time.Duration
	// Logger receives the watcher's connection losses and recoveries;
	// default slog.Default().
	Logger *slog.Logger
}

// Cache is an introspect.SharedCache in Redis. It is safe for concurrent
// use. Close stops its drop watcher.
type Cache struct {
	client  redis.UniversalClient
	prefix  string
	timeout time.Duration
	log     *slog.Logger

	mu       sync.Mutex
	watchers map[int]func(introspect.SharedDrop)
	nextID   int
	cancel   context.CancelFunc // stops the watcher; nil until the first Watch
	done     chan struct{}      // closed when the watcher has ended
	closed   bool
}

var _ introspect.SharedCache = (*Cache)(nil)

// New returns a Cache, or an error for an unusable config. It does not
// contact Redis.
func New(cfg Config) (*Cache, error) {
	if cfg.Client == nil {
		return nil, errors.New("rediscache: Config.Client is required")
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("rediscache: Config.Timeout is negative: %v", cfg.Timeout)
	}
	c := &Cache{client: cfg.Client, prefix: cfg.Prefix, timeout: cfg.Timeout, log: cfg.Logger, watchers: map[int]func(introspect.SharedDrop){}}
	if c.prefix == "" {
		c.prefix = DefaultPrefix
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	return c, nil
}

func (c *Cache) answerKey(member string) string { return c.prefix + "t:" + member }
func (c *Cache) genKey() string                 { return c.prefix + "gen" }
func (c *Cache) subjectKey(sub string) string   { return c.prefix + "s:" + sub }
func (c *Cache) clientKey(id string) string     { return c.prefix + "c:" + id }
func (c *Cache) channel() string                { return c.prefix + "drops" }

// Get implements introspect.SharedCache in one round trip.
func (c *Cache) Get(ctx context.Context, key [32]byte) (introspect.SharedEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	answerKey := c.answerKey(hex.EncodeToString(key[:]))
	var answer *redis.StringCmd
	var ttl *redis.DurationCmd
	var gen *redis.StringCmd
	_, err := c.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		answer = p.Get(ctx, answerKey)
		ttl = p.PTTL(ctx, answerKey)
		gen = p.Get(ctx, c.genKey())
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return introspect.SharedEntry{}, fmt.Errorf("rediscache: get: %w", err)
	}
	var e introspect.SharedEntry
	if e.Gen, err = generation(gen); err != nil {
		return introspect.SharedEntry{}, err
	}
	b, err := answer.Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return e, nil
	case err != nil:
		return introspect.SharedEntry{}, fmt.Errorf("rediscache: get: %w", err)
	}
	// PTTL is -2 for a key gone since GET, -1 for one without expiry
	// (never written so by Set): neither is served.
	if d := ttl.Val(); d > 0 {
		e.Answer, e.TTL = b, d
	}
	return e, nil
}

// generation reads the drop generation (absent: 0).
func generation(cmd *redis.StringCmd) (uint64, error) {
	s, err := cmd.Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("rediscache: get: %w", err)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("rediscache: the drop generation %q is not a number", s)
	}
	return n, nil
}

// setScript stores an answer unless the drop generation moved. KEYS[1] is
// the answer, KEYS[2] the generation, KEYS[3…] the indexes (subject,
// client); ARGV[1] the generation the answer was looked up under, ARGV[2]
// the answer, ARGV[3] its TTL in ms, ARGV[4] the index member. Each index
// lives as long as its longest-lived member.
var setScript = redis.NewScript(`
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end
local ttl = tonumber(ARGV[3])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
for i = 3, #KEYS do
  redis.call('SADD', KEYS[i], ARGV[4])
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
return 1
`)

// Set implements introspect.SharedCache: one atomic script.
func (c *Cache) Set(ctx context.Context, key [32]byte, e introspect.SharedEntry) error {
	ms := e.TTL.Milliseconds()
	if ms <= 0 || e.Answer == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	member := hex.EncodeToString(key[:])
	keys := []string{c.answerKey(member), c.genKey()}
	if e.Subject != "" {
		keys = append(keys, c.subjectKey(e.Subject))
	}
	if e.ClientID != "" {
		keys = append(keys, c.clientKey(e.ClientID))
	}
	if err := setScript.Run(ctx, c.client, keys, strconv.FormatUint(e.Gen, 10), e.Answer, ms, member).Err(); err != nil {
		return fmt.Errorf("rediscache: set: %w", err)
	}
	return nil
}

// dropMessage is a drop on the channel.
type dropMessage struct {
	Token    string `json:"t,omitempty"` // hex SHA-256
	Subject  string `json:"s,omitempty"`
	ClientID string `json:"c,omitempty"`
	All      bool   `json:"a,omitempty"`
}

// Drop implements introspect.SharedCache. It moves the drop generation
// first, so that no answer looked up before the drop is stored after it,
// then deletes the answers named and publishes the drop to every watcher.
//
// Deleting may take many commands (a busy client's answers, or all of
// them), so it gets dropTimeoutFactor times the Timeout; the drop is
// published even when deleting failed, so that every replica forgets its
// own copies, and the error is returned.
func (c *Cache) Drop(ctx context.Context, d introspect.SharedDrop) error {
	ctx, cancel := context.WithTimeout(ctx, dropTimeoutFactor*c.timeout)
	defer cancel()
	if err := c.client.Incr(ctx, c.genKey()).Err(); err != nil {
		return fmt.Errorf("rediscache: drop: %w", err)
	}
	msg := dropMessage{Subject: d.Subject, ClientID: d.ClientID, All: d.All}
	if d.TokenSHA256 != ([32]byte{}) {
		msg.Token = hex.EncodeToString(d.TokenSHA256[:])
	}
	forgetErr := c.forget(ctx, msg)
	payload, err := json.Marshal(msg)
	if err == nil {
		// A context of its own: the deletions may have used up ctx.
		pctx, pcancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
		err = c.client.Publish(pctx, c.channel(), payload).Err()
		pcancel()
	}
	if err := errors.Join(forgetErr, err); err != nil {
		return fmt.Errorf("rediscache: drop: %w", err)
	}
	return nil
}

// dropTimeoutFactor is how many Timeouts a Drop may take.
const dropTimeoutFactor = 50

// forget deletes the answers a drop names.
func (c *Cache) forget(ctx context.Context, msg dropMessage) error {
	if msg.All {
		return c.forgetAll(ctx)
	}
	if msg.Token != "" {
		if err := c.client.Del(ctx, c.answerKey(msg.Token)).Err(); err != nil {
			return err
		}
	}
	for _, index := range []string{c.subjectKey(msg.Subject), c.clientKey(msg.ClientID)} {
		if index == c.subjectKey("") || index == c.clientKey("") {
			continue
		}
		members, err := c.client.SMembers(ctx, index).Result()
		if err != nil {
			return err
		}
		if len(members) == 0 {
			continue
		}
		keys := make([]string, len(members))
		names := make([]any, len(members))
		for i, m := range members {
			keys[i], names[i] = c.answerKey(m), m
		}
		if _, err := c.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, keys...)
			p.SRem(ctx, index, names...)
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// forgetAll deletes every answer and index under the prefix.
func (c *Cache) forgetAll(ctx context.Context) error {
	for _, pattern := range []string{c.answerKey("*"), c.subjectKey("*"), c.clientKey("*")} {
		iter := c.client.Scan(ctx, 0, escapeGlob(pattern), 1000).Iterator()
		var batch []string
		for iter.Next(ctx) {
			batch = append(batch, iter.Val())
			if len(batch) == 1000 {
				if err := c.client.Unlink(ctx, batch...).Err(); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		if len(batch) > 0 {
			if err := c.client.Unlink(ctx, batch...).Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

// escapeGlob escapes the glob characters of the prefix in a SCAN pattern
// ending in "*".
func escapeGlob(pattern string) string {
	body := pattern[:len(pattern)-1]
	out := make([]byte, 0, len(pattern)+8)
	for i := range len(body) {
		switch body[i] {
		case '*', '?', '[', ']', '\\':
			out = append(out, '\\')
		}
		out = append(out, body[i])
	}
	return string(append(out, '*'))
}

// Watch implements introspect.SharedCache. The first call starts the
// watcher: a subscription to the drop channel, kept up while the Cache is
// open. After the subscription was lost and is made again, every watcher
// gets SharedDrop{All: true}: drops may have been missed meanwhile.
func (c *Cache) Watch(f func(introspect.SharedDrop)) (stop func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := c.nextID
	c.nextID++
	c.watchers[id] = f
	if c.cancel == nil && !c.closed {
		ctx, cancel := context.WithCancel(context.Background())
		c.cancel, c.done = cancel, make(chan struct{})
		go c.watch(ctx)
	}
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.watchers, id)
	}
}

// Close stops the drop watcher and waits for it to end. It does not close
// the Redis client.
func (c *Cache) Close() error {
	c.mu.Lock()
	c.closed = true
	cancel, done := c.cancel, c.done
	c.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	return nil
}

// notify hands a drop to every watcher.
func (c *Cache) notify(d introspect.SharedDrop) {
	c.mu.Lock()
	fs := make([]func(introspect.SharedDrop), 0, len(c.watchers))
	for _, f := range c.watchers {
		fs = append(fs, f)
	}
	c.mu.Unlock()
	for _, f := range fs {
		f(d)
	}
}

// watch receives drops until ctx ends.
func (c *Cache) watch(ctx context.Context) {
	defer close(c.done)
	ps := c.client.Subscribe(ctx, c.channel())
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	missed := false
	backoff := 50 * time.Millisecond
	for {
		msg, err := ps.ReceiveTimeout(ctx, healthInterval)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var timeout interface{ Timeout() bool }
			if errors.As(err, &timeout) && timeout.Timeout() {
				if err = ps.Ping(ctx); err == nil {
					continue
				}
			}
			if !missed {
				c.log.LogAttrs(ctx, slog.LevelWarn, "rediscache: lost the drop channel; every replica's cached answers are dropped once it is back",
					slog.String("error", err.Error()))
			}
			missed = true
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = 50 * time.Millisecond
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && missed {
				missed = false
				c.log.LogAttrs(ctx, slog.LevelInfo, "rediscache: the drop channel is back; dropping the answers cached meanwhile")
				c.notify(introspect.SharedDrop{All: true})
			}
		case *redis.Message:
			if d, ok := c.decode(ctx, m.Payload); ok {
				c.notify(d)
			}
		}
	}
}

// decode reads a drop message; one that cannot be read is logged and
// ignored.
func (c *Cache) decode(ctx context.Context, payload string) (introspect.SharedDrop, bool) {
	var msg dropMessage
	err := json.Unmarshal([]byte(payload), &msg)
	d := introspect.SharedDrop{Subject: msg.Subject, ClientID: msg.ClientID, All: msg.All}
	if err == nil && msg.Token != "" {
		var b []byte
		if b, err = hex.DecodeString(msg.Token); err == nil && len(b) != len(d.TokenSHA256) {
			err = errors.New("not a SHA-256")
		}
		copy(d.TokenSHA256[:], b)
	}
	if err != nil || d == (introspect.SharedDrop{}) {
		c.log.LogAttrs(ctx, slog.LevelWarn, "rediscache: ignored a message on the drop channel that is not a drop", slog.Int("bytes", len(payload)))
		return introspect.SharedDrop{}, false
	}
	return d, true
}

// sleep waits d unless ctx ends first; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
