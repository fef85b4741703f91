package scopes

import "strings"

// Matcher decides whether a granted scope satisfies a required scope.
// Implementations must be safe for concurrent use and should not allocate,
// since they are called on every request.
type Matcher interface {
	// Match reports whether granted satisfies required.
	Match(granted, required string) bool
}

// Exact is the default [Matcher]: a granted scope satisfies a required scope
// only if the two are identical (case-sensitive byte comparison).
var Exact Matcher = exactMatcher{}

type exactMatcher struct{}

func (exactMatcher) Match(granted, required string) bool { return granted == required }

// Hierarchic returns a [Matcher] in which a granted scope also satisfies every
// scope below it in a hierarchy whose levels are separated by sep. With sep
// ":", granted "data" satisfies "data", "data:read" and "data:read:own"; it
// does not satisfy "database", and "data:read" does not satisfy "data". A
// scope with an empty segment (such as "data:" or "data::read") matches only
// itself. Hierarchic panics if sep is empty.
func Hierarchic(sep string) Matcher {
	if sep == "" {
		panic("scopes: Hierarchic: empty separator")
	}
	return hierarchicMatcher{sep: sep}
}

type hierarchicMatcher struct{ sep string }

func (m hierarchicMatcher) Match(granted, required string) bool {
	if granted == required {
		return true
	}
	// Cheap rejection: required must start with granted followed by sep.
	if !strings.HasPrefix(required, granted) || !strings.HasPrefix(required[len(granted):], m.sep) {
		return false
	}
	if !wellFormed(granted, m.sep) || !wellFormed(required, m.sep) {
		return false
	}
	g, r := granted, required
	for {
		gs, grest, gmore := strings.Cut(g, m.sep)
		rs, rrest, rmore := strings.Cut(r, m.sep)
		// required starts with granted+sep, so it always has a segment
		// left when granted does; the rmore check is defensive.
		if gs != rs || !rmore {
			return false
		}
		if !gmore {
			// All granted segments matched and required goes deeper.
			return true
		}
		g, r = grest, rrest
	}
}

// Wildcard returns a [Matcher] in which a "*" segment of a granted scope
// matches exactly one non-empty segment of the required scope, segments being
// separated by sep. With sep ":", granted "data:*" satisfies "data:read" but
// neither "data" nor "data:read:own", and "*" satisfies any single-segment
// scope. The wildcard meaning applies only to the granted scope: a required
// "data:*" is not satisfied by a granted "data:read". Identical scopes always
// match, and a scope with an empty segment matches only itself. Wildcard
// panics if sep is empty.
func Wildcard(sep string) Matcher {
	if sep == "" {
		panic("scopes: Wildcard: empty separator")
	}
	return wildcardMatcher{sep: sep}
}

type wildcardMatcher struct{ sep string }

func (m wildcardMatcher) Match(granted, required string) bool {
	if granted == required {
		return true
	}
	// Cheap rejection: without a '*', only equality matches.
	if strings.IndexByte(granted, '*') < 0 {
		return false
	}
	if !wellFormed(granted, m.sep) || !wellFormed(required, m.sep) {
		return false
	}
	g, r := granted, required
	for {
		gs, grest, gmore := strings.Cut(g, m.sep)
		rs, rrest, rmore := strings.Cut(r, m.sep)
		if gs != "*" && gs != rs {
			return false
		}
		if gmore != rmore {
			return false
		}
		if !gmore {
			return true
		}
		g, r = grest, rrest
	}
}

// wellFormed reports whether s, split on sep, has only non-empty segments.
// sep must not be empty.
func wellFormed(s, sep string) bool {
	for {
		seg, rest, more := strings.Cut(s, sep)
		if seg == "" {
			return false
		}
		if !more {
			return true
		}
		s = rest
	}
}
