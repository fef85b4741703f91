package introspect

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"time"

	"github.com/olympus/aegis"
)

// SharedCache keeps introspection answers where every replica of an API
// finds them, so that N replicas ask the server about a token once, not N
// times. Package github.com/olympus/aegis/introspect/rediscache keeps one
// in Redis.
//
// Entries are keyed by the SHA-256 of the token, never the token, and hold
// the server's answer as it sent it: a replica that reads one parses and
// checks it as if the server had just answered. Whoever can write to the
// store can therefore vouch for any token: keep it as closely guarded as
// the introspection endpoint's credentials.
//
// A Client using a SharedCache keeps its own cache in front of it, asks
// the shared cache only on a local miss (one request at a time per token),
// and goes on with its local cache alone while the shared one fails.
type SharedCache interface {
	// Get returns the entry stored under key (Answer nil when there is
	// none) and, in either case, the store's drop generation.
	Get(ctx context.Context, key [32]byte) (SharedEntry, error)
	// Set stores e.Answer under key for e.TTL, findable by e.Subject and
	// e.ClientID for drops, unless a drop has happened since the Get that
	// returned e.Gen.
	Set(ctx context.Context, key [32]byte, e SharedEntry) error
	// Drop forgets the entries d names and tells every replica watching
	// the store, this one included.
	Drop(ctx context.Context, d SharedDrop) error
	// Watch calls f with every drop made through the store, by any
	// replica, until stop is called. When drops may have been missed (the
	// store was unreachable), f gets SharedDrop{All: true}.
	Watch(f func(SharedDrop)) (stop func())
}

// SharedEntry is an answer in a SharedCache.
type SharedEntry struct {
	// Answer is the server's answer, as it sent it.
	Answer []byte
	// Subject and ClientID are the answer's sub and client_id, when it
	// has them (Set).
	Subject, ClientID string
	// TTL is how long the entry lives (Set) or has left to live (Get).
	TTL time.Duration
	// Gen is the store's drop generation when Get looked.
	Gen uint64
}

// Drop names cached answers to forget, so that the server is asked again
// about the tokens concerned: after a revocation, or when a client is
// compromised. The fields add up: an answer named by any of them is
// dropped.
type Drop struct {
	// Token drops the answer about this token.
	Token string
	// Subject drops every answer whose sub is this.
	Subject string
	// ClientID drops every answer whose client_id is this.
	ClientID string
	// All drops every answer.
	All bool
}

// SharedDrop is a Drop as a SharedCache carries it: the token by its
// SHA-256.
type SharedDrop struct {
	// TokenSHA256 is the SHA-256 of the token whose answer to drop; zero
	// names none.
	TokenSHA256 [32]byte
	// Subject, ClientID and All are the Drop's.
	Subject, ClientID string
	All               bool
}

// ErrEmptyDrop is returned by Client.Drop for a Drop that names nothing.
var ErrEmptyDrop = errors.New("introspect: the drop names no token, subject, client or all")

// Drop forgets the cached answers d names: in this Client's cache at once,
// and, with a SharedCache, in the shared cache and in every replica
// watching it. Calls already under way when it is made do not cache their
// answers. An error means the shared cache could not be told; the local
// answers are dropped regardless.
func (c *Client) Drop(ctx context.Context, d Drop) error {
	sd := SharedDrop{Subject: d.Subject, ClientID: d.ClientID, All: d.All}
	if d.Token != "" {
		sd.TokenSHA256 = sha256.Sum256([]byte(d.Token))
	}
	if sd == (SharedDrop{}) {
		return ErrEmptyDrop
	}
	c.dropLocal(sd)
	if c.cfg.Shared == nil {
		return nil
	}
	err := c.cfg.Shared.Drop(ctx, sd)
	c.sharedUsed(ctx, aegis.SharedCacheDrop, false, err)
	return err
}

// dropLocal forgets the answers d names in this Client's caches.
func (c *Client) dropLocal(d SharedDrop) {
	c.dropGen.Add(1)
	if d.All {
		c.cache.c.DeleteFunc(func(string, entry) bool { return true })
		c.denied.c.DeleteFunc(func(string, entry) bool { return true })
		return
	}
	if d.TokenSHA256 != ([32]byte{}) {
		c.cache.remove(d.TokenSHA256)
		c.denied.remove(d.TokenSHA256)
	}
	if d.Subject != "" || d.ClientID != "" {
		c.cache.c.DeleteFunc(func(_ string, e entry) bool {
			return e.res != nil && (d.Subject != "" && e.res.Subject == d.Subject || d.ClientID != "" && e.res.ClientID == d.ClientID)
		})
	}
}

// sharedGet looks key up in the shared cache. ok is false when the cache
// could not be asked.
func (c *Client) sharedGet(ctx context.Context, key cacheKey) (e SharedEntry, ok bool) {
	e, err := c.cfg.Shared.Get(ctx, key)
	c.sharedUsed(ctx, aegis.SharedCacheGet, err == nil && e.Answer != nil, err)
	return e, err == nil
}

// sharedSet stores an answer in the shared cache for ttl, if it has one.
func (c *Client) sharedSet(ctx context.Context, key cacheKey, body []byte, res *Result, ttl time.Duration, gen uint64) {
	if body == nil || ttl <= 0 {
		return
	}
	e := SharedEntry{Answer: body, TTL: ttl, Gen: gen}
	if res != nil {
		e.Subject, e.ClientID = res.Subject, res.ClientID
	}
	c.sharedUsed(ctx, aegis.SharedCacheSet, false, c.cfg.Shared.Set(ctx, key, e))
}

// sharedUsed reports a use of the shared cache, and logs when it starts
// failing and when it recovers (once each, not per call).
func (c *Client) sharedUsed(ctx context.Context, op aegis.SharedCacheOp, hit bool, err error) {
	if c.cfg.Observer != nil {
		c.cfg.Observer.IntrospectionSharedCache(ctx, aegis.IntrospectionSharedCache{Issuer: c.cfg.Issuer, Op: op, Hit: hit, Err: err})
	}
	switch {
	case err != nil && c.sharedDown.CompareAndSwap(false, true):
		c.log.LogAttrs(ctx, slog.LevelWarn, "introspect: the shared cache failed; going on with the local cache alone",
			slog.String("op", string(op)), slog.String("error", err.Error()))
	case err == nil && c.sharedDown.CompareAndSwap(true, false):
		c.log.LogAttrs(ctx, slog.LevelInfo, "introspect: the shared cache answers again", slog.String("op", string(op)))
	}
}

// fromShared serves an answer found in the shared cache as if the server
// had just given it, for no longer than the entry has left. ok is false
// when the answer cannot be used (then the server is asked).
func (c *Client) fromShared(key cacheKey, e SharedEntry, gen uint64) (res *Result, ok bool, err error) {
	res, err = interpret(e.Answer)
	if errors.Is(err, ErrUnavailable) {
		return nil, false, nil
	}
	now := c.cfg.Now()
	if err == nil {
		err = c.check(res, now)
	}
	if err != nil {
		c.refusedFor(key, err, now, min(c.cfg.Cache.NegativeTTL, e.TTL), gen)
		return nil, true, err
	}
	c.rememberActive(key, res, now, min(c.cfg.Cache.TTL, e.TTL), gen)
	return res, true, nil
}
