package main

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzForwarded: whatever a gateway forwards, the answer is a decision
// (200, 400, 401 or 403), never a panic or a 500, and nothing passes on a
// path that is not clean.
func FuzzForwarded(f *testing.F) {
	for _, seed := range []struct{ method, uri, auth string }{
		{"GET", "/data", "Bearer x"},
		{"GET", "/public/x?y=z", ""},
		{"POST", "/public/..;/admin", ""},
		{"GET", "/public/%2e%2e/admin", ""},
		{"GET", "//public", ""},
		{"get", "/public/%zz", "Basic a"},
		{"", "", ""},
		{"GET", "/public/\x00", "Bearer"},
		{"GET", "/data?access_token=a", "Bearer a b"},
	} {
		f.Add(seed.method, seed.uri, seed.auth)
	}
	iss := newIssuer(f)
	svc := newTestService(f, iss, issueRoutes, PolicyDeny, nil)
	f.Fuzz(func(t *testing.T, method, uri, auth string) {
		req := httptest.NewRequest(http.MethodGet, "http://authz/auth", nil)
		req.Header[HeaderForwardedMethod] = []string{method}
		req.Header[HeaderForwardedURI] = []string{uri}
		if auth != "" {
			req.Header["Authorization"] = []string{auth}
		}
		rec := newRecorder()
		svc.ServeHTTP(rec, req)
		require.Contains(t, []int{200, 400, 401, 403}, rec.status, "%q %q: %s", method, uri, rec.body)
		if rec.status == 200 {
			raw, _, _ := strings.Cut(uri, "?")
			p, err := url.PathUnescape(raw)
			require.NoError(t, err)
			_, err = cleanPath(p)
			assert.NoError(t, err, "allowed on %q", uri)
			assert.True(t, strings.HasPrefix(p, "/public/"), "only public paths pass without a valid token: %q", uri)
		}
	})
}
