package ratelimit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/olympus/aegis/internal/logthrottle"
	"github.com/olympus/aegis/internal/strictjson"
)

// ClaimSource reads a client's limit from a claim of its access token.
//
// Name is either a top-level claim ("rate_limit_per_minute") or, when it
// holds a dot, a member of an object claim one level deep:
// "ext.rate_limit_per_minute" reads member "rate_limit_per_minute" of claim
// "ext", where Hydra puts a session's extra claims. Only the first dot
// splits: "a.b.c" is member "b.c" of claim "a". A name with an empty part
// ("ext.", ".x") never matches.
//
// The value follows the package's value rules (see Source): a JSON integer
// from 1 to 60,000,000. Absent, null or 0 mean no value; anything else is
// logged once per client and value and treated as absent.
//
// A ClaimSource is safe for concurrent use; it must not be copied after its
// first Lookup.
type ClaimSource struct {
	// Name is the claim to read (see the type's comment).
	Name string
	// Logger receives invalid values; default slog.Default(). Tokens are
	// never logged, nor the values themselves.
	Logger *slog.Logger

	bad badValues
}

var _ Source = (*ClaimSource)(nil)

// maxJSONDepth bounds the nesting of the JSON documents sources read.
const maxJSONDepth = 128

// Lookup reads the claim of c's token. It never returns an error.
func (s *ClaimSource) Lookup(ctx context.Context, c Client) (int, bool, error) {
	if c.Claim == nil || s.Name == "" {
		return 0, false, nil
	}
	claim, member, nested := strings.Cut(s.Name, ".")
	if claim == "" || (nested && member == "") {
		return 0, false, nil
	}
	raw, found := c.Claim(claim)
	if !found {
		return 0, false, nil
	}
	log := orDefault(s.Logger)
	if !nested {
		n, ok := limitFromJSON(ctx, log, &s.bad, "claim", s.Name, c.ID, raw)
		return n, ok, nil
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return 0, false, nil
	}
	if raw[0] != '{' {
		s.bad.warn(ctx, log, "claim", s.Name, c.ID, raw, "claim "+claim+" is not a JSON object")
		return 0, false, nil
	}
	members, err := strictjson.Shallow(raw, maxJSONDepth)
	if err != nil {
		s.bad.warn(ctx, log, "claim", s.Name, c.ID, raw, "claim "+claim+" is not a valid JSON object: "+err.Error())
		return 0, false, nil
	}
	n, ok := limitFromJSON(ctx, log, &s.bad, "claim", s.Name, c.ID, memberValue(members, member))
	return n, ok, nil
}

// memberValue returns the raw value of the member called name, nil if there
// is none.
func memberValue(members []strictjson.Member, name string) []byte {
	for _, m := range members {
		if m.Name == name {
			return m.Value
		}
	}
	return nil
}

func orDefault(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}

// The value rules, shared by every source that reads JSON values.

// limitFromJSON applies the value rules to raw, the JSON value a source
// found for clientID (nil when there is none), and is the one place where
// they are applied. It returns the limit and true for an integer from 1 to
// 60,000,000. Nothing, null and 0 return false quietly; any other value
// returns false and is logged at WARN, once per (client, value), with the
// source, the field and the reason (never the value itself).
func limitFromJSON(ctx context.Context, log *slog.Logger, bad *badValues, source, field, clientID string, raw []byte) (int, bool) {
	n, ok, reason := parseLimit(raw)
	if reason != "" {
		bad.warn(ctx, log, source, field, clientID, raw, reason)
	}
	return n, ok
}

// parseLimit judges one raw JSON value. reason is empty for a valid value
// and for "no value" (nothing, null, 0); otherwise it says what is wrong.
//
// Only integer literals are accepted: 600.0 and 6e2 are refused, so that a
// value is never rounded into a limit.
func parseLimit(raw []byte) (n int, ok bool, reason string) {
	// JSON's own whitespace only: bytes.TrimSpace would also drop \f, \v
	// and Unicode spaces, which are not JSON.
	v := bytes.Trim(raw, " \t\r\n")
	if len(v) == 0 || string(v) == "null" {
		return 0, false, ""
	}
	switch c := v[0]; {
	case c == '"':
		return 0, false, "a string, not a number"
	case c == 't' || c == 'f':
		return 0, false, "a boolean, not a number"
	case c == '{':
		return 0, false, "an object, not a number"
	case c == '[':
		return 0, false, "an array, not a number"
	case c == '-' || c >= '0' && c <= '9':
		return parseNumber(v)
	}
	return 0, false, "not a JSON value"
}

var (
	reasonNegative = "negative"
	reasonTooLarge = "over the maximum of " + strconv.Itoa(maxPerMinute)
	reasonInvalid  = "not a valid JSON number"
)

func parseNumber(v []byte) (int, bool, string) {
	digits := strings.TrimPrefix(string(v), "-")
	negative := len(digits) < len(v)
	if digits != "" && strings.Trim(digits, "0123456789") == "" {
		switch {
		case len(digits) > 1 && digits[0] == '0':
			return 0, false, reasonInvalid
		case digits == "0":
			return 0, false, "" // 0 and -0: no value
		case negative:
			return 0, false, reasonNegative
		case len(digits) > len(strconv.Itoa(maxPerMinute)):
			return 0, false, reasonTooLarge
		}
		n, err := strconv.Atoi(digits)
		if err != nil || n > maxPerMinute {
			return 0, false, reasonTooLarge
		}
		return n, true, ""
	}
	f, err := strconv.ParseFloat(string(v), 64)
	switch {
	case err != nil && !errors.Is(err, strconv.ErrRange):
		return 0, false, reasonInvalid
	case f < 0:
		return 0, false, reasonNegative
	case f > maxPerMinute:
		return 0, false, reasonTooLarge
	case f != math.Trunc(f):
		return 0, false, "fractional"
	}
	return 0, false, "not written as an integer (no fraction or exponent allowed)"
}

// maxBadValues bounds how many (client, value) pairs a source remembers
// having logged; past it the memory starts afresh, so a pair may be logged
// again.
const maxBadValues = 10_000

// badValues lets each invalid (client, value) pair be logged once. Its zero
// value is ready for use.
type badValues struct {
	init sync.Once
	once logthrottle.Limiter
}

// warn logs an invalid value of clientID unless it was logged before.
func (b *badValues) warn(ctx context.Context, log *slog.Logger, source, field, clientID string, raw []byte, reason string) {
	buf := binary.AppendUvarint(make([]byte, 0, 16+len(clientID)+len(raw)), uint64(len(clientID)))
	buf = append(append(buf, clientID...), bytes.TrimSpace(raw)...)
	key := sha256.Sum256(buf)
	b.init.Do(func() { b.once.MaxKeys = maxBadValues })
	if first, _ := b.once.Allow(string(key[:]), time.Time{}); !first {
		return
	}
	log.LogAttrs(ctx, slog.LevelWarn, "ratelimit: invalid limit value ignored",
		slog.String("source", source), slog.String("field", field),
		slog.String("client_id", clientID), slog.String("reason", reason))
}
