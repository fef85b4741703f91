package grpcguard_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/olympus/aegis"
	"github.com/olympus/aegis/jwks"
	"github.com/olympus/aegis/jwks/jwkstest"
	"github.com/olympus/aegis/middleware/core"
	"github.com/olympus/aegis/middleware/dpop"
	"github.com/olympus/aegis/middleware/grpcguard"
	"github.com/olympus/aegis/scopes"
)

// greeter is a gRPC service whose handlers read the caller from the
// context.
type greeter struct {
	testgrpc.UnimplementedTestServiceServer
}

func (greeter) UnaryCall(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	p, _ := core.PrincipalFrom(ctx)
	return &testgrpc.SimpleResponse{Username: fmt.Sprintf("hello %s (%s)", p.Subject, p.Kind)}, nil
}

// A gRPC server whose methods each need their scopes; health checks are
// public, and any method not listed is refused.
func ExampleNew() {
	issuer := jwkstest.Start(jwkstest.Config{}) // stands in for Athena IAM
	defer issuer.Close()

	guard, err := grpcguard.New(grpcguard.Config{
		Issuer:   issuer.URL,      // e.g. "https://athena.example.com"
		Audience: issuer.Audience, // e.g. "https://api.example.com"
		Methods: map[string][]scopes.Requirement{
			"/grpc.testing.TestService/UnaryCall":           {scopes.All("data:read")},
			"/grpc.testing.TestService/StreamingOutputCall": {scopes.Any("data:read", "data:stream")},
		},
		Public: []string{"/grpc.health.v1.Health/*"},
	})
	if err != nil {
		panic(err)
	}
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(guard.Unary()),
		grpc.ChainStreamInterceptor(guard.Stream()),
	)
	testgrpc.RegisterTestServiceServer(srv, greeter{})
	lis := bufconn.Listen(1 << 20) // a net.Listener in production
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	conn, err := grpc.NewClient("passthrough:///bufconn", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	client := testgrpc.NewTestServiceClient(conn)

	for _, token := range []string{issuer.M2M("nightly-data-sync", "data:read"), issuer.M2M("report-writer", "data:write")} {
		ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
		var trailer metadata.MD
		resp, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{}, grpc.Trailer(&trailer))
		if err != nil {
			fmt.Println(status.Code(err), trailer.Get("www-authenticate"))
			continue
		}
		fmt.Println(resp.GetUsername())
	}
	// Output:
	// hello nightly-data-sync (m2m)
	// PermissionDenied [Bearer realm="api", error="insufficient_scope", error_description="The access token does not grant the scope this resource needs", scope="data:read" DPoP realm="api", algs="RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA Ed25519"]
}

// A refusal as a gRPC status: what a client of a guarded server receives
// when its rate limit is exhausted, and how it reads the retry delay.
func ExampleStatus() {
	refusal := aegis.Refuse(aegis.ReasonRateLimited, nil)
	refusal.RetryAfter = 12 * time.Second
	st := grpcguard.Status(refusal)

	fmt.Println(st.Code(), st.Message())
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			fmt.Println("reason", d.GetReason(), "domain", d.GetDomain())
		case *errdetails.RetryInfo:
			fmt.Println("retry in", d.GetRetryDelay().AsDuration())
		}
	}
	// Output:
	// ResourceExhausted aegis: rate_limited: The client's rate limit is exhausted; retry later
	// reason RATE_LIMITED domain aegis
	// retry in 12s
}

// A server that accepts DPoP-bound tokens (RFC 9449): the client sends
// "authorization: DPoP <token>" and a "dpop" proof of its key for the
// call's htu, Config.BaseURI followed by the full method name.
func ExampleConfig_dpop() {
	issuer := jwkstest.Start(jwkstest.Config{}) // stands in for Athena IAM
	defer issuer.Close()

	guard, err := grpcguard.New(grpcguard.Config{
		Issuer:   issuer.URL,
		Audience: issuer.Audience,
		BaseURI:  "https://api.example.com", // what clients address
		Methods: map[string][]scopes.Requirement{
			"/grpc.testing.TestService/UnaryCall": {scopes.All("data:read")},
		},
		DPoPMethods: map[string]dpop.Policy{
			"/grpc.testing.TestService/UnaryCall": dpop.Require, // no plain Bearer tokens here
		},
	})
	if err != nil {
		panic(err)
	}
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(guard.Unary()), grpc.ChainStreamInterceptor(guard.Stream()))
	testgrpc.RegisterTestServiceServer(srv, greeter{})
	lis := bufconn.Listen(1 << 20)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	conn, err := grpc.NewClient("passthrough:///bufconn", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	client := testgrpc.NewTestServiceClient(conn)

	// The client's key, and a token the issuer bound to it (cnf.jkt).
	key := jwkstest.NewKey(jwks.ES256)
	token := issuer.DPoPBound("nightly-data-sync", key, "data:read")
	proof := key.DPoPProof(jwkstest.DPoPProof{
		Method:      "POST",
		URL:         "https://api.example.com/grpc.testing.TestService/UnaryCall",
		AccessToken: token,
	})
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "DPoP "+token, "dpop", proof)
	resp, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{})
	fmt.Println(resp.GetUsername(), err)

	// The same token as a Bearer token is refused.
	var trailer metadata.MD
	ctx = metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
	_, err = client.UnaryCall(ctx, &testgrpc.SimpleRequest{}, grpc.Trailer(&trailer))
	fmt.Println(status.Code(err), trailer.Get("www-authenticate"))
	// Output:
	// hello nightly-data-sync (m2m) <nil>
	// Unauthenticated [DPoP realm="api", error="invalid_token", error_description="Only DPoP-bound access tokens are accepted here", algs="RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA Ed25519"]
}
