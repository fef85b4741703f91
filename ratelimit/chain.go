package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Chain asks its sources in order and returns the first value found, or
// Default when none has one.
//
// Lookup's answers:
//   - (n, true, nil): a source's value, or Default when no source has one
//     and Default is positive;
//   - (0, false, nil): no source has a value and Default is 0: the client
//     is unlimited;
//   - (0, false, err): only when ctx is done (err is ctx.Err()).
//
// A source that fails is skipped: the next source, then Default, answers.
// Its failure is logged at WARN once per outage, an outage being failures
// of that source less than a minute apart. A source answering ok with a
// value outside 1..60,000,000 is skipped as if it had none.
//
// A Chain is safe for concurrent use; it must not be copied, nor its
// fields changed, after its first Lookup.
type Chain struct {
	// Sources are asked in order; nil entries are skipped.
	Sources []Source
	// Default applies when no source has a value; 0 means unlimited. A
	// negative Default counts as 0 and one over 60,000,000 as 60,000,000
	// (NewChain refuses both).
	Default int
	// Logger receives source failures; default slog.Default().
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time

	mu      sync.Mutex
	lastErr map[int]time.Time // source index → time of its last failure
}

var _ Source = (*Chain)(nil)

// outageGap groups a source's failures into outages: a failure less than
// outageGap after the previous one belongs to the same outage and is not
// logged again.
const outageGap = time.Minute

// NewChain returns a Chain of sources with a default limit per minute
// (0: unlimited). It panics if defaultPerMinute is negative or over
// 60,000,000, a programming error.
func NewChain(defaultPerMinute int, sources ...Source) *Chain {
	if defaultPerMinute < 0 || defaultPerMinute > maxPerMinute {
		panic(fmt.Sprintf("ratelimit: NewChain: default %d is not in 0..%d", defaultPerMinute, maxPerMinute))
	}
	return &Chain{Sources: sources, Default: defaultPerMinute}
}

// Lookup returns c's limit from the first source that has one, else the
// default; see the type's comment for what it returns.
func (ch *Chain) Lookup(ctx context.Context, c Client) (int, bool, error) {
	for i, src := range ch.Sources {
		if src == nil {
			continue
		}
		n, ok, err := src.Lookup(ctx, c)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return 0, false, ctxErr
			}
			ch.failed(ctx, i, src, c, err)
			continue
		}
		if ok && n >= 1 && n <= maxPerMinute {
			return n, true, nil
		}
	}
	switch {
	case ch.Default <= 0:
		return 0, false, nil
	case ch.Default > maxPerMinute:
		return maxPerMinute, true, nil
	}
	return ch.Default, true, nil
}

// failed records a failure of source i and logs it if it starts an outage.
func (ch *Chain) failed(ctx context.Context, i int, src Source, c Client, err error) {
	now := time.Now
	if ch.Now != nil {
		now = ch.Now
	}
	t := now()
	ch.mu.Lock()
	last, seen := ch.lastErr[i]
	if ch.lastErr == nil {
		ch.lastErr = make(map[int]time.Time)
	}
	ch.lastErr[i] = t
	ch.mu.Unlock()
	if seen && t.Sub(last) < outageGap {
		return
	}
	orDefault(ch.Logger).LogAttrs(ctx, slog.LevelWarn, "ratelimit: limit source failing, falling through to the next source or the default",
		slog.Int("source_index", i), slog.String("source", fmt.Sprintf("%T", src)),
		slog.String("client_id", c.ID), slog.String("error", err.Error()))
}
