// Package metricvalue holds what the metrics adapters share: the values
// their labels and attributes take, so that Prometheus and OpenTelemetry
// report the same words for the same events.
package metricvalue

import (
	"strings"
	"unicode/utf8"

	"github.com/olympus/aegis"

	"github.com/olympus/aegis/middleware/core"
)

// Kind is a decision's caller kind, "none" when no token was validated.
func Kind(k core.Kind) string {
	if k == "" {
		return "none"
	}
	return string(k)
}

// RateLimitResult is allowed, denied or error.
func RateLimitResult(d core.RateLimitDecision) string {
	switch {
	case d.Err != nil:
		return "error"
	case d.Allowed:
		return "allowed"
	}
	return "denied"
}

// CallResult is active, inactive or error.
func CallResult(c core.IntrospectionCall) string {
	switch {
	case c.Err != nil:
		return "error"
	case c.Active:
		return "active"
	}
	return "inactive"
}

// SharedCacheResult is hit or miss for a lookup, ok for a store or a
// drop, error for any that failed.
func SharedCacheResult(s core.IntrospectionSharedCache) string {
	switch {
	case s.Err != nil:
		return "error"
	case s.Op != aegis.SharedCacheGet:
		return "ok"
	case s.Hit:
		return "hit"
	}
	return "miss"
}

// LookupResult is found, default or error.
func LookupResult(l core.LimitLookup) string {
	switch {
	case l.Err != nil:
		return "error"
	case l.Found:
		return "found"
	}
	return "default"
}

// Clip makes s a safe label or attribute value: valid UTF-8 (Prometheus
// refuses anything else) of at most max bytes, clipped on a rune boundary.
// It allocates only when it has to change s.
func Clip(s string, max int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= max {
		return s
	}
	n := max
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
