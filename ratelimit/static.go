package ratelimit

import (
	"context"
	"fmt"
	"maps"
	"slices"
)

// Static maps client IDs to limits per minute, as a Source. A client that
// is missing, or whose value is 0, has no value (the next source or the
// default applies). Values outside 0..60,000,000 count as missing too;
// NewStatic refuses them. A Static must not be modified while in use.
type Static map[string]int

var _ Source = Static(nil)

// NewStatic returns a copy of limits as a Static, or an error if a value
// is negative or over 60,000,000. A value of 0 is allowed and means no
// value for that client.
func NewStatic(limits map[string]int) (Static, error) {
	s := make(Static, len(limits))
	for _, id := range slices.Sorted(maps.Keys(limits)) {
		n := limits[id]
		switch {
		case n < 0:
			return nil, fmt.Errorf("ratelimit: static limit for client %q is negative (%d)", id, n)
		case n > maxPerMinute:
			return nil, fmt.Errorf("ratelimit: static limit for client %q is over %d (%d)", id, maxPerMinute, n)
		}
		s[id] = n
	}
	return s, nil
}

// Lookup returns c's limit from the map. It never returns an error; an
// empty client ID has no value.
func (s Static) Lookup(_ context.Context, c Client) (int, bool, error) {
	if c.ID == "" {
		return 0, false, nil
	}
	n := s[c.ID]
	if n < 1 || n > maxPerMinute {
		return 0, false, nil
	}
	return n, true, nil
}
