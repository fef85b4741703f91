package scopes

import (
	"fmt"
	"slices"
	"strings"
)

// Requirement describes the scopes a route needs: either all of a list of
// scopes ([All]) or at least one of them ([Any]), each compared against the
// granted scopes with a [Matcher] ([Exact] unless changed with
// [Requirement.Using]). Requirements are immutable and safe for concurrent
// use. The zero Requirement has no scopes; see [Requirement.IsZero].
type Requirement struct {
	scopes []string
	any    bool
	m      Matcher
}

// All returns a Requirement satisfied when every one of scopes is granted.
// Duplicates are removed. All panics if scopes is empty or contains an
// invalid RFC 6749 §3.3 scope-token; it is meant for route setup, like
// regexp.MustCompile.
func All(scopes ...string) Requirement {
	return newRequirement("All", false, scopes)
}

// Any returns a Requirement satisfied when at least one of scopes is granted.
// Duplicates are removed. Any panics if scopes is empty or contains an
// invalid RFC 6749 §3.3 scope-token.
func Any(scopes ...string) Requirement {
	return newRequirement("Any", true, scopes)
}

func newRequirement(name string, anyOf bool, scopes []string) Requirement {
	if len(scopes) == 0 {
		panic(fmt.Sprintf("scopes: %s: no scopes given", name))
	}
	s, err := normalize(scopes)
	if err != nil {
		panic(fmt.Sprintf("scopes: %s: %v", name, err))
	}
	return Requirement{scopes: s, any: anyOf, m: Exact}
}

// Using returns a copy of r that compares scopes with m. A nil m selects
// [Exact].
func (r Requirement) Using(m Matcher) Requirement {
	if m == nil {
		m = Exact
	}
	r.m = m
	return r
}

// SatisfiedBy reports whether granted satisfies r. The zero Requirement is
// satisfied by nothing (it fails closed); use [Requirement.IsZero] to detect
// the absence of a requirement. SatisfiedBy does not allocate.
func (r Requirement) SatisfiedBy(granted Set) bool {
	if len(r.scopes) == 0 {
		return false
	}
	for _, req := range r.scopes {
		ok := r.granted(granted, req)
		if r.any && ok {
			return true
		}
		if !r.any && !ok {
			return false
		}
	}
	return !r.any
}

// granted reports whether some scope in g satisfies req under r's matcher.
func (r Requirement) granted(g Set, req string) bool {
	switch m := r.m.(type) {
	case nil, exactMatcher:
		return slices.Contains(g.s, req)
	default:
		for _, v := range g.s {
			if m.Match(v, req) {
				return true
			}
		}
		return false
	}
}

// Missing returns the required scopes not satisfied by granted, in order: for
// an [All] requirement those not granted, for an [Any] requirement all of its
// scopes when none is granted. It returns nil when granted satisfies r, and
// for the zero Requirement.
func (r Requirement) Missing(granted Set) []string {
	if r.any {
		if r.SatisfiedBy(granted) {
			return nil
		}
		return r.Scopes()
	}
	var out []string
	for _, req := range r.scopes {
		if !r.granted(granted, req) {
			out = append(out, req)
		}
	}
	return out
}

// Scopes returns a copy of the required scopes, in order.
func (r Requirement) Scopes() []string {
	return slices.Clone(r.scopes)
}

// String returns the required scopes joined by single spaces, suitable as the
// value of the scope parameter of an RFC 6750 WWW-Authenticate challenge:
// valid scope-tokens never contain '"' or '\', so no escaping is needed.
func (r Requirement) String() string {
	return strings.Join(r.scopes, " ")
}

// IsZero reports whether r is the zero Requirement, that is, whether it was
// not built with [All] or [Any]. Middleware can use it to tell "no scope
// check configured" apart from a real requirement; the zero Requirement's
// SatisfiedBy always reports false.
func (r Requirement) IsZero() bool {
	return len(r.scopes) == 0
}
