package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/olympus/aegis/middleware"
	"github.com/olympus/aegis/scopes"
)

// BenchmarkDecision: one decision on GET /data (data:read) with a repeat
// token (the verified-token cache warm), through the HTTP middleware
// (Guard.Protect), the HTTP decision service (its handler, in process,
// forward auth) and Envoy's gRPC ext_authz (over an in-memory
// connection, the gRPC stack and protobuf included).
func BenchmarkDecision(b *testing.B) {
	iss := newIssuer(b)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	guard, err := middleware.New(middleware.Config{Issuer: iss.URL, Audience: iss.Audience, Logger: log})
	require.NoError(b, err)
	token := iss.M2M("bench", "data:read")
	svc := newTestService(b, iss, issueRoutes, PolicyDeny, nil)

	b.Run("middleware", func(b *testing.B) {
		h := guard.Protect(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }), scopes.All("data:read"))
		req := httptest.NewRequest(http.MethodGet, "http://api/data", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		b.ReportAllocs()
		for b.Loop() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d", rec.Code)
			}
		}
	})
	b.Run("http-decision", func(b *testing.B) {
		req := forwarded("GET", "/data", token)
		b.ReportAllocs()
		for b.Loop() {
			rec := httptest.NewRecorder()
			svc.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d", rec.Code)
			}
		}
	})
	b.Run("grpc-ext_authz", func(b *testing.B) {
		client := checkClient(b, svc)
		req := checkRequest("GET", "/data", bearer(token))
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			resp, err := client.Check(ctx, req)
			if err != nil || resp.GetOkResponse() == nil {
				b.Fatalf("Check: %v %v", err, resp)
			}
		}
	})
}
