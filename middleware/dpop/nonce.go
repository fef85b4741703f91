package dpop

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/internal/refusal"
)

// DefaultNonceInterval is how long a server nonce is current.
const DefaultNonceInterval = 5 * time.Minute

// NonceConfig demands server-provided nonces in proofs (RFC 9449 §8). A
// nonce is current for Interval and still accepted for the Interval after;
// nonces are derived from Secret and the time, so replicas that share the
// Secret accept each other's nonces and nothing need be stored.
type NonceConfig struct {
	// Interval is how long one nonce is the current one; default
	// DefaultNonceInterval.
	Interval time.Duration
	// Secret derives the nonces (HMAC-SHA256 of the interval's number); at
	// least 32 bytes. Default a random secret of this process: set one
	// shared secret on every replica behind one load balancer.
	Secret []byte
}

type nonces struct {
	interval time.Duration
	secret   []byte
	now      func() time.Time
}

func newNonces(cfg *NonceConfig, now func() time.Time) (*nonces, error) {
	if cfg == nil {
		return nil, nil
	}
	n := &nonces{interval: cfg.Interval, secret: cfg.Secret, now: now}
	if n.interval < 0 {
		return nil, fmt.Errorf("dpop.NonceConfig.Interval %v is negative", n.interval)
	}
	if n.interval == 0 {
		n.interval = DefaultNonceInterval
	}
	switch {
	case n.secret == nil:
		n.secret = make([]byte, 32)
		_, _ = rand.Read(n.secret)
	case len(n.secret) < 32:
		return nil, errors.New("dpop.NonceConfig.Secret is shorter than 32 bytes")
	default:
		n.secret = append([]byte(nil), n.secret...)
	}
	return n, nil
}

// at is the nonce of interval number i.
func (n *nonces) at(i int64) string {
	m := hmac.New(sha256.New, n.secret)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	m.Write(b[:])
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (n *nonces) epoch(now time.Time) int64 { return now.UnixNano() / int64(n.interval) }

func (n *nonces) current(now time.Time) string { return n.at(n.epoch(now)) }

// valid accepts the current nonce and the one before it.
func (n *nonces) valid(nonce string, now time.Time) bool {
	if nonce == "" {
		return false
	}
	e := n.epoch(now)
	return hmac.Equal([]byte(nonce), []byte(n.at(e))) || hmac.Equal([]byte(nonce), []byte(n.at(e-1)))
}

func (n *nonces) refusal(time.Time) error {
	return refusal.With(aegis.ReasonUseDPoPNonce, ErrNonce, "the proof must carry the server's current nonce")
}

// Nonce returns the nonce to send in the DPoP-Nonce response header, or ""
// when the Verifier demands none.
func (v *Verifier) Nonce() string {
	if v.nonces == nil {
		return ""
	}
	return v.nonces.current(v.now())
}
