// Package redisreplay is a dpop.ReplayStore in Redis, shared by every
// replica that uses the same Redis: a DPoP proof accepted by one is refused
// as a replay by all the others (RFC 9449 §11.1).
//
// It is a nested module, so that go-redis enters only the programs that
// use it, never Aegis's root module.
package redisreplay

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/olympus/aegis/middleware/dpop"
)

// Defaults of Config.
const (
	// DefaultPrefix is put before every key in Redis.
	DefaultPrefix = "aegis:dpop:"
	// DefaultTimeout bounds one check against Redis.
	DefaultTimeout = 100 * time.Millisecond
)

// Config configures a Store.
type Config struct {
	// Client talks to Redis: a *redis.Client, *redis.ClusterClient,
	// *redis.Ring or a failover client. Required; the store never closes
	// it. Create it with ContextTimeoutEnabled: true, so that go-redis
	// stops at Timeout.
	Client redis.UniversalClient
	// Prefix is put before every key; empty means DefaultPrefix.
	Prefix string
	// Timeout bounds one check; zero means DefaultTimeout.
	Timeout time.Duration
	// Now is the clock the keys' lifetimes are computed from; default
	// time.Now.
	Now func() time.Time
}

// Store records proofs with one SET NX PX each: atomic in Redis, so of two
// replicas that see one proof at once exactly one accepts it. Keys expire
// by themselves when their proof's iat leaves the Verifier's window. Keys
// are fixed-size hashes of the proof's key thumbprint and jti, never the
// proof.
type Store struct {
	client  redis.UniversalClient
	prefix  string
	timeout time.Duration
	now     func() time.Time
}

var _ dpop.ReplayStore = (*Store)(nil)

// New checks cfg and returns a Store. It does not contact Redis.
func New(cfg Config) (*Store, error) {
	var errs []error
	if cfg.Client == nil {
		errs = append(errs, errors.New("redisreplay.Config.Client is required"))
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("redisreplay.Config.Timeout %v is negative", cfg.Timeout))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	s := &Store{client: cfg.Client, prefix: cfg.Prefix, timeout: cfg.Timeout, now: cfg.Now}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Seen implements dpop.ReplayStore. Any failure (connection refused,
// timeout) is an error: the Verifier then refuses the proof as
// unavailable rather than risk accepting a replay.
func (s *Store) Seen(ctx context.Context, key string, expires time.Time) (bool, error) {
	ttl := max(expires.Sub(s.now()), time.Millisecond)
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	set, err := s.client.SetNX(ctx, s.prefix+key, 1, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("redisreplay: %w", err)
	}
	return !set, nil
}

// nonceSecretKey names the nonce secret after the prefix. Replay keys are
// 43-character hashes, so it cannot collide with one.
const nonceSecretKey = "nonce-secret"

// NonceSecretSize is the size of the secret NonceSecret makes.
const NonceSecretSize = 32

// NonceSecret returns the secret that derives DPoP nonces
// (dpop.NonceConfig.Secret), the same for every replica that uses this
// Redis and prefix, so that a nonce one replica hands out is accepted by
// the others: the first caller stores a random secret of NonceSecretSize
// bytes (SET NX, without expiry), every caller reads the one stored. Anyone
// who can read the Redis can then predict the nonces, which only vouch for
// a proof's freshness, never for its key. ctx bounds the two round trips;
// Timeout does not apply.
func (s *Store) NonceSecret(ctx context.Context) ([]byte, error) {
	key := s.prefix + nonceSecretKey
	secret := make([]byte, NonceSecretSize)
	_, _ = rand.Read(secret)
	if err := s.client.SetNX(ctx, key, secret, 0).Err(); err != nil {
		return nil, fmt.Errorf("redisreplay: storing the nonce secret: %w", err)
	}
	stored, err := s.client.Get(ctx, key).Bytes()
	if err != nil {
		return nil, fmt.Errorf("redisreplay: reading the nonce secret: %w", err)
	}
	if len(stored) < NonceSecretSize {
		return nil, fmt.Errorf("redisreplay: the nonce secret in Redis (%s) has %d bytes, fewer than %d", key, len(stored), NonceSecretSize)
	}
	return stored, nil
}
