package grpcguard_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware/grpcguard"
)

// BenchmarkUnary is one unary call over bufconn, client and server in the
// process, without interceptors and through a Guard with a repeat token
// (served by the verified-token cache after the first call). The
// difference is the Guard's cost per call.
func BenchmarkUnary(b *testing.B) {
	iss := jwkstest.NewIssuer(b, jwkstest.Config{})
	g, err := grpcguard.New(grpcguard.Config{Issuer: iss.URL, Audience: iss.Audience, Methods: methods(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(b, err)
	for _, bc := range []struct {
		name  string
		guard *grpcguard.Guard
	}{
		{name: "no-interceptor"},
		{name: "guard", guard: g},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := serve(b, overBufconn, bc.guard)
			ctx := authorization(b.Context(), "Bearer "+iss.M2M("nightly-sync", "data:read"))
			req := &testgrpc.SimpleRequest{}
			resp, err := c.UnaryCall(ctx, req)
			require.NoError(b, err)
			if bc.guard != nil {
				require.Equal(b, "nightly-sync m2m data:read", resp.GetUsername())
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.UnaryCall(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkInterceptorAlone is the unary interceptor called directly, a
// repeat token in the incoming metadata and a handler that does nothing:
// the Guard's own cost, without a transport's noise.
func BenchmarkInterceptorAlone(b *testing.B) {
	iss := jwkstest.NewIssuer(b, jwkstest.Config{})
	g, err := grpcguard.New(grpcguard.Config{Issuer: iss.URL, Audience: iss.Audience, Methods: methods(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(b, err)
	interceptor := g.Unary()
	ctx := metadata.NewIncomingContext(b.Context(), metadata.Pairs("authorization", "Bearer "+iss.M2M("nightly-sync", "data:read")))
	info := &grpc.UnaryServerInfo{FullMethod: unaryMethod}
	handler := func(ctx context.Context, _ any) (any, error) { return nil, nil }
	_, err = interceptor(ctx, nil, info, handler)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := interceptor(ctx, nil, info, handler); err != nil {
			b.Fatal(err)
		}
	}
}
