package middleware_test

// Helpers these tests shared with the middleware package's own tests
// (guard_test.go, introspection_test.go, ratelimit_test.go) before they
// moved into this module.

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/olympus/aegis/ratelimit"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return t0 }

func ok(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }

func get(path, authorization string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return req
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// limits is a Source from a map, for tests.
type limits map[string]int

func (l limits) Lookup(_ context.Context, c ratelimit.Client) (int, bool, error) {
	n, ok := l[c.ID]
	return n, ok, nil
}
