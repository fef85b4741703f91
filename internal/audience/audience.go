// Package audience decides whether a token's aud names this resource: by
// exact comparison (RFC 9068 §4, RFC 8707 §2), or, when asked, after
// putting URLs in a canonical form.
package audience

import (
	"net/url"
	"strings"
)

// Contains reports whether auds holds want: exactly, or, with canonical,
// as the same URL once both are in Canonical form.
func Contains(auds []string, want string, canonical bool) bool {
	for _, a := range auds {
		if a == want {
			return true
		}
	}
	if !canonical {
		return false
	}
	cw := Canonical(want)
	for _, a := range auds {
		if Canonical(a) == cw {
			return true
		}
	}
	return false
}

// Canonical returns an absolute URL with its scheme and host in lower case
// and one trailing slash of its path removed ("HTTPS://API.example.com/"
// and "https://api.example.com" are the same resource). Anything else is
// returned unchanged, as are URLs with user info, a query, a fragment or a
// host with non-ASCII letters (Unicode case folding maps look-alikes such
// as "İ" to "i"): those are compared exactly.
func Canonical(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return s
	}
	for i := 0; i < len(u.Host); i++ {
		if u.Host[i] >= 0x80 {
			return s // an internationalized host: compared exactly
		}
	}
	path := u.EscapedPath()
	path = strings.TrimSuffix(path, "/")
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host) + path
}
